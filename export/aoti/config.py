"""``AotiPackageConfig`` (``--int8 --backend torch --target aoti``): compile the INT8 program into
an AOTInductor package for the device it will run on."""

from __future__ import annotations

from typing import ClassVar

from compress.core.errors import ConfigError
from compress.core.registry import AOTI_BUILD, StepConfig, StepKind, register_config

DEVICES = ("cpu", "cuda")


@register_config
class AotiPackageConfig(StepConfig):
    """Compile model.int8.pt2 ahead of time with AOTInductor for ``device``."""

    kind: ClassVar[StepKind] = AOTI_BUILD

    # cuda: on a GPU machine; the model is quantized again on the GPU (the CPU program's weights are
    # packed for the CPU kernels), traced there and compiled for that GPU's compute capability
    device: str = "cpu"

    def outputs(self) -> dict[str, str | None]:
        # named for the device (CPU kernel path, or GPU compute capability) and torch version it is compiled for
        return {"aoti": "model.int8.aoti.cpu-*.pt2" if self.device == "cpu" else "model.int8.aoti.sm*.pt2"}

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ConfigError(f"AOTInductor device {self.device!r} is unknown; use cpu or cuda")

    def describe(self) -> str:
        return f"AOTInductor package for {self.device}"
