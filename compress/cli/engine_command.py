"""``compress build-engine MODEL.onnx``: a TensorRT engine on the machine that will run it."""

from __future__ import annotations

from pathlib import Path

import click

from compress.cli.guard import guarded


@click.command("build-engine")
@click.argument("onnx_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option("--shapes", default=None, metavar="AXIS=MIN:OPT:MAX,...", help="Optimization profile of the named axes, e.g. batch=1:8:32,seq=16:128:512 [default: batch 1:8:32, sequence 1:128:512].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Directory for the .plan and its .plan.json [default: beside MODEL.onnx].")
@click.option("--timing-cache", type=click.Path(path_type=Path), help="Reuse (and update) this timing cache: rebuilds take seconds, not minutes.")
@click.option("--opt-level", default=3, show_default=True, type=click.IntRange(0, 5), help="Builder optimization level.")
@click.option("--workspace", "workspace_mib", type=click.IntRange(1, 1 << 20), help="Builder scratch memory limit, MiB.")
@click.option("--version-compatible", is_flag=True, help="An engine later TensorRT versions can also run (may be slower).")
@click.option("--hardware-compat", type=click.Choice(["none", "ampere_plus", "same_compute_capability"]), default="none", show_default=True, help="ampere_plus: one engine for every GPU from Ampere on.")
@click.option("--force", is_flag=True, help="Replace an existing engine.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def build_engine_command(onnx_path, shapes, out_dir, timing_cache, opt_level, workspace_mib, version_compatible, hardware_compat, force, debug):
    """Build a TensorRT engine from MODEL.onnx (the QDQ file for INT8), named for this GPU and TensorRT version."""

    def go():
        from compress.core.errors import InputError
        from compress.load.loaders import load_model
        from export.tensorrt.engine import TensorRTEngineConfig, build_engine

        if not onnx_path.exists():
            raise InputError(f"{onnx_path} does not exist; check the path (a compress output holds model.int8.qdq.onnx)")
        if onnx_path.suffix != ".onnx" or not onnx_path.is_file():
            raise InputError(f"{onnx_path} is not an ONNX file; give model.int8.qdq.onnx (or model.onnx) from a compress output")
        config = TensorRTEngineConfig(shapes=shapes, optimization_level=opt_level, workspace_mib=workspace_mib,
                                      timing_cache=str(timing_cache) if timing_cache else None,
                                      version_compatible=version_compatible, hardware_compatibility=hardware_compat)
        model = load_model(onnx_path, None)
        meta = build_engine(onnx_path, out_dir or onnx_path.parent, model.inputs, config, force=force)
        precisions = ", ".join(f"{k} {v}" for k, v in sorted(meta["layer_precisions"].items(), key=lambda kv: -kv[1]))
        click.echo(f"wrote {meta['file']} (+ .json) in {meta['build_seconds']}s for {meta['gpu']}, TensorRT {meta['tensorrt_version']}; "
                   f"layers: {precisions}")
        if meta.get("warning"):
            click.echo(f"warning: {meta['warning']}", err=True)

    guarded(debug, go)
