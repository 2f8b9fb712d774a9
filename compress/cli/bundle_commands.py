"""``compress pack`` and ``compress verify``: ship a `compress` output as one checked .tar."""

from __future__ import annotations

from pathlib import Path

import click

from compress.cli.guard import guarded
from compress.core.errors import InputError


@click.command("pack")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="The bundle to write, e.g. model.tar.")
@click.option("--force", is_flag=True, help="Replace an existing bundle that compress packed.")
@click.option("--force-any", is_flag=True, help="With --force: replace the -o file even if it is not a compress bundle.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def pack_command(directory, out, force, force_any, debug):
    """Pack DIRECTORY (a `compress` output: ONNX models, engines, report) into a bundle with a manifest."""

    def go():
        from export.bundle.pack import pack

        if force_any and not force:
            raise InputError("--force-any only widens --force; pass --force --force-any to replace a file that is not a bundle")
        manifest = pack(directory, out, force, force_any)
        files = manifest["files"]
        engines = [n for n, e in files.items() if e["kind"] == "engine"]
        packages = [f"{n} ({e['target']['device_tag']}, torch {e['target']['torch_version']})" for n, e in files.items() if e["kind"] == "aoti-package"]
        click.echo(f"wrote {out}: {len(files)} files ({', '.join(sorted(files))}), "
                   f"{sum(e['bytes'] for e in files.values()) / 1e6:.1f} MB" + ("" if engines else "; no TensorRT engine (ONNX Runtime will run it)")
                   + (f"; AOTInductor: {', '.join(packages)}, run by load(..., allow_compiled_packages=True) where it matches" if packages else ""))

    guarded(debug, go)


@click.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def verify_command(bundle, debug):
    """Check every file of BUNDLE (.tar or unpacked directory) against its manifest; exit 1 naming the first bad file."""

    def go():
        from export.bundle.verify import verify

        manifest = verify(bundle)
        click.echo(f"ok: {bundle}: {len(manifest['files'])} files match their sha256 and size")

    guarded(debug, go)
