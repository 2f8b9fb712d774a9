"""Can TensorRT engines be built and run here? One answer for the engine builder, the bundle
runtime and the benchmark suite."""

from __future__ import annotations

import importlib


def tensorrt_missing_reason() -> str | None:
    """None when ``import tensorrt`` works and PyTorch sees a CUDA GPU; else what is missing and how to get it."""
    try:
        importlib.import_module("tensorrt")  # a real import: a broken install counts as missing
    except ImportError:
        return "tensorrt is not installed: pip install tensorrt on a machine with an NVIDIA GPU and driver"
    import torch

    if not torch.cuda.is_available():
        return "tensorrt is installed but no CUDA GPU is visible to PyTorch"
    return None
