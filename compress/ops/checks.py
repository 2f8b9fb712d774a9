"""The argument checks of csrc/op_checks.h, for the reference ops: the fallback rejects the same
bad input with the same messages (RuntimeError, as TORCH_CHECK raises), never a silent wrong answer."""

from __future__ import annotations

import torch

from compress.ops.packing import COLUMNS, GROUP

MAX_REDUCTION = 133143  # K * 127 * 127 < 2^31: the int32 accumulator cannot overflow
FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _fail(op: str, message: str) -> None:
    raise RuntimeError(f"compress::{op}: {message}")


def check_quantize(x: torch.Tensor) -> None:
    op = "quantize_per_token"
    if x.dim() != 2:
        _fail(op, f"x must be 2-D [rows, cols], got {x.dim()}-D; flatten the leading dimensions first")
    allowed = FLOATS if x.is_cuda else (torch.float32,)
    if x.dtype not in allowed:
        _fail(op, f"x must be {'float32, float16 or bfloat16' if x.is_cuda else 'float32 on CPU'}, got {x.dtype}")
    if not x.is_contiguous():
        _fail(op, "x must be contiguous; call x.contiguous() first")
    if x.numel() and not bool(torch.isfinite(x).all()):
        _fail(op, "x contains NaN or Inf; per-token scales cannot represent it")


def _check_q(op: str, q) -> None:
    if q.dim() != 2 or q.dtype != torch.int8:
        _fail(op, f"q must be a 2-D int8 tensor [M, K], got {q.dim()}-D {q.dtype}")


def _check_reduction(op: str, k: int) -> None:
    if k > MAX_REDUCTION:
        _fail(op, f"K={k} could overflow the int32 accumulator; at most {MAX_REDUCTION}")


def _check_x_scale(op: str, x_scale, q) -> None:
    if x_scale.dim() != 1 or x_scale.dtype != torch.float32 or x_scale.shape[0] != q.shape[0]:
        _fail(op, f"x_scale must be float32 [M]=[{q.shape[0]}], got {x_scale.dtype} {list(x_scale.shape)}")


def _check_activation(op: str, activation: str) -> None:
    if activation not in ("none", "gelu"):
        _fail(op, f'activation must be "none" or "gelu", got "{activation}"')


def check_int8_linear(q, x_scale, w_q, w_scale, bias, activation, out_dtype) -> None:
    op = "int8_linear"
    _check_q(op, q)
    if w_q.dim() != 2 or w_q.dtype != torch.int8:
        _fail(op, f"w_q must be a 2-D int8 tensor [N, K] (out_features, in_features), got {w_q.dim()}-D {w_q.dtype}")
    if q.shape[1] != w_q.shape[1]:
        _fail(op, f"q has K={q.shape[1]} columns but w_q has {w_q.shape[1]} (in_features); they must match")
    _check_reduction(op, q.shape[1])
    _check_x_scale(op, x_scale, q)
    if w_scale.dim() != 1 or w_scale.dtype != torch.float32 or w_scale.shape[0] != w_q.shape[0]:
        _fail(op, f"w_scale must be float32 [N]=[{w_q.shape[0]}], got {w_scale.dtype} {list(w_scale.shape)}")
    tensors = [q, x_scale, w_q, w_scale] + ([bias] if bias is not None else [])
    for t in tensors:
        if t.device != q.device:
            _fail(op, f"every tensor must be on q's device ({q.device}), got one on {t.device}")
        if not t.is_contiguous():
            _fail(op, "q, x_scale, w_q, w_scale and bias must be contiguous; call .contiguous() first")
    if bias is not None and (bias.dim() != 1 or bias.dtype != torch.float32 or bias.shape[0] != w_q.shape[0]):
        _fail(op, f"bias must be float32 [N]=[{w_q.shape[0]}], got {bias.dtype} {list(bias.shape)}")
    _check_activation(op, activation)
    allowed = FLOATS if q.is_cuda else (torch.float32,)
    if out_dtype is not None and out_dtype not in allowed:
        _fail(op, f"out_dtype must be {'float32, float16 or bfloat16' if q.is_cuda else 'float32 on CPU'}, got {out_dtype}")


def check_int8_linear_packed(q, x_scale, w_packed, w_sums, w_scale, bias, activation) -> None:
    op = "int8_linear_packed"
    _check_q(op, q)
    if w_scale.dim() != 1 or w_scale.dtype != torch.float32:
        _fail(op, f"w_scale must be float32 [N], got {w_scale.dtype} {list(w_scale.shape)}")
    n, k = w_scale.shape[0], q.shape[1]
    blocks, groups = -(-n // COLUMNS), -(-k // GROUP)
    if w_packed.dtype != torch.int8 or tuple(w_packed.shape) != (blocks, groups, COLUMNS, GROUP):
        _fail(op, f"w_packed must be int8 [{blocks}, {groups}, 16, 4] for N={n}, K={k}, got {w_packed.dtype} "
                  f"{list(w_packed.shape)}; pack it with compress.ops.packing.pack_weight")
    if w_sums.dim() != 1 or w_sums.dtype != torch.int32 or w_sums.shape[0] != blocks * COLUMNS:
        _fail(op, f"w_sums must be int32 [{blocks * COLUMNS}], got {w_sums.dtype} {list(w_sums.shape)}")
    _check_reduction(op, k)
    _check_x_scale(op, x_scale, q)
    for t in [q, x_scale, w_packed, w_sums, w_scale] + ([bias] if bias is not None else []):
        if t.device.type != "cpu":
            _fail(op, f"runs on the CPU only; every tensor must be on the CPU, got one on {t.device} "
                      "(on a GPU, use int8_linear with unpacked weights)")
        if not t.is_contiguous():
            _fail(op, "every tensor must be contiguous; call .contiguous() first")
    if bias is not None and (bias.dim() != 1 or bias.dtype != torch.float32 or bias.shape[0] != n):
        _fail(op, f"bias must be a contiguous float32 CPU tensor [N]=[{n}], got {bias.dtype} {list(bias.shape)}")
    _check_activation(op, activation)
