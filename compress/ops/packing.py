"""The packed INT8 weight layout of csrc/cpu/int8_gemm_packed.h, built once at quantization time.

Blocks of 16 output columns; within a block, groups of 4 consecutive input features, 64 bytes a
group: ``packed[b, g, c, r] = W[16 b + c, 4 g + r]``, zero past N or K. It is what AVX-512 VNNI's
``vpdpbusd`` (one 64-byte load = 16 columns x 4 K) and AMX's weight tiles read directly, so the
kernels never reorder weights per call; AVX2 and the portable path read the same layout, so a
model packed on one CPU runs on any other. ``w_sums[n] = sum_k W[n, k]`` lets the VNNI kernels
feed activations as unsigned bytes (q + 128) and subtract 128 * w_sums afterwards, exactly.
"""

from __future__ import annotations

import torch

COLUMNS, GROUP = 16, 4


def pack_weight(w_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w_q`` int8 [N, K] -> (``w_packed`` int8 [ceil(N/16), ceil(K/4), 16, 4], ``w_sums`` int32 [16 ceil(N/16)])."""
    if w_q.dim() != 2 or w_q.dtype != torch.int8:
        raise ValueError(f"pack_weight takes an int8 [N, K] weight, got {w_q.dim()}-D {w_q.dtype}")
    n, k = w_q.shape
    blocks, groups = -(-n // COLUMNS), -(-k // GROUP)
    padded = torch.zeros(blocks * COLUMNS, groups * GROUP, dtype=torch.int8, device=w_q.device)
    padded[:n, :k] = w_q
    packed = padded.reshape(blocks, COLUMNS, groups, GROUP).permute(0, 2, 1, 3).contiguous()
    return packed, padded.sum(dim=1, dtype=torch.int32)


def unpack_weight(w_packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The int8 [N, K] weight ``pack_weight`` packed."""
    blocks, groups = w_packed.shape[:2]
    return w_packed.permute(0, 2, 1, 3).reshape(blocks * COLUMNS, groups * GROUP)[:n, :k].contiguous()
