"""A few calls of each CUDA kernel at odd and aligned shapes, for compute-sanitizer to watch
(``python -m bench.gpu_check`` runs it under memcheck). Each result is checked against the reference."""

from __future__ import annotations

import torch

from compress.ops import kernels as ops


def main() -> int:
    if not ops.has_cuda_kernels():
        raise SystemExit(f"the CUDA kernels are not loaded ({ops.status().reason}); nothing to check")
    g = torch.Generator(device="cpu").manual_seed(0)
    for m, k, n in ((1, 1, 1), (3, 5, 7), (17, 33, 64), (128, 768, 3072), (130, 97, 200)):
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            x = torch.randn(m, k, generator=g).to("cuda", dtype)
            w_q, w_scale = torch.ops.compress.quantize_per_token(torch.randn(n, k, generator=g).cuda())
            q, xs = torch.ops.compress.quantize_per_token(x)
            out_dtype = dtype if dtype != torch.float32 else None
            got = torch.ops.compress.int8_linear(q, xs, w_q, w_scale, None, "gelu", out_dtype)
            want = ops.int8_linear_reference(q, xs, w_q, w_scale, None, "gelu", out_dtype)
            torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)
    torch.cuda.synchronize()
    print("every CUDA kernel call matched its reference")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
