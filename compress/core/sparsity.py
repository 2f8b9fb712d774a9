"""The n:m sparsity pattern (2:4 on NVIDIA GPUs): made by the pruning pass, checked again in the exported ONNX weights."""

from __future__ import annotations

import numpy as np
import torch


def check_n_m(weight: torch.Tensor | np.ndarray, n: int = 2, m: int = 4) -> bool:
    """True when every m consecutive weights along the input dimension hold at most n non-zeros.

    ``weight`` is in PyTorch layout: [out, in] for a Linear, [out, in, *kernel] for a Conv (as
    in an ONNX Conv or a Gemm with transB=1). An input dimension that is not a multiple of m
    cannot hold the pattern.
    """
    nonzero = torch.from_numpy(np.asarray(weight) != 0) if isinstance(weight, np.ndarray) else weight.detach() != 0
    rows = input_rows(nonzero)
    if rows.shape[1] % m:
        return False
    return bool((rows.reshape(-1, m).sum(1) <= n).all())


def input_rows(weight: torch.Tensor) -> torch.Tensor:
    """[rows, in]: a Conv's input channels become the last axis, one row per (output, kernel position)."""
    return weight if weight.ndim == 2 else weight.movedim(1, -1).reshape(-1, weight.shape[1])
