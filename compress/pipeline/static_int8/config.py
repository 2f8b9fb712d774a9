"""The static-INT8 steps: one calibrated configuration (``Int8StaticConfig``), or the search for the
fastest one within a metric drop (``Int8SearchConfig``). Both read the FP32 ONNX export (and the
PyTorch model, for SmoothQuant) and write model.int8.onnx, plus model.int8.qdq.onnx for TensorRT."""

from __future__ import annotations

from typing import ClassVar

from compress.core.errors import ConfigError
from compress.core.registry import ONNX_INT8, StepConfig, StepKind, register_config
from compress.passes.smoothquant import SmoothQuantConfig
from export.int8.observers import METHODS
from export.int8.ort_quantize import FILE_NAME as INT8_FILE

TARGETS = ("cpu", "tensorrt")
QDQ_FILE = "model.int8.qdq.onnx"  # TensorRT's explicit quantization


def _outputs(target: str) -> dict[str, str | None]:
    return {"onnx-int8": INT8_FILE, **({"onnx-qdq": QDQ_FILE} if target == "tensorrt" else {})}


@register_config
class Int8StaticConfig(StepConfig):
    """Static INT8: weights symmetric per output channel, activations per tensor from calibration."""

    kind: ClassVar[StepKind] = ONNX_INT8

    method: str = "minmax"  # activation range: minmax, percentile, entropy (KL) or mse
    percentile: float = 99.999  # for method="percentile"
    smoothquant_alpha: float | None = 0.85  # None: no SmoothQuant
    keep_float: tuple[str, ...] = ()  # layers (module paths, as report.json lists them) left in float
    keep_float_count: int = 0  # also leave the N most sensitive layers in float (sensitivity analysis)
    target: str = "cpu"  # cpu: integer ops for ONNX Runtime; tensorrt: also the QDQ file for TensorRT
    calibration_samples: int = 256

    def uses_calibration(self) -> bool:
        return True

    def outputs(self) -> dict[str, str | None]:
        return _outputs(self.target)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"calibration method {self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile {self.percentile} must be in (50, 100], e.g. 99.999")
        if self.smoothquant_alpha is not None:
            SmoothQuantConfig(self.smoothquant_alpha)
        if self.target not in TARGETS:
            raise ConfigError(f"target {self.target!r} is unknown; use cpu or tensorrt")
        if self.keep_float_count < 0:
            raise ConfigError("keep_float_count must be 0 or more")
        if self.calibration_samples < 1:
            raise ConfigError("calibration_samples must be at least 1")

    def describe(self) -> str:
        sq = f"SmoothQuant {self.smoothquant_alpha}" if self.smoothquant_alpha is not None else "no SmoothQuant"
        method = f"percentile {self.percentile}" if self.method == "percentile" else self.method
        kept = len(self.keep_float) + self.keep_float_count
        return f"static {method}, {sq}" + (f", {kept} layer(s) float" if kept else "")


@register_config
class Int8SearchConfig(StepConfig):
    """Search static INT8 configurations for the fastest one within ``max_drop`` of the original."""

    kind: ClassVar[StepKind] = ONNX_INT8

    max_drop: float = 0.002  # of the task metric: 0.002 = 0.2% cosine, or 0.2 accuracy points
    budget_seconds: float = 600.0
    target: str = "cpu"
    alphas: tuple[float, ...] = (0.5, 0.75, 0.85)
    methods: tuple[str, ...] = ("minmax", "percentile", "mse", "entropy")
    # tried doubling (1, 2, 4, ...), then bisected; None: up to half the ranked groups, at least 16
    # (a CNN's error builds up over dozens of convolutions: the OCR recogniser needed more than 16 of 47)
    max_float_layers: int | None = None
    calibration_samples: int = 256
    include_dynamic: bool = True  # also try dynamic INT8 (not where the user asked for static activations)

    def uses_calibration(self) -> bool:
        return True

    def outputs(self) -> dict[str, str | None]:
        return _outputs(self.target)

    def __post_init__(self):
        if not 0.0 <= self.max_drop < 1.0:
            raise ConfigError(f"max drop {self.max_drop} must be a fraction in [0, 1), e.g. 0.002 for 0.2%")
        if self.budget_seconds <= 0:
            raise ConfigError("the search budget must be positive, e.g. --search-budget 10m")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"calibration method {bad[0]!r} is unknown; use {', '.join(METHODS)}")
        Int8StaticConfig(target=self.target, calibration_samples=self.calibration_samples)
        for alpha in self.alphas:
            Int8StaticConfig(smoothquant_alpha=alpha)
