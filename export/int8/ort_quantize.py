"""ONNX FP32 → INT8 with integer operators for ONNX Runtime on CPU.

Weights are symmetric INT8 per output channel. Transformer-like graphs (MatMul-heavy, with
activations whose range changes per input) quantize activations dynamically; convolutional
graphs quantize them statically from calibration batches, the split ONNX Runtime recommends.
ONNX Runtime's offline transformer fusions are kept only where they measurably pay.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx

from compress.core.errors import ConfigError, QuantizationError
from compress.core.model import Model
from compress.core.registry import ONNX_INT8, StepConfig, StepKind, register_config
from export.onnx.checks import check_and_infer

FILE_NAME = "model.int8.onnx"
MODES = ("auto", "dynamic", "static")
GRAPH_OPTIMIZATION = ("auto", "on", "off")
# Model types ONNX Runtime's offline transformer optimizer knows how to fuse.
FUSABLE_MODEL_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "camembert", "deberta", "gpt2", "bart", "t5", "vit", "clip")


@register_config
class OnnxInt8Config(StepConfig):
    """INT8 ONNX for the CPU target (integer operators)."""

    kind: ClassVar[StepKind] = ONNX_INT8

    mode: str = "auto"  # auto: static when the graph has convolutions, else dynamic
    per_channel: bool = True
    graph_optimization: str = "auto"  # auto: fuse only when the fused INT8 model measures faster
    calibration_samples: int = 256

    def outputs(self) -> dict[str, str | None]:
        return {"onnx-int8": FILE_NAME}

    def uses_calibration(self) -> bool:
        return self.mode != "dynamic"  # auto is static for a graph with convolutions

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"int8 mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        if self.graph_optimization not in GRAPH_OPTIMIZATION:
            raise ConfigError(f"graph_optimization {self.graph_optimization!r} is unknown; use one of {', '.join(GRAPH_OPTIMIZATION)}")
        if self.calibration_samples < 1:
            raise ConfigError("calibration_samples must be at least 1")


@dataclass(frozen=True)
class FusionHint:
    """What ONNX Runtime's transformer optimizer needs to know about a transformer."""

    model_type: str
    num_heads: int
    hidden_size: int


@dataclass
class Int8Result:
    mode: str
    fused: bool
    # ONNX Runtime graph optimizers to switch off when loading the INT8 model: recorded in the
    # manifest and applied by our backends, because on some CPUs a fusion is slower than no fusion.
    disabled_optimizers: tuple[str, ...] = ()
    trials: dict = field(default_factory=dict)  # variant -> measured p50 ms, when auto chose
    per_channel: bool = True  # weight scales per output channel, else one per tensor

    def to_json(self) -> dict:
        return {"mode": self.mode, "transformer_fusions": self.fused, "weights": "per-channel" if self.per_channel else "per-tensor",
                "onnxruntime_disabled_optimizers": list(self.disabled_optimizers), "variant_trial_p50_ms": self.trials}


def resolve_mode(fp32: onnx.ModelProto, mode: str) -> str:
    if mode != "auto":
        return mode
    has_conv = any(n.op_type in ("Conv", "ConvTranspose") for n in fp32.graph.node)
    return "static" if has_conv else "dynamic"


@dataclass(frozen=True)
class Candidate:
    """One INT8 file to choose from, and how ONNX Runtime must load it."""

    path: Path
    fused: bool
    disabled_optimizers: tuple[str, ...] = ()
    per_channel: bool = True


NO_SKIP_LAYER_NORM = ("SkipLayerNormFusion",)


def int8_candidates(fp32_path: Path, work: Path, config: OnnxInt8Config,
                    calibration: Iterable[dict[str, np.ndarray]] | None = None,
                    fusion: FusionHint | None = None) -> tuple[str, dict[str, Candidate]]:
    """(activation mode, the INT8 files worth choosing between), written into ``work``.

    One candidate: nothing to choose. Several (``graph_optimization="auto"``): the first is the
    plain graph, and the caller times them (``compress.pipeline.fastest_variant``) and keeps a more
    complex one only where it measurably pays. ORT's SkipLayerNormalization kernel measured slower
    than LayerNormalization + Add on an AVX2 CPU, so variants without that fusion are candidates too.
    """
    fp32 = onnx.load(str(fp32_path), load_external_data=False)
    mode = resolve_mode(fp32, config.mode)
    if mode == "static" and calibration is None:
        raise QuantizationError("static INT8 needs calibration batches; pass --calib FILE or use dynamic mode")
    calibration = list(calibration) if calibration is not None else None  # each candidate re-reads it
    want_fusion = fusion is not None and fusion.model_type in FUSABLE_MODEL_TYPES and config.graph_optimization != "off"
    has_layer_norm = any(n.op_type == "LayerNormalization" for n in fp32.graph.node)
    plain = work / "plain.int8.onnx"
    _quantize(fp32_path, plain, mode, config, calibration, work)
    per_channel = config.per_channel
    if not want_fusion and not (has_layer_norm and config.graph_optimization == "auto"):
        return mode, {"plain": Candidate(plain, False, (), per_channel)}
    fused = None
    if want_fusion:
        fused_fp32 = work / "fused.fp32.onnx"
        _fuse(fp32_path, fused_fp32, fusion)
        fused = work / "fused.int8.onnx"
        _quantize(fused_fp32, fused, mode, config, calibration, work)
    if config.graph_optimization == "on":
        return mode, {"fused": Candidate(fused, True, (), per_channel)} if fused is not None else {"plain": Candidate(plain, False, (), per_channel)}
    candidates = {"plain": Candidate(plain, False, (), per_channel)}
    if has_layer_norm:
        candidates["plain, no SkipLayerNorm fusion"] = Candidate(plain, False, NO_SKIP_LAYER_NORM, per_channel)
    if fused is not None:
        candidates["fused, no SkipLayerNorm fusion"] = Candidate(fused, True, NO_SKIP_LAYER_NORM, per_channel)
    return mode, candidates


