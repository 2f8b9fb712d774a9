"""The ``compress`` command. ``compress MODEL ...`` is the default action; ``demo`` runs it on the bundled MiniLM.

The CLI only turns flags into a recipe and options; ``compress.pipeline.run`` does the work,
the same function the Python API calls.
"""

from __future__ import annotations

import click

from compress.cli.bench_commands import bench_group
from compress.cli.bundle_commands import pack_command, verify_command
from compress.cli.compress_command import demo_command, run_command
from compress.cli.engine_command import build_engine_command


class _DefaultGroup(click.Group):
    """Route ``compress MODEL ...`` to the ``run`` command when MODEL is not a subcommand name."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compress-toolkit")
def main():
    """Make a fine-tuned model smaller and faster, with proof it still answers correctly.

    \b
    compress MODEL --int8      export, quantize, verify and report (MODEL: HF dir, .pt/.ts, .pt2, .onnx)
    compress run --recipe OUT/manifest.json MODEL   replay an earlier run's recipe (--print-recipe shows one)
    compress demo              the same on the bundled MiniLM sentence-embedding model
    compress bench run PATH    the benchmark suite (also: bench compare, bench merge)
    compress pack DIR -o F.tar a shippable bundle with a manifest; compress verify F.tar checks it
    compress build-engine M.onnx   a TensorRT engine for this GPU (on the machine that runs it)
    """


for command in (run_command, demo_command, bench_group, build_engine_command, pack_command, verify_command):
    main.add_command(command)

if __name__ == "__main__":
    main()
