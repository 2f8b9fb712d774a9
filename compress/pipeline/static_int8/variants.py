"""The graph variants of a chosen static-INT8 configuration's CPU file, and the choice between them.

The same configuration can be written several ways that ONNX Runtime runs at different speeds on
different CPUs (its SkipLayerNormalization fusion) or as different kernels altogether (the Convs'
outputs quantized, so every Conv runs as an integer QLinearConv). Each is written and timed here
(``compress.pipeline.fastest_variant``); one that changes the answers must also be accurate enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.pipeline.fastest_variant import MUST_BEAT_PLAIN_BY, pick_fastest
from compress.pipeline.static_int8.builder import StaticInt8Builder
from compress.pipeline.static_int8.config import QDQ_FILE, Int8StaticConfig
from compress.pipeline.static_int8.evaluator import Evaluator
from export.int8.ort_quantize import NO_SKIP_LAYER_NORM


@dataclass(frozen=True)
class Variant:
    """One way to write the chosen configuration's CPU file."""

    label: str
    disabled: tuple[str, ...]  # ONNX Runtime optimizers off at load
    conv_outputs: bool  # the Convs' outputs quantized too (QLinearConv): changes the answers


def variants(builder: StaticInt8Builder, config: Int8StaticConfig, keep: set[str]) -> list[Variant]:
    """The plain graph first (a tie keeps it), then the variants that differ on this graph: the Convs'
    outputs quantized (where it has quantized Convs), ONNX Runtime's SkipLayerNormalization fusion
    off (where it has a LayerNorm to fuse; its kernel is slower than LayerNorm + Add on some CPUs)."""
    fp32 = builder.prepare(config.smoothquant_alpha).graph
    forms = [("plain", False)] + ([("Conv outputs quantized", True)] if builder.has_conv_outputs(config, keep) else [])
    fusions = [("", ())]
    if any(n.op_type == "LayerNormalization" for n in fp32.graph.node):
        fusions.append(("without SkipLayerNorm fusion", NO_SKIP_LAYER_NORM))
    return [Variant(", ".join(filter(None, (form, fusion))), disabled, conv) for form, conv in forms for fusion, disabled in fusions]


def build_fastest(builder: StaticInt8Builder, config: Int8StaticConfig, keep: set[str], stage: Path, evaluate: Evaluator,
                  tolerance: float) -> dict:
    """Write the chosen configuration in each variant and keep the one that measures fastest here,
    of those accurate enough (``accurate_enough``) where the variants' answers differ."""
    qdq = stage / QDQ_FILE if config.target == "tensorrt" else None
    built = {}
    for i, variant in enumerate(variants(builder, config, keep)):
        path = stage / f"trial-{i}.int8.onnx"
        info = builder.build(config, path, qdq if i == 0 else None, keep, variant.disabled, variant.conv_outputs)  # one TensorRT file for all
        built[variant.label] = (path, variant, info)
    drops = {}
    if any(variant.conv_outputs for _, variant, _ in built.values()):
        drops = {label: evaluate(path, variant.disabled)[0] for label, (path, variant, _) in built.items()}
    best, times = pick_fastest({label: (path, variant.disabled) for label, (path, variant, _) in built.items()},
                               evaluate.timing_batches, evaluate.threads, MUST_BEAT_PLAIN_BY, allowed=accurate_enough(drops, tolerance))
    path, variant, info = built[best]
    path.replace(stage / config.outputs()["onnx-int8"])
    for other, _, _ in built.values():
        other.unlink(missing_ok=True)
    return {**info, "variant": best, "onnxruntime_disabled_optimizers": list(variant.disabled), "transformer_fusions": False,
            "variant_trial_p50_ms": times, **({"variant_validation_drop": drops} if drops else {})}


def accurate_enough(drops: dict[str, float], tolerance: float) -> set[str] | None:
    """The variants allowed to win on speed (None: all, their answers being the same).

    A faster variant must not silently cost accuracy. Those within the tolerance may win: the
    tolerance is the accuracy the user agreed to trade. Where none is within it, only the most
    accurate may: trading more accuracy for speed is then the user's call (--max-drop). No margin
    beyond that: all variants are scored on the same validation samples, so equal answers give
    equal drops, and one that gets more of those samples wrong is not kept for its speed.
    """
    if not drops:
        return None
    within = {label for label, drop in drops.items() if drop <= tolerance}
    return within or {label for label, drop in drops.items() if drop == min(drops.values())}
