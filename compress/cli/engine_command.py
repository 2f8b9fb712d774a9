"""``compress build-engine``: an engine on the machine that will run it: a TensorRT engine from
MODEL.onnx, or with ``--aoti`` an AOTInductor package from a torch.export program (model.int8.pt2)."""

from __future__ import annotations

from pathlib import Path

import click

from compress.cli.guard import guarded


@click.command("build-engine")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--aoti", is_flag=True, help="Compile MODEL (a torch.export .pt2, e.g. model.int8.pt2) into an AOTInductor package for this machine instead of a TensorRT engine.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="With --aoti: the device the package is compiled for.")
@click.option("--shapes", default=None, metavar="AXIS=MIN:OPT:MAX,...", help="Optimization profile of the named axes, e.g. batch=1:8:32,seq=16:128:512 [default: batch 1:8:32, sequence 1:128:512].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Directory for the engine and its .json [default: beside MODEL].")
@click.option("--timing-cache", type=click.Path(path_type=Path), help="Reuse (and update) this timing cache: rebuilds take seconds, not minutes.")
@click.option("--opt-level", default=3, show_default=True, type=click.IntRange(0, 5), help="Builder optimization level.")
@click.option("--workspace", "workspace_mib", type=click.IntRange(1, 1 << 20), help="Builder scratch memory limit, MiB.")
@click.option("--version-compatible", is_flag=True, help="An engine later TensorRT versions can also run (may be slower).")
@click.option("--hardware-compat", type=click.Choice(["none", "ampere_plus", "same_compute_capability"]), default="none", show_default=True, help="ampere_plus: one engine for every GPU from Ampere on.")
@click.option("--force", is_flag=True, help="Replace an existing engine.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def build_engine_command(model_path, aoti, device, shapes, out_dir, timing_cache, opt_level, workspace_mib, version_compatible,
                         hardware_compat, force, debug):
    """Build a TensorRT engine from MODEL.onnx (the QDQ file for INT8), named for this GPU and TensorRT
    version; or, with --aoti, an AOTInductor package from MODEL.pt2, named for this device and torch."""

    def go():
        if aoti:
            trt_only = {"--shapes": shapes is not None, "--timing-cache": timing_cache is not None, "--workspace": workspace_mib is not None,
                        "--version-compatible": version_compatible, "--hardware-compat": hardware_compat != "none",
                        "--opt-level": given_on_command_line("opt_level")}
            _build_aoti(model_path, device, out_dir, force, [flag for flag, given in trt_only.items() if given])
        else:
            _build_tensorrt(model_path, shapes, out_dir, timing_cache, opt_level, workspace_mib, version_compatible, hardware_compat, force)

    guarded(debug, go)


def given_on_command_line(parameter: str) -> bool:
    """Whether the user gave ``parameter`` (not its default): a TensorRT option given with --aoti is refused, not ignored."""
    return click.get_current_context().get_parameter_source(parameter) == click.core.ParameterSource.COMMANDLINE


def _build_tensorrt(onnx_path, shapes, out_dir, timing_cache, opt_level, workspace_mib, version_compatible, hardware_compat, force):
    from compress.core.errors import InputError
    from compress.load.loaders import load_model
    from export.tensorrt.engine import TensorRTEngineConfig, build_engine

    if not onnx_path.exists():
        raise InputError(f"{onnx_path} does not exist; check the path (a compress output holds model.int8.qdq.onnx)")
    if onnx_path.suffix != ".onnx" or not onnx_path.is_file():
        raise InputError(f"{onnx_path} is not an ONNX file; give model.int8.qdq.onnx (or model.onnx) from a compress output, "
                         "or pass --aoti for a .pt2 program")
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


def _build_aoti(program_path: Path, device: str, out_dir: Path | None, force: bool, trt_only: list[str]):
    from compress.core.errors import InputError
    from compress.load.loaders import load_model, uses_compress_ops
    from export.aoti.package import (
        build_aoti_package,
        describe_inputs,
        existing_package_refusal,
    )
    from export.onnx.parity import parity_inputs

    if trt_only:
        raise InputError(f"{', '.join(trt_only)} configure{'s' if len(trt_only) == 1 else ''} TensorRT engines; drop "
                         f"{'it' if len(trt_only) == 1 else 'them'} with --aoti")
    if not program_path.exists():
        raise InputError(f"{program_path} does not exist; check the path (compress MODEL --int8 --backend torch writes model.int8.pt2)")
    if program_path.suffix != ".pt2" or not program_path.is_file():
        raise InputError(f"{program_path} is not a torch.export program (.pt2); give model.int8.pt2 from compress MODEL --int8 --backend torch")
    program = load_model(program_path, None)  # refuses an AOTInductor package, a damaged archive or a pickle, with the fix
    if device == "cuda" and uses_compress_ops(program_path):
        raise InputError(f"{program_path.name}'s INT8 weights are packed for the CPU kernels; build the CUDA package on the GPU "
                         "machine with compress MODEL --int8 --backend torch --target aoti (it quantizes the model again on the GPU)")
    out = Path(out_dir or program_path.parent)
    refusal = existing_package_refusal(program_path, out, device, force)
    if refusal:
        raise InputError(refusal)
    out.mkdir(parents=True, exist_ok=True)
    examples = [program.torch_args(arrays) for arrays in parity_inputs(program)]
    describes = describe_inputs(program)
    click.echo(f"compiling {program_path.name} with AOTInductor for {device} (minutes on a small CPU)...", err=True)
    meta = build_aoti_package(program_path, out, device, examples, describes=describes)
    click.echo(f"wrote {out / meta['file']} (+ .json) for {meta['device_tag']}, torch {meta['torch_version']}: max difference "
               f"from the program {meta['max_abs_error']:.2e}, lowest row cosine {meta['min_cosine']:.5f} over {meta['shapes_checked']} shapes")
