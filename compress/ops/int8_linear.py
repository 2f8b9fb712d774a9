"""``Int8Linear``: an ``nn.Linear`` that runs INT8 through ``torch.ops.compress``.

Weights are quantized once, symmetric per output channel; activations per token at run time
(``quantize_per_token``), so one outlier token does not coarsen every other token's grid, which
per-tensor activation scales (ONNX Runtime's integer ops) cannot avoid. The INT8 GEMM applies
the dequantize, bias and optionally GELU in its epilogue. On the CPU the weights are packed once,
here, in the layout the VNNI/AMX kernels read (``compress.ops.packing``), and kept that way in the
module's buffers and in ``torch.export`` programs, so no call reorders them.
"""

from __future__ import annotations

import torch

from compress.ops import kernels  # registers torch.ops.compress
from compress.ops.kernels import ACTIVATIONS
from compress.ops.packing import pack_weight, unpack_weight


def packs_on_cpu() -> bool:
    """CPU modules pack their weights where the compiled kernels run (the reference ops would
    only unpack them again on every call)."""
    return kernels.status().backend == "extension"


class Int8Linear(torch.nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "none",
                 packed: bool | None = None):
        """``packed``: weights in the CPU kernels' layout (``w_packed``, ``w_sums``) rather than
        ``w_q`` [out, in]; by default where the compiled CPU kernels run."""
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.packed = packs_on_cpu() if packed is None else packed
        if self.packed:
            w_packed, w_sums = pack_weight(torch.zeros(out_features, in_features, dtype=torch.int8))
            self.register_buffer("w_packed", w_packed)
            self.register_buffer("w_sums", w_sums)
        else:
            self.register_buffer("w_q", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("w_scale", torch.ones(out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(out_features, dtype=torch.float32) if bias else None)

    @classmethod
    def from_float(cls, linear: torch.nn.Linear, activation: str = "none") -> "Int8Linear":
        """Quantize ``linear``'s weight per output channel (absmax / 127, the same rule as the activations)."""
        weight = linear.weight.detach()
        packed = weight.device.type == "cpu" and packs_on_cpu()
        module = cls(linear.in_features, linear.out_features, linear.bias is not None, activation, packed)
        w_q, w_scale = torch.ops.compress.quantize_per_token(weight.float().contiguous().cpu())
        if packed:
            module.w_packed, module.w_sums = pack_weight(w_q)  # replace the placeholders: no second copy
        else:
            module.w_q.copy_(w_q)
        module.w_scale.copy_(w_scale)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach().float())
        return module.to(weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:-1]
        rows = x.reshape(-1, self.in_features)
        # The CPU kernels take float32; CUDA ones also float16/bfloat16 and write that dtype back.
        if not rows.is_cuda and rows.dtype != torch.float32:
            rows = rows.float()
        q, scale = torch.ops.compress.quantize_per_token(rows.contiguous())
        if self.packed:
            if rows.is_cuda:
                raise RuntimeError("this Int8Linear's weights are packed for the CPU kernels; quantize the model on "
                                   "the GPU instead (Int8Linear.from_float of a CUDA Linear keeps w_q unpacked)")
            y = torch.ops.compress.int8_linear_packed(q, scale, self.w_packed, self.w_sums, self.w_scale, self.bias,
                                                      self.activation)
        else:
            out_dtype = rows.dtype if rows.is_cuda else None
            y = torch.ops.compress.int8_linear(q, scale, self.w_q, self.w_scale, self.bias, self.activation, out_dtype)
        return y.to(x.dtype).reshape(*leading, self.out_features)

    def int8_weight(self) -> torch.Tensor:
        """The INT8 weight as [out_features, in_features], whichever layout the module keeps."""
        if self.packed:
            return unpack_weight(self.w_packed, self.out_features, self.in_features)
        return self.w_q

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"activation={self.activation}, packed={self.packed}")
