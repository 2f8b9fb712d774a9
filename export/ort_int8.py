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

import numpy as np
import onnx

from compress.config import StepConfig, register_config
from compress.errors import ConfigError, QuantizationError
from export.onnx_io import check_and_infer

MODES = ("auto", "dynamic", "static")
GRAPH_OPTIMIZATION = ("auto", "on", "off")
# Model types ONNX Runtime's offline transformer optimizer knows how to fuse.
FUSABLE_MODEL_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "camembert", "deberta", "gpt2", "bart", "t5", "vit", "clip")


@register_config
class OnnxInt8Config(StepConfig):
    """INT8 ONNX for the CPU target (integer operators)."""

    mode: str = "auto"  # auto: static when the graph has convolutions, else dynamic
    per_channel: bool = True
    graph_optimization: str = "auto"  # auto: fuse only when the fused INT8 model measures faster
    calibration_samples: int = 256

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

    def to_json(self) -> dict:
        return {"mode": self.mode, "transformer_fusions": self.fused,
                "onnxruntime_disabled_optimizers": list(self.disabled_optimizers), "variant_trial_p50_ms": self.trials}


def resolve_mode(fp32: onnx.ModelProto, mode: str) -> str:
    if mode != "auto":
        return mode
    has_conv = any(n.op_type in ("Conv", "ConvTranspose") for n in fp32.graph.node)
    return "static" if has_conv else "dynamic"


def quantize_onnx_int8(
    fp32_path: Path,
    out_path: Path,
    config: OnnxInt8Config,
    calibration: Iterable[dict[str, np.ndarray]] | None = None,
    fusion: FusionHint | None = None,
    trial_inputs: dict[str, np.ndarray] | None = None,
    threads: int | None = None,
) -> Int8Result:
    """Write ``out_path`` from ``fp32_path`` (never modified).

    With ``graph_optimization="auto"`` and ``trial_inputs``, candidate graphs are timed on the
    trial batch and the fastest kept; a more complex candidate must beat the plain one by 3%.
    """
    fp32 = onnx.load(str(fp32_path), load_external_data=False)
    mode = resolve_mode(fp32, config.mode)
    if mode == "static" and calibration is None:
        raise QuantizationError("static INT8 needs calibration batches; pass --calib FILE or use dynamic mode")
    calibration = list(calibration) if calibration is not None else None  # each candidate re-reads it
    want_fusion = fusion is not None and fusion.model_type in FUSABLE_MODEL_TYPES and config.graph_optimization != "off"
    has_layer_norm = any(n.op_type == "LayerNormalization" for n in fp32.graph.node)
    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        tmp = Path(tmp)
        plain = tmp / "plain.int8.onnx"
        _quantize(fp32_path, plain, mode, config, calibration, tmp)
        if not want_fusion and not (has_layer_norm and config.graph_optimization == "auto"):
            return _finish(plain, out_path, Int8Result(mode, False))
        fused = None
        if want_fusion:
            fused_fp32 = tmp / "fused.fp32.onnx"
            _fuse(fp32_path, fused_fp32, fusion)
            fused = tmp / "fused.int8.onnx"
            _quantize(fused_fp32, fused, mode, config, calibration, tmp)
        if config.graph_optimization == "on" or trial_inputs is None:
            return _finish(fused or plain, out_path, Int8Result(mode, fused is not None))
        # Candidates: (file, fused?, optimizers disabled at load). ORT's SkipLayerNormalization
        # kernel measured slower than LayerNormalization + Add on an AVX2 CPU, so unfused is tried too.
        no_skip = ("SkipLayerNormFusion",)
        candidates = {"plain": (plain, False, ())}
        if has_layer_norm:
            candidates["plain, no SkipLayerNorm fusion"] = (plain, False, no_skip)
        if fused is not None:
            candidates["fused, no SkipLayerNorm fusion"] = (fused, True, no_skip)
        times = {name: trial_p50(path, trial_inputs, threads, disabled) for name, (path, _, disabled) in candidates.items()}
        best = min(times, key=times.get)
        if times[best] > 0.97 * times["plain"]:
            best = "plain"
        path, is_fused, disabled = candidates[best]
        return _finish(path, out_path, Int8Result(mode, is_fused, disabled, times))


def _finish(src: Path, out_path: Path, result: Int8Result) -> Int8Result:
    check_and_infer(src)
    shutil.move(str(src), out_path)
    return result


def _quantize(src: Path, dst: Path, mode: str, config: OnnxInt8Config, calibration, tmp: Path) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
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


def trial_p50(path: Path, inputs: dict[str, np.ndarray], threads: int | None, disabled: tuple[str, ...]) -> float:
    from bench.latency import measure
    from export.ort_session import make_session, run_session

    session = make_session(path, threads, disabled_optimizers=disabled)
    try:
        return round(measure(lambda x: run_session(session, x), [inputs], warmup=2, min_iters=5, min_seconds=1.0).p50_ms, 3)
    finally:
        del session


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
