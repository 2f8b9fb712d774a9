"""TensorRT engines as a benchmark backend: export/trt_runner.py's runner behind the Backend protocol."""

from __future__ import annotations

from bench.backends.base import Backend
from export.tensorrt.available import tensorrt_missing_reason
from export.tensorrt.runner import EngineRunner


def trt_reason() -> str | None:
    return tensorrt_missing_reason()


class TrtEngineBackend(EngineRunner, Backend):
    name = "trt"
    on_gpu = True
