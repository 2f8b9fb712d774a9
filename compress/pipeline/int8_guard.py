"""The accuracy guard: no INT8 run ends as a success outside its tolerance.

The tolerance is ``--max-drop`` where given, else a default per task metric: 1 point of accuracy,
exact match or character error rate, 1% relative of cosine or perplexity, 5 points of mean
relative error for outputs with no task (raw logits and feature maps move more under INT8
without changing an answer; a user who knows the task says so with ``--metric``).

Two places apply it:

- ``guard_int8``, right after a default INT8 step has written its file: the file is scored on
  validation data (held out from calibration and from the report's evaluation), and meets the
  tolerance only if its drop stays within it on resampled validation data too (the search judges
  its candidates the same way: ``Evaluator.confidently_within``). If it misses, the
  run escalates to the accuracy-aware search (range methods, SmoothQuant strengths, the most
  sensitive layers kept in float) within ``--search-budget`` and keeps what the search chose.
- ``check_tolerance``, after every artifact was measured: each INT8 row's drop on the held-out
  evaluation data, against the model it was quantized from. A miss is a ``warning:`` line, a
  ``tolerance`` section in report.json, and exit code 3 from the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.backends.base import run_all
from bench.backends.onnxruntime import OrtBackend
from bench.measure.task_metrics import TaskMetric
from compress.load.data import Dataset
from compress.pipeline.options import RunOptions
from compress.pipeline.static_int8.config import Int8SearchConfig
from compress.pipeline.static_int8.evaluator import Evaluator

DEFAULT_TOLERANCE = 0.01
DEFAULT_TOLERANCE_BY_METRIC = {"relative-error": 0.05}


def tolerance_for(metric: TaskMetric, options: RunOptions) -> float:
    if options.max_drop is not None:
        return options.max_drop
    return DEFAULT_TOLERANCE_BY_METRIC.get(metric.name, DEFAULT_TOLERANCE)


def describe(metric: TaskMetric, drop: float) -> str:
    return f"{drop:.2%} relative" if metric.relative else f"{100 * drop:.2f} points"


def evaluator(state, fp32_path: Path, validation: Dataset, trial_batches: list[dict]) -> Evaluator:
    """Scores a candidate INT8 file on ``validation`` against ``fp32_path``'s outputs, in the run's task metric."""
    with OrtBackend(fp32_path, state.options.threads) as backend:
        reference = run_all(backend, validation.batches)
    return Evaluator(validation.batches, reference, validation.labels, state.data.metric, trial_batches, state.options.threads)


def guard_int8(state, int8_path: Path, disabled_optimizers, section: dict,
               escalate: Callable[[Int8SearchConfig], dict], target: str = "cpu", include_dynamic: bool = True) -> dict:
    """Score the default INT8 file; where it misses the tolerance, run the search and return its
    report section instead of ``section``. Records what it did under ``section["guard"]``."""
    metric, tolerance = state.data.metric, tolerance_for(state.data.metric, state.options)
    evaluate = evaluator(state, state.files["onnx"], state.data.validation, state.data.trial_batches())
    drop, _ = evaluate(int8_path, disabled_optimizers)
    met, bound = evaluate.judge(drop, tolerance)
    guard = {"metric": metric.name, "tolerance": tolerance, "drop_unit": "relative" if metric.relative else "points",
             "default_validation_drop": drop, "default_validation_drop_bound": bound, "validation": state.data.validation.source}
    if met:
        return {**section, "guard": {**guard, "escalated": False}}
    bounded = f" (up to {describe(metric, bound)} on resampled validation data)" if bound is not None else ""
    state.progress.say(f"  guard: {metric.name} dropped {describe(metric, drop)}{bounded} on validation data, over the tolerance of "
                       f"{describe(metric, tolerance)}; searching other INT8 configurations (budget {state.options.search_budget:.0f}s)")
    alphas = (0.5, 0.75, 0.85) if not state.original.is_onnx else ()
    searched = escalate(Int8SearchConfig(max_drop=tolerance, budget_seconds=state.options.search_budget, target=target,
                                         alphas=alphas, include_dynamic=include_dynamic))
    chosen = searched["search"]["chosen"]
    state.progress.say(f"  guard: kept {chosen['candidate']} ({metric.name} drop {describe(metric, chosen['drop'])} on validation)")
    if chosen.get("float_layers"):
        state.progress.say(f"  guard: left in float (see report.json int8.search.sensitivity): {', '.join(chosen['float_layers'])}")
    return {**searched, "guard": {**guard, "escalated": True, "chosen": chosen["candidate"], "chosen_validation_drop": chosen["drop"]}}


def check_tolerance(state) -> dict | None:
    """Each INT8 row's drop on the held-out evaluation data against the row it was quantized from:
    ONNX INT8 files against ``onnx-fp32``, a PyTorch INT8 model against the last PyTorch row before it.
    Where pruning or distillation changed the model first, the last row is also checked end to end,
    against the original: the INT8 step is judged against the pruned model it was given, which
    says nothing of what pruning itself cost."""
    metric, tolerance = state.data.metric, tolerance_for(state.data.metric, state.options)
    rows = [r for r in state.rows if r.get("retention") and "task" in r["retention"]]
    checked = {}
    for i, row in enumerate(rows):
        if row["precision"] != "int8":
            continue
        source = _source_row(rows[:i], row)
        if source is None:
            continue
        drop = round(metric.drop(source["retention"]["task"]["value"], row["retention"]["task"]["value"]), 9)  # 8 of 800 is 1 point, not 1 + 1e-17
        checked[row["name"]] = {"against": source["name"], "drop": round(drop, 6), "met": drop <= tolerance}
    if state.changes and rows and state.reference is not None:
        final, labels = rows[-1], state.data.evaluation.labels
        drop = round(metric.drop(metric.value(state.reference, state.reference, labels), final["retention"]["task"]["value"]), 9)
        checked[f"{final['name']}, end to end"] = {"against": state.rows[0]["name"], "drop": round(drop, 6), "met": drop <= tolerance}
    if not checked:
        return None
    misses = [f"{name} ({metric.name} {describe(metric, c['drop'])} below {c['against']})" for name, c in checked.items() if not c["met"]]
    samples = state.data.evaluation.num_samples
    section = {"metric": metric.name, "tolerance": tolerance, "drop_unit": "relative" if metric.relative else "points",
               "evaluation": state.data.evaluation.source, "samples": samples, "rows": checked, "met": not misses}
    if misses:
        # on a metric that counts answers, the sample count says how coarse the figure is (1 of 128 is 0.78 points)
        state.progress.warn(f"outside the tolerance of {describe(metric, tolerance)} on {samples} held-out samples: {'; '.join(misses)}; "
                            "the best configuration found was written; see report.json (tolerance, int8.guard)")
    return section


def _source_row(before: list[dict], row: dict) -> dict | None:
    if row["backend"] == "onnxruntime":
        return next((r for r in reversed(before) if r["name"] == "onnx-fp32"), None)
    return next((r for r in reversed(before) if r["backend"] != "onnxruntime" and r["precision"] != "int8"), None)