def write_candidate(candidate: Candidate, out_path: Path, mode: str, trials: dict | None = None) -> Int8Result:
    """Check the chosen file and move it to ``out_path``."""
    check_and_infer(candidate.path)
    shutil.move(str(candidate.path), out_path)
    return Int8Result(mode, candidate.fused, candidate.disabled_optimizers, trials or {}, candidate.per_channel)


def quantize_onnx_int8(fp32_path: Path, out_path: Path, config: OnnxInt8Config,
                       calibration: Iterable[dict[str, np.ndarray]] | None = None, fusion: FusionHint | None = None) -> Int8Result:
    """Write ``out_path`` from ``fp32_path`` (never modified) without timing anything: the fused graph
    where there is one, else the plain one. The pipeline's INT8 step times the candidates instead."""
    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        mode, candidates = int8_candidates(fp32_path, Path(tmp), config, calibration, fusion)
        chosen = next((c for c in candidates.values() if c.fused), next(iter(candidates.values())))
        return write_candidate(Candidate(chosen.path, chosen.fused, (), chosen.per_channel), out_path, mode)  # loaded with every optimizer on


def _quantize(src: Path, dst: Path, mode: str, config: OnnxInt8Config, calibration, tmp: Path) -> None:
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # fused contrib ops carry no inferred types
    try:
        with quiet_ort():
            if mode == "dynamic":
                quantize_dynamic(src, dst, per_channel=config.per_channel, weight_type=QuantType.QInt8, extra_options=options)
                return
            prepared = tmp / f"{src.stem}.prep.onnx"
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                prepared, dst, _Reader(calibration, config.calibration_samples), quant_format=QuantFormat.QOperator,
                per_channel=config.per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                extra_options=options,
            )
    except QuantizationError:
        raise
    except Exception as exc:  # ORT's quantizer raises bare exceptions of many kinds
        raise QuantizationError(f"ONNX Runtime could not quantize {src.name} ({mode}): {str(exc).splitlines()[0]}") from exc


def _fuse(src: Path, dst: Path, hint: FusionHint) -> None:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_ort():
        options = FusionOptions(hint.model_type)
        options.enable_skip_layer_norm = False  # slower than LayerNormalization + Add where measured
        optimized = optimize_model(str(src), model_type=hint.model_type, num_heads=hint.num_heads,
                                   hidden_size=hint.hidden_size, opt_level=0, optimization_options=options)
        optimized.save_model_to_file(str(dst))


class _Reader:
    """ONNX Runtime's CalibrationDataReader over our batches, stopping after ``limit`` samples."""

    def __init__(self, batches, limit: int):
        self._iter, self._left = iter(batches), limit

    def get_next(self):
        if self._left <= 0:
            return None
        batch = next(self._iter, None)
        if batch is None:
            return None
        n = min(self._left, len(next(iter(batch.values()))))
        self._left -= n
        return {k: v[:n] for k, v in batch.items()}


@contextlib.contextmanager
def quiet_ort():
    """ORT's quantizer logs per-node chatter at INFO/WARNING; the user sees our progress lines instead."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the transformer optimizer print()s its failures
            yield
    finally:
        root.setLevel(level)


def fusion_hint(model: Model) -> FusionHint | None:
    """What ONNX Runtime's transformer optimizer needs, from a transformers model's config; None for anything else."""
    config = getattr(model.hf_model, "config", None)
    heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
    if config is None or not heads or not hidden:
        return None
    pruned = {len(v) for v in (getattr(config, "pruned_heads", None) or {}).values()}
    if pruned:  # fused attention needs one head count for every layer: the kept one
        if len(pruned) > 1 or len(config.pruned_heads) != getattr(config, "num_hidden_layers", len(config.pruned_heads)):
            return None
        head_dim, heads = hidden // heads, heads - pruned.pop()
        hidden = heads * head_dim
    return FusionHint(config.model_type, heads, hidden)
