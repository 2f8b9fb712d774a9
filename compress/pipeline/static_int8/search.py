"""Accuracy-aware INT8: try configurations from cheap to costly, keep the fastest that meets the tolerance.

Stage 1 tries calibrations that cost no speed (range methods, SmoothQuant strengths). Only if
none meets the tolerance does stage 2 run the sensitivity analysis (each layer group quantized
alone, ranked by the metric it costs) and leave the most sensitive groups in float, one more
each try, since every float layer costs latency. Every tried point (latency, metric) goes into
the report with the Pareto front marked; the best so far is always kept on disk, so a time
budget or Ctrl-C ends the search with a usable result.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.measure.task_metrics import TaskMetric
from compress.core.errors import CompressError
from compress.pipeline.fastest_variant import session_p50
from compress.pipeline.static_int8.builder import StaticInt8Builder
from compress.pipeline.static_int8.config import Int8SearchConfig, Int8StaticConfig
from export.onnx.session import make_session, run_session

BOOTSTRAP_ROUNDS = 30


@dataclass
class Evaluator:
    """Scores and times a candidate file on validation data held out from calibration and evaluation."""

    batches: list[dict]
    reference: np.ndarray
    labels: np.ndarray | None
    metric: TaskMetric  # the drop is in its unit: points, or relative to the original's value
    timing_batch: dict
    threads: int
    reference_score: float = field(init=False)
    last_outputs: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self):
        self.reference_score = self.metric.value(self.reference, self.reference, self.labels)

    @property
    def metric_name(self) -> str:
        return self.metric.name

    def __call__(self, path: Path, disabled_optimizers=()) -> tuple[float, float]:
        """(the task metric's drop, the trial p50 in ms)."""
        session = make_session(path, self.threads, disabled_optimizers=disabled_optimizers)
        try:
            drop, _ = self._score(session)
            p50 = session_p50(session, self.timing_batch)
        finally:
            del session
        return drop, p50

    def untimed(self, path: Path) -> tuple[float, float]:
        """(the task metric's drop, the outputs' relative error): what the sensitivity analysis ranks by, with no timing."""
        session = make_session(path, self.threads)
        try:
            return self._score(session)
        finally:
            del session

    def confidently_within(self, tolerance: float) -> tuple[bool, float]:
        """Whether the last scored candidate stays within ``tolerance`` on resampled validation data,
        and the bound it was judged by: the mean plus one standard deviation of its drop over a
        paired bootstrap of the validation samples.

        A metric that counts answers moves in steps of one sample: on 256 OCR lines a candidate
        that loses 2 lines net (0.8 points) may lose 8 on the next 320. Judging by the point drop
        alone, the search stopped at such a candidate and the file later missed the tolerance on
        fresh data; the bound asks for a margin in proportion to how much the answers changed."""
        rng, n = np.random.default_rng(0), len(self.reference)
        labels = None if self.labels is None else np.asarray(self.labels)
        drops = []
        for _ in range(BOOTSTRAP_ROUNDS):
            pick = rng.integers(0, n, n)
            reference, sampled = self.reference[pick], None if labels is None else labels[pick]
            drops.append(self.metric.drop(self.metric.value(reference, reference, sampled), self.metric.value(reference, self.last_outputs[pick], sampled)))
        bound = round(float(np.mean(drops) + np.std(drops)), 6)
        return bound <= tolerance, bound

    def _score(self, session) -> tuple[float, float]:
        outputs = np.concatenate([run_session(session, b)[0] for b in self.batches])
        self.last_outputs = outputs
        drop = self.metric.drop(self.reference_score, self.metric.value(self.reference, outputs, self.labels))
        error = float(np.linalg.norm(outputs - self.reference) / max(float(np.linalg.norm(self.reference)), 1e-12))
        return round(drop, 6), round(error, 6)


@dataclass
class SearchResult:
    config: Int8StaticConfig | None  # None: the dynamic INT8 candidate won
    keep: set[str]
    met: bool
    report: dict


def search_int8(builder: StaticInt8Builder, search: Int8SearchConfig, evaluate: Evaluator, work: Path,
                dynamic_candidate: Path | None = None, say=print) -> SearchResult:
    start = time.monotonic()
    tried: list[dict] = []
    best: dict | None = None
    best_path = work / "best.int8.onnx"

    def over_budget() -> bool:
        return time.monotonic() - start > search.budget_seconds

    def consider(name: str, config: Int8StaticConfig | None, keep: set[str], path: Path) -> dict:
        nonlocal best
        drop, p50 = evaluate(path)
        meets, bound = evaluate.confidently_within(search.max_drop) if drop <= search.max_drop else (False, None)
        point = {"candidate": name, "config": config.to_json() if config else {"type": "dynamic per-channel INT8"},
                 "float_layers": sorted(keep), "drop": drop, "drop_bound": bound, "latency_p50_ms": p50, "meets_tolerance": meets}
        tried.append(point)
        bounded = f" (up to {bound:+.4%} on resampled validation data)" if bound is not None else ""
        say(f"  {name}: drop {drop:+.4%}{bounded}, {p50:.1f} ms{'  ✓' if meets else ''}")
        if _better(point, best):
            best = {**point, "_config": config, "_keep": set(keep)}
            shutil.copyfile(path, best_path)  # the best so far stays on disk whatever happens next
        return point

    interrupted = False
    try:
        if dynamic_candidate is not None:
            consider("dynamic per-channel", None, set(), dynamic_candidate)
        stage1 = [Int8StaticConfig(smoothquant_alpha=None, target=search.target)]
        stage1 += [Int8StaticConfig(smoothquant_alpha=a, target=search.target) for a in search.alphas]
        for config in stage1:
            if over_budget():
                break
            path = work / f"candidate-{len(tried)}.onnx"
            builder.write_cpu_qdq(config, path, set())
            consider(config.describe(), config, set(), path)
        if best is not None and best["_config"] is not None and not over_budget():  # other range methods at the best alpha
            alpha = best["_config"].smoothquant_alpha
            for method in search.methods:
                if method == "minmax" or over_budget():
                    continue
                config = Int8StaticConfig(method=method, smoothquant_alpha=alpha, target=search.target)
                path = work / f"candidate-{len(tried)}.onnx"
                builder.write_cpu_qdq(config, path, set())
                consider(config.describe(), config, set(), path)
        if best is not None and not best["meets_tolerance"] and not over_budget():
            base = best["_config"] or stage1[0]  # dynamic was best: rank layers on plain static INT8 (no SmoothQuant)
            ranking = sensitivity_ranking(builder, base, evaluate, work, over_budget, say)
            for count in range(1, min(search.max_float_layers, len(ranking) - 1) + 1):  # something stays INT8
                if over_budget() or best["meets_tolerance"]:
                    break
                keep = set(ranking[:count])
                path = work / f"candidate-{len(tried)}.onnx"
                builder.write_cpu_qdq(base, path, keep)
                consider(f"{base.describe()}, {count} most sensitive layer(s) float", base, keep, path)
    except KeyboardInterrupt:
        interrupted = True
        say("  search interrupted: keeping the best configuration so far")
    if best is None:
        raise KeyboardInterrupt if interrupted else CompressError("the INT8 search ran out of budget before trying one configuration; raise --search-budget")
    _mark_pareto(tried)
    report = {"metric": evaluate.metric_name, "metric_description": evaluate.metric.description,
              "drop_unit": "relative" if evaluate.metric.relative else "points", "reference_score": evaluate.reference_score, "max_drop": search.max_drop,
              "budget_seconds": search.budget_seconds, "seconds": round(time.monotonic() - start, 1), "interrupted": interrupted,
              "validation_samples": int(sum(len(next(iter(b.values()))) for b in evaluate.batches)),
              "tried": tried, "chosen": {k: v for k, v in best.items() if not k.startswith("_")},
              "sensitivity": builder.sensitivity}
    return SearchResult(best["_config"], best["_keep"], best["meets_tolerance"], report)


def _better(point: dict, best: dict | None) -> bool:
    """Meeting the tolerance beats missing it; among those that meet it, faster wins; among misses, smaller drop."""
    if best is None:
        return True
    if point["meets_tolerance"] != best["meets_tolerance"]:
        return point["meets_tolerance"]
    if point["meets_tolerance"]:
        return point["latency_p50_ms"] < best["latency_p50_ms"]
    return point["drop"] < best["drop"]


def sensitivity_ranking(builder: StaticInt8Builder, config: Int8StaticConfig, evaluate: Evaluator, work: Path, over_budget, say) -> list[str]:
    """Quantize one node group at a time (everything else float) and rank the groups by what that costs.

    A group is the weighted nodes (MatMul, Gemm, Conv) that read one activation, so this works on
    any graph, ONNX inputs included: a transformer's Q/K/V projections form one group, a CNN's
    convolutions one group each. The rank is the task metric's drop; on a small validation set most
    single nodes flip no answer, so the outputs' relative error breaks the ties. Groups the budget
    left unscored rank last, in graph order."""
    prep = builder.prepare(config.smoothquant_alpha)
    say(f"  sensitivity analysis over {len(prep.groups)} node groups (each quantized alone)")
    rows = []
    for i, group in enumerate(prep.groups):
        if over_budget():
            say(f"  sensitivity analysis stopped by the budget after {i} of {len(prep.groups)} groups")
            break
        keep = {g.label for g in prep.groups if g is not group}
        path = work / "sensitivity.onnx"
        builder.write_cpu_qdq(config, path, keep)
        drop, error = evaluate.untimed(path)
        rows.append({"layer": group.label, "ops": sorted({n.op_type for n in group.nodes}), "drop_when_quantized_alone": drop,
                     "output_error_when_quantized_alone": error})
    rows.sort(key=lambda r: (-r["drop_when_quantized_alone"], -r["output_error_when_quantized_alone"]))
    scored = {r["layer"] for r in rows}
    builder.sensitivity = rows
    return [r["layer"] for r in rows] + [g.label for g in prep.groups if g.label not in scored]


def _mark_pareto(points: list[dict]) -> None:
    """A point is on the front when no other point is both at least as fast and at least as accurate (and better in one)."""
    for p in points:
        p["pareto"] = not any(
            q is not p and q["latency_p50_ms"] <= p["latency_p50_ms"] and q["drop"] <= p["drop"]
            and (q["latency_p50_ms"] < p["latency_p50_ms"] or q["drop"] < p["drop"]) for q in points)
