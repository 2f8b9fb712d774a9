"""``OnnxInt8Config``: model.onnx → model.int8.onnx with ONNX Runtime's quantizer (integer
operators for the CPU); where graph variants exist, the one that runs fastest here is kept."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from compress.core.registry import register_handler
from compress.pipeline.fastest_variant import pick_fastest
from compress.pipeline.int8_guard import guard_int8
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

MUST_BEAT_PLAIN_BY = 0.03  # a fused graph is kept only if it is 3% faster than the plain one


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
        result = quantize_fastest(fp32, out, config, calibration, fusion_hint(state.model), state.data.trial_batch(), state.options.threads)
        section = result.to_json()
        state.progress.say(f"  activations: {section['mode']}, transformer fusions: {section['transformer_fusions']}, "
                           f"ORT optimizers off at load: {section['onnxruntime_disabled_optimizers'] or 'none'}")
        section = state.report["int8"] = guard_int8(state, out, tuple(section["onnxruntime_disabled_optimizers"]), section,
                                                    escalate=lambda search: search_int8_files(search, state))
    state.runtime[out.name] = {"onnxruntime": {"disabled_optimizers": section.get("onnxruntime_disabled_optimizers", [])}}
    state.files["onnx-int8"] = out


onnx_int8_step.uses_validation = True  # the guard scores the INT8 file on held-out validation data


def quantize_fastest(fp32: Path, out: Path, config: OnnxInt8Config, calibration, fusion, trial_batch: dict, threads: int) -> Int8Result:
    """``out`` from ``fp32`` with ONNX Runtime's quantizer: of the graph variants worth trying, the
    one that runs fastest here on ``trial_batch`` (a fused one must beat the plain one by 3%)."""
    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        mode, candidates = int8_candidates(fp32, Path(tmp), config, calibration, fusion)
        chosen, trials = next(iter(candidates)), {}
        if len(candidates) > 1:
            variants = {name: (c.path, c.disabled_optimizers) for name, c in candidates.items()}
            chosen, trials = pick_fastest(variants, trial_batch, threads, MUST_BEAT_PLAIN_BY)
        return write_candidate(candidates[chosen], out, mode, trials)
