"""The runner's static-INT8 step: one configuration, or the accuracy-aware search.

Writes ``model.int8.onnx`` (integer ops for ONNX Runtime on CPU) and, for the TensorRT target,
``model.int8.qdq.onnx`` into the staged output, and returns the report section. Calibration
batches stream through a forward loop; validation data (for the search and the sensitivity
analysis) is held out from both calibration and the final evaluation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from compress.data import Dataset, default_data, split_off
from compress.model import Model
from compress.passes.int8_search import Evaluator, Int8SearchConfig, metric_for_task, search_int8, sensitivity_ranking
from compress.passes.quantize import Int8StaticConfig, StaticInt8Builder
from export.calibrate import forward_loop_over

VALIDATION_SAMPLES = 64
NO_SKIP_LAYER_NORM = ("SkipLayerNormFusion",)


def validation_split(model: Model, evaluation: Dataset, user_eval: bool, seq_len: int) -> tuple[Dataset, Dataset]:
    """(validation, evaluation): from the user's --eval file its first part, else the built-in held-out source."""
    if user_eval:
        return split_off(evaluation, min(VALIDATION_SAMPLES, evaluation.num_samples // 4))
    return default_data(model, "validation", VALIDATION_SAMPLES, 16, seq_len), evaluation


def static_int8(model: Model, config: Int8StaticConfig | Int8SearchConfig, fp32_path: Path, stage: Path, calibration: Dataset,
                validation: Dataset | None, trial_batch: dict, threads: int, progress, metric=None,
                dynamic_candidate=None) -> dict:
    """Build the INT8 files in ``stage``; returns the report section (``tolerance_met`` for a search)."""
    loop = forward_loop_over(calibration.batches, config.calibration_samples,
                             on_batch=lambda n: progress.say(f"  calibrated on {n} samples") if n % 128 < 16 else None)
    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        work = Path(tmp)
        builder = StaticInt8Builder(model, loop, calibration.batches[0], work, threads, plain_fp32=fp32_path)
        section: dict = {"mode": "static", "calibration": calibration.source}
        evaluate = _evaluator(model, fp32_path, validation, trial_batch, threads, metric) if validation is not None else None
        if isinstance(config, Int8SearchConfig):
            dyn = dynamic_candidate(work / "dynamic.int8.onnx") if dynamic_candidate else None
            result = search_int8(builder, config, evaluate, work, dyn, say=progress.say)
            section["search"] = result.report
            section["tolerance_met"] = result.met
            if result.config is None:  # the dynamic candidate won
                section.update(mode="dynamic", chosen="dynamic per-channel INT8")
                (work / "best.int8.onnx").replace(stage / "model.int8.onnx")
                return section
            chosen, keep = result.config, result.keep
        else:
            chosen, keep = config, set(config.keep_float)
            if config.keep_float_count:
                ranking = sensitivity_ranking(builder, config, evaluate, work, lambda: False, progress.say)
                keep = builder.keep_set(config, ranking)
                section["sensitivity"] = builder.sensitivity
        section.update(_build_fastest(builder, chosen, keep, stage, trial_batch, threads))
    return section


def _build_fastest(builder: StaticInt8Builder, config: Int8StaticConfig, keep: set[str], stage: Path, trial_batch: dict, threads: int) -> dict:
    """Write the chosen configuration, with ONNX Runtime's SkipLayerNormalization fusion folded in
    or not, whichever measures faster here (its kernel is slower than LayerNorm + Add on some CPUs)."""
    from export.ort_int8 import trial_p50

    qdq = stage / "model.int8.qdq.onnx" if config.target == "tensorrt" else None
    trials = {}
    for label, disabled in (("with SkipLayerNorm fusion", ()), ("without SkipLayerNorm fusion", NO_SKIP_LAYER_NORM)):
        path = stage / f"trial-{len(trials)}.int8.onnx"
        info = builder.build(config, path, qdq if not trials else None, keep, disabled)  # the QDQ file is the same for both
        trials[label] = (trial_p50(path, trial_batch, threads, disabled), path, disabled, info)
    best = min(trials, key=lambda k: trials[k][0])
    p50, path, disabled, info = trials[best]
    path.replace(stage / "model.int8.onnx")
    for _, other, _, _ in trials.values():
        other.unlink(missing_ok=True)
    return {**info, "onnxruntime_disabled_optimizers": list(disabled), "transformer_fusions": False,
            "variant_trial_p50_ms": {k: v[0] for k, v in trials.items()}}


def _evaluator(model: Model, fp32_path: Path, validation: Dataset, trial_batch: dict, threads: int, metric) -> Evaluator:
    from bench.backends import OrtBackend, run_all

    with OrtBackend(fp32_path, threads) as backend:  # the exported FP32 graph: parity-checked against PyTorch
        reference = run_all(backend, validation.batches)
    name, fn = ("custom metric", metric) if metric is not None else metric_for_task(model.task, validation.labels)
    return Evaluator(validation.batches, reference, validation.labels, fn, trial_batch, threads, name)
