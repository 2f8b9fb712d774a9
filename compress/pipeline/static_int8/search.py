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
from dataclasses import dataclass
from pathlib import Path

from compress.core.errors import CompressError
from compress.pipeline.pareto import mark_pareto
from compress.pipeline.static_int8.builder import StaticInt8Builder
from compress.pipeline.static_int8.config import Int8SearchConfig, Int8StaticConfig
from compress.pipeline.static_int8.evaluator import Evaluator
from compress.pipeline.static_int8.sensitivity import sensitivity_ranking

SENSITIVITY_SHARE = 0.5  # of the budget left when it starts: the rest is for the candidates it ranks
DEFAULT_FLOAT_LAYERS = 16  # the fewest the search may leave in float where the config sets no limit


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
        meets, bound = evaluate.judge(drop, search.max_drop)
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
            left = search.budget_seconds - (time.monotonic() - start)
            ranking_ends = time.monotonic() + SENSITIVITY_SHARE * left
            ranking = sensitivity_ranking(builder, base, evaluate, work, lambda: time.monotonic() > ranking_ends, say)
            limit = float_layer_limit(search.max_float_layers, len(ranking))
            missed, met, count = 0, None, 1 if limit >= 1 else None
            while count is not None and not over_budget():
                keep = set(ranking[:count])
                path = work / f"candidate-{len(tried)}.onnx"
                builder.write_cpu_qdq(base, path, keep)
                point = consider(f"{base.describe()}, {count} most sensitive layer(s) float", base, keep, path)
                missed, met = (missed, count) if point["meets_tolerance"] else (count, met)
                count = next_float_count(missed, met, limit)
    except KeyboardInterrupt:
        interrupted = True
        say("  search interrupted: keeping the best configuration so far")
    if best is None:
        raise KeyboardInterrupt if interrupted else CompressError("the INT8 search ran out of budget before trying one configuration; raise --search-budget")
    mark_pareto(tried, lambda point: point["latency_p50_ms"])
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


def float_layer_limit(configured: int | None, ranked: int) -> int:
    """The most groups the search may leave in float: the config's limit, else half the ranked
    groups (at least DEFAULT_FLOAT_LAYERS); always fewer than all, so something stays INT8."""
    cap = configured if configured is not None else max(DEFAULT_FLOAT_LAYERS, ranked // 2)
    return min(cap, ranked - 1)


def next_float_count(missed: int, met: int | None, limit: int) -> int | None:
    """How many of the most sensitive groups to leave in float next (None: stop), given the most
    that missed the tolerance and the fewest that met it. Doubling until one meets, then bisecting
    down: every float group costs latency, so the fewest that meet are wanted, and a CNN's dozens of
    groups are too many to add one at a time within a budget."""
    if met is None:
        count = min(limit, max(1, 2 * missed))
        return count if count > missed else None
    return (missed + met) // 2 if met - missed > 1 else None
