"""``OnnxInt8Config``: model.onnx → model.int8.onnx with ONNX Runtime's quantizer (integer
operators for the CPU); where graph variants exist, the one that runs fastest here is kept.

Dynamic INT8 with per-channel weights also tries one scale per weight tensor (ONNX Runtime's
default, and its peer's): one dequantize scale per MatMul, a few percent faster on some shapes.
On some models it costs nothing (a MiniLM tweet classifier: the same validation accuracy), on
others too much (the same MiniLM's embeddings: 4% relative cosine). So the per-tensor files may
win on speed only where the validation data says they stay within the tolerance, judged as the
guard judges."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from compress.core.registry import register_handler
from compress.pipeline.fastest_variant import MUST_BEAT_PLAIN_BY, pick_fastest
from compress.pipeline.int8_guard import describe, evaluator, guard_int8, tolerance_for
from compress.pipeline.state import RunState
from compress.pipeline.steps.onnx_static_int8 import search_int8_files
from export.int8.ort_quantize import (
    Int8Result,
    OnnxInt8Config,
    fusion_hint,
    int8_candidates,
    resolve_mode,
    write_candidate,
)


@register_handler(OnnxInt8Config)
def onnx_int8_step(config: OnnxInt8Config, state: RunState) -> None:
    fp32, out = state.files["onnx"], state.stage / config.outputs()["onnx-int8"]
    with state.progress.step("Quantizing to INT8 (ONNX Runtime, CPU integer ops)"):
        mode = resolve_mode(onnx.load(str(fp32), load_external_data=False), config.mode)
        calibration = None
        if mode == "static":
            calib = state.data.calibration(config.calibration_samples)
            calibration = calib.batches
            state.report["data"]["calibration"] = calib.source
        checks: dict = {}
        result = quantize_fastest(fp32, out, config, calibration, fusion_hint(state.model), state.data.trial_batches(), state.options.threads,
                                  within_tolerance=_within_tolerance(state, checks))
        section = {**result.to_json(), **checks}
        state.progress.say(f"  activations: {section['mode']}, weights: {section['weights']}, transformer fusions: {section['transformer_fusions']}, "
                           f"ORT optimizers off at load: {section['onnxruntime_disabled_optimizers'] or 'none'}")
        section = state.report["int8"] = guard_int8(state, out, tuple(section["onnxruntime_disabled_optimizers"]), section,
                                                    escalate=lambda search: search_int8_files(search, state))
    state.runtime[out.name] = {"onnxruntime": {"disabled_optimizers": section.get("onnxruntime_disabled_optimizers", [])}}
    state.files["onnx-int8"] = out


onnx_int8_step.uses_validation = True  # the guard scores the INT8 file on held-out validation data


def quantize_fastest(fp32: Path, out: Path, config: OnnxInt8Config, calibration, fusion, trial_batches: list[dict], threads: int,
                     within_tolerance: Callable[[Path], bool] | None = None) -> Int8Result:
    """``out`` from ``fp32`` with ONNX Runtime's quantizer: of the graph variants worth trying, the
    one that runs fastest here on ``trial_batches`` (a fused one must beat the plain one by 3%).
    ``within_tolerance``: where given, dynamic per-channel INT8 also tries per-tensor weights, each
    of whose files may win only if it passes it."""
    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        mode, candidates = int8_candidates(fp32, Path(tmp), config, calibration, fusion)
        if within_tolerance is not None and mode == "dynamic" and config.per_channel and config.graph_optimization == "auto":
            coarse_dir = Path(tmp) / "per-tensor"
            coarse_dir.mkdir()
            _, coarse = int8_candidates(fp32, coarse_dir, dataclasses.replace(config, per_channel=False), calibration, fusion)
            passed = {path: within_tolerance(path) for path in dict.fromkeys(c.path for c in coarse.values())}  # each distinct file once
            candidates.update({f"{name}, per-tensor weights": c for name, c in coarse.items() if passed[c.path]})
        chosen, trials = next(iter(candidates)), {}
        if len(candidates) > 1:
            variants = {name: (c.path, c.disabled_optimizers) for name, c in candidates.items()}
            chosen, trials = pick_fastest(variants, trial_batches, threads, MUST_BEAT_PLAIN_BY)
        return write_candidate(candidates[chosen], out, mode, trials)


def _within_tolerance(state: RunState, checks: dict) -> Callable[[Path], bool]:
    """Whether an INT8 file's validation drop stays within the run's tolerance, on resampled data
    too (``Evaluator.confidently_within``); records each verdict in ``checks`` for the report."""
    scorer = []  # the FP32 reference outputs, computed at the first check

    def check(path: Path) -> bool:
        metric, tolerance = state.data.metric, tolerance_for(state.data.metric, state.options)
        if not scorer:
            scorer.append(evaluator(state, state.files["onnx"], state.data.validation, state.data.trial_batches()))
        evaluate = scorer[0]
        drop, _ = evaluate.untimed(path)
        met, bound = evaluate.judge(drop, tolerance)
        checks.setdefault("per_tensor_weights_checks", []).append({"file": path.name, "metric": metric.name, "validation_drop": drop, "drop_bound": bound,
                                                     "tolerance": tolerance, "allowed": met})
        bounded = "" if bound is None else f" (up to {describe(metric, bound)} resampled)"
        state.progress.say(f"  per-tensor weights ({path.name}): {metric.name} dropped {describe(metric, drop)} on validation{bounded}: "
                           f"{'may compete on speed' if met else 'outside the tolerance, not used'}")
        return met
    return check
