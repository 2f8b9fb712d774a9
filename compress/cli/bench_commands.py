"""``compress bench run|compare|merge``: the benchmark suite from the command line.

Flags become bench.suite options; the measuring, comparing and reporting live in bench/.
"""

from __future__ import annotations

from pathlib import Path

import click

from compress.cli.guard import guarded


@click.group("bench")
def bench_group():
    """Measure artifacts on every backend present, compare with a baseline, merge targets.

    \b
    compress bench run PATH... --json current.json      latency, memory, size, retention, peers
    compress bench compare current.json baseline.json   exit 4 on a regression (CI gate)
    compress bench merge a.json b.json -o all.json      one table keyed by machine/GPU target
    """


@bench_group.command("run")
@click.argument("paths", nargs=-1, metavar="PATH...", type=click.Path(path_type=Path))
@click.option("--backends", default=None, metavar="LIST", help="Families torch,ort,trt,kernels,aoti or single backends (torch-cuda-fp16, ort-cpu...) [default: every backend present].")
@click.option("--batch", "batch_sizes", default="1,16", show_default=True, help="Batch sizes to time, comma-separated.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the results (schema compress.bench/1) here.")
@click.option("--markdown", "md_out", type=click.Path(path_type=Path), help="Write the Markdown table here (it is also printed).")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path), help="Write PNG plots into this directory.")
@click.option("--force", is_flag=True, help="Replace existing --json/--markdown files.")
@click.option("--eval", "eval_file", type=click.Path(path_type=Path), help="Held-out inputs (text, .npz or .jsonl; labels optional) [default: built-in held-out text, or inputs from the spec].")
@click.option("--calib", "calib_file", type=click.Path(path_type=Path), help="Calibration inputs for the ORT quantize_static peer [default: the file `compress --calib` recorded].")
@click.option("--samples", default=128, show_default=True, type=click.IntRange(1, 100_000), help="Held-out samples scored for retention.")
@click.option("--seq-len", default=128, show_default=True, type=click.IntRange(2, 8192), help="Sequence length for text models.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 512), help="CPU threads for every backend.")
@click.option("--min-seconds", default=2.0, show_default=True, type=click.FloatRange(0.01, 600), help="Minimum timed seconds per batch size (after warm-up and at least 10 runs).")
@click.option("--peers/--no-peers", default=True, show_default=True, help="Also measure PyTorch dynamic INT8, ORT FP32, and ORT quantize_dynamic and quantize_static (given calibration data) with their defaults.")
@click.option("--input", "inputs", multiple=True, metavar="NAME:SHAPE:DTYPE", help="Input spec where the file carries none (repeatable).")
@click.option("--task", type=click.Choice(["embedding", "classification", "generic"]), help="Retention metric [default: detected].")
@click.option("--metric", default=None, metavar="NAME|module:function", help="The task metric scored for every row, as `compress --metric` takes it [default: by task].")
@click.option("--charset", type=click.Path(path_type=Path), help="For ctc-exact and cer: the characters, one per line [default: the ONNX metadata].")
@click.option("--trust-pickle", is_flag=True, help="Allow loading a pickled model (runs code from the file).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def run_command(paths, backends, batch_sizes, json_out, md_out, plots_dir, force, eval_file, calib_file, samples, seq_len, threads,
                min_seconds, peers, inputs, task, metric, charset, trust_pickle, quiet, debug):
    """Measure every artifact of every PATH (model file, HF directory, engine, or `compress` output directory)."""
    guarded(debug, lambda: _run(paths, backends, batch_sizes, json_out, md_out, plots_dir, force, eval_file, samples, seq_len,
                                 threads, min_seconds, peers, inputs, task, trust_pickle, quiet, metric, charset, calib_file))


def _run(paths, backends, batch_text, json_out, md_out, plots_dir, force, eval_file, samples, seq_len, threads, min_seconds,
         peers, inputs, task, trust_pickle, quiet, metric=None, charset=None, calib_file=None):
    from bench.backends.registry import parse_backends
    from bench.reporting.markdown import markdown_report
    from bench.reporting.schema import new_file, write_results
    from bench.suite.runner import SuiteOptions, run_suite
    from compress.cli.parse import parse_batch_sizes
    from compress.core.atomic import write_text_atomic
    from compress.core.errors import BenchError
    from compress.core.progress import Progress
    from compress.core.spec import parse_input_spec

    for out in (json_out, md_out):
        if out is not None and out.exists() and not force:
            raise BenchError(f"{out} already exists; pass --force to replace it or choose another name")
    chosen, explicit = parse_backends(backends)
    options = SuiteOptions(backends=chosen, explicit_backends=explicit, batch_sizes=parse_batch_sizes(batch_text), seq_len=seq_len,
                           threads=threads, min_seconds=min_seconds, samples=samples, eval=eval_file, peers=peers,
                           trust_pickle=trust_pickle, input_specs=tuple(parse_input_spec(t) for t in inputs), task=task,
                           metric=metric, charset=charset, calib=calib_file)
    result = run_suite(list(paths), options, Progress(quiet=quiet))
    data = new_file([result.data])
    if json_out is not None:
        write_results(data, json_out)
    report = markdown_report(data)
    if md_out is not None:
        write_text_atomic(md_out, report)
    written = []
    if plots_dir is not None:
        from bench.reporting.plots import write_plots

        written = write_plots(data, plots_dir)
    click.echo(report)
    for path in [p for p in (json_out, md_out) if p is not None] + list(written):
        click.echo(f"wrote {path}")
    problems = result.impossible + result.failures
    if problems:
        raise BenchError("measured what could run, but not everything asked for: " + "; ".join(problems))


@bench_group.command("compare")
@click.argument("current", type=click.Path(path_type=Path))
@click.argument("baseline", type=click.Path(path_type=Path))
@click.option("--max-latency-regression", default="10%", show_default=True, metavar="PCT", help="Largest allowed slow-down (of the ratio to FP32 PyTorch where both carry it).")
@click.option("--max-retention-drop", default=0.002, show_default=True, type=float, help="Largest allowed drop of the retention metric (cosine, accuracy...).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def compare_command(current, baseline, max_latency_regression, max_retention_drop, debug):
    """Exit non-zero (4) with a readable diff when CURRENT regressed against BASELINE."""

    def go():
        from bench.reporting.compare import compare, format_comparison, parse_percent
        from bench.reporting.schema import load_results
        from compress.core.errors import RegressionFound

        result = compare(load_results(current), load_results(baseline), parse_percent(max_latency_regression), max_retention_drop)
        click.echo(format_comparison(result))
        if result.failed:
            raise RegressionFound(f"{len(result.regressions)} regression(s) beyond the thresholds; see the lines marked REGRESSED above")

    guarded(debug, go)


@bench_group.command("merge")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="The merged results file.")
@click.option("--markdown", "md_out", type=click.Path(path_type=Path), help="Also write the merged Markdown table here.")
@click.option("--force", is_flag=True, help="Replace existing output files.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def merge_command(files, out, md_out, force, debug):
    """Put results from several machines or GPUs into one file and one table keyed by target."""

    def go():
        from bench.reporting.markdown import markdown_report
        from bench.reporting.merge import merge_files
        from bench.reporting.schema import write_results
        from compress.core.atomic import write_text_atomic
        from compress.core.errors import BenchError

        for path in (out, md_out):
            if path is not None and path.exists() and not force:
                raise BenchError(f"{path} already exists; pass --force to replace it or choose another name")
        data = merge_files(list(files))
        write_results(data, out)
        report = markdown_report(data)
        if md_out is not None:
            write_text_atomic(md_out, report)
        click.echo(report)
        click.echo(f"wrote {out}")

    guarded(debug, go)
