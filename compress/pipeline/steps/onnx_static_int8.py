"""``Int8StaticConfig`` and ``Int8SearchConfig``: static INT8 from calibration, one configuration
or the accuracy-aware search.

Writes ``model.int8.onnx`` (integer ops for ONNX Runtime on CPU) and, for the TensorRT target,
``model.int8.qdq.onnx`` into the staged output. Calibration batches stream through a forward
loop; validation data (for the search, the sensitivity analysis and the choice between graph
variants whose answers differ) is held out from both calibration and the final evaluation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from compress.core.errors import QuantizationError
from compress.core.forward_loop import forward_loop_over
from compress.core.registry import register_handler
from compress.load.data import Dataset
from compress.pipeline.int8_guard import describe, evaluator, guard_int8, tolerance_for
from compress.pipeline.state import RunState
from compress.pipeline.static_int8.builder import StaticInt8Builder
from compress.pipeline.static_int8.config import Int8SearchConfig, Int8StaticConfig
from compress.pipeline.static_int8.search import search_int8
from compress.pipeline.static_int8.sensitivity import sensitivity_ranking
from compress.pipeline.static_int8.variants import build_fastest
from export.int8.ort_quantize import OnnxInt8Config, quantize_onnx_int8


@register_handler(Int8StaticConfig, Int8SearchConfig)
def static_int8_step(config: Int8StaticConfig | Int8SearchConfig, state: RunState) -> None:
    search = isinstance(config, Int8SearchConfig)
    with state.progress.step("Searching INT8 configurations" if search else "Quantizing to static INT8"):
        calibration = state.data.calibration(config.calibration_samples)
        state.report["data"]["calibration"] = calibration.source
        section = _build(config, state, calibration)
        if not search:
            out = state.stage / config.outputs()["onnx-int8"]
            section = guard_int8(state, out, tuple(section.get("onnxruntime_disabled_optimizers", ())), section,
                                 escalate=lambda s: search_int8_files(s, state), target=config.target, include_dynamic=False)
    state.report["int8"] = section
    out = state.stage / config.outputs()["onnx-int8"]
    state.runtime[out.name] = {"onnxruntime": {"disabled_optimizers": section.get("onnxruntime_disabled_optimizers", [])}}
    state.files["onnx-int8"] = out
    if "onnx-qdq" in config.outputs():
        state.files["onnx-qdq"] = state.stage / config.outputs()["onnx-qdq"]


static_int8_step.uses_validation = True  # the search, the sensitivity analysis and the guard score on held-out validation data


def search_int8_files(config: Int8SearchConfig, state: RunState) -> dict:
    """The accuracy-aware search, writing its choice over the stage's INT8 files (the guard's escalation)."""
    calibration = state.data.calibration(config.calibration_samples)
    state.report["data"]["calibration"] = calibration.source
    return _build(config, state, calibration)


def _build(config: Int8StaticConfig | Int8SearchConfig, state: RunState, calibration: Dataset) -> dict:
    """Build the INT8 files in the stage; returns the report section (``tolerance_met`` for a search)."""
    progress, threads, fp32_path, stage = state.progress, state.options.threads, state.files["onnx"], state.stage
    loop = forward_loop_over(calibration.batches, config.calibration_samples,
                             on_batch=lambda n: progress.say(f"  calibrated on {n} samples") if n % 128 < 16 else None)
    trial_batches = state.data.trial_batches()
    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        work = Path(tmp)
        builder = StaticInt8Builder(state.model, loop, calibration.batches[0], work, threads, plain_fp32=fp32_path)
        section: dict = {"mode": "static", "calibration": calibration.source}
        evaluate = evaluator(state, fp32_path, state.data.validation, trial_batches)
        if isinstance(config, Int8SearchConfig):
            dynamic = _dynamic_candidate(fp32_path, work / "dynamic.int8.onnx") if config.include_dynamic and config.target == "cpu" else None
            result = search_int8(builder, config, evaluate, work, dynamic, say=progress.say)
            section["search"] = result.report
            section["tolerance_met"] = result.met
            if result.config is None:  # the dynamic candidate won
                section.update(mode="dynamic", chosen="dynamic per-channel INT8")
                (work / "best.int8.onnx").replace(stage / config.outputs()["onnx-int8"])
                return section
            chosen, keep = result.config, result.keep
        else:
            chosen, keep = config, set(config.keep_float)
            if config.keep_float_count:
                ranking = sensitivity_ranking(builder, config, evaluate, work, lambda: False, progress.say)
                keep = builder.keep_set(config, ranking)
                section["sensitivity"] = builder.sensitivity
        tolerance = config.max_drop if isinstance(config, Int8SearchConfig) else tolerance_for(state.data.metric, state.options)
        section.update(build_fastest(builder, chosen, keep, stage, evaluate, tolerance))
        if section["variant_trial_p50_ms"]:
            progress.say(_variant_line(section, state.data.metric))
    return section


def _variant_line(section: dict, metric) -> str:
    """The graph variant kept, with every variant's trial p50 and, where their answers differ, validation drop."""
    timed = ", ".join(f"{label} {p50:.1f} ms" for label, p50 in section["variant_trial_p50_ms"].items())
    drops = ", ".join(f"{label} {describe(metric, drop)}" for label, drop in section.get("variant_validation_drop", {}).items())
    return f"  kept the {section['variant']} graph (trial p50: {timed}" + (f"; validation drop: {drops})" if drops else ")")


def _dynamic_candidate(fp32_path: Path, out_path: Path) -> Path | None:
    """Dynamic per-channel INT8 as the search's cheapest candidate, where ORT's quantizer can make it."""
    try:
        quantize_onnx_int8(fp32_path, out_path, OnnxInt8Config(mode="dynamic", graph_optimization="off"))
    except QuantizationError:
        return None
    return out_path
