"""The custom INT8 kernels (torch.ops.compress) against the float and INT8 paths PyTorch already has.

    python -m bench.studies.int8_kernels [--device cpu|cuda] [--threads 2] [--out FILE] [--check]

CPU: quantize_per_token + int8_linear against FP32 ``F.linear`` (and ``F.linear`` + GELU against
the fused GELU epilogue) at BERT-base shapes, M=128 tokens: K=768 -> N=3072 and K=3072 -> N=768.
PyTorch's own dynamic INT8 Linear is timed beside them for context.

CUDA: quantize_per_token's bandwidth against a device-to-device copy of the same input, and
int8_linear (FP16 output, the fused epilogue) against FP16 ``F.linear`` (cuBLAS) and against
``torch._int_mm`` followed by the dequantize ops, at M=N=K=4096 and BERT-base shapes.

Every variant is checked against its reference before it is timed, and the timings interleave
the variants round by round (bench/kernel_timing.py). ``--check`` exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.measure.environment import capture
from bench.measure.kernel_timing import interleaved_ms
from compress.core.atomic import write_text_atomic

CPU_SHAPES = ((128, 768, 3072), (128, 3072, 768))
GPU_SHAPES = ((4096, 4096, 4096), (128, 768, 3072), (128, 3072, 768), (2048, 768, 3072), (2048, 3072, 768))
GPU_QUANTIZE_SHAPES = ((16384, 8192), (2048, 768), (128, 3072))
TARGETS = {"cpu_int8_over_fp32": 1.0, "gpu_quantize_of_copy_bandwidth": 0.8, "gpu_int8_over_fp16": 1.6,
           "gpu_int8_over_int_mm_dequant": 1.0}


def _inputs(m: int, k: int, n: int, device: str, dtype=torch.float32, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(device, dtype)
    w = (torch.randn(n, k, generator=g) / math.sqrt(k)).to(device, dtype)
    b = torch.randn(n, generator=g).to(device, dtype)
    w_q, w_scale = torch.ops.compress.quantize_per_token(w.float().contiguous())
    return x, w, b, w_q, w_scale


def cpu_rows(rounds: int) -> list[dict]:
    from compress.ops import kernels as ops

    rows = []
    for m, k, n in CPU_SHAPES:
        x, w, b, w_q, w_scale = _inputs(m, k, n, "cpu")
        q, xs = torch.ops.compress.quantize_per_token(x)
        # correctness first: the kernels agree with the reference ops, and stay within INT8 rounding of FP32
        got = torch.ops.compress.int8_linear(q, xs, w_q, w_scale, b, "gelu")
        torch.testing.assert_close(got, ops.int8_linear_reference(q, xs, w_q, w_scale, b, "gelu"), rtol=1e-5, atol=1e-5)
        want = F.gelu(F.linear(x, w, b))
        rel_error = float((got - want).abs().max() / want.abs().max())
        dynamic = torch.ao.nn.quantized.dynamic.Linear(k, n)
        dynamic.set_weight_bias(torch.quantize_per_channel(w, w.abs().amax(1) / 127, torch.zeros(n, dtype=torch.long), 0, torch.qint8), b)
        variants = {
            "fp32_linear": lambda: F.linear(x, w, b),
            "fp32_linear_gelu": lambda: F.gelu(F.linear(x, w, b)),
            "quantize": lambda: torch.ops.compress.quantize_per_token(x),
            "int8_linear": lambda: torch.ops.compress.int8_linear(q, xs, w_q, w_scale, b, "none"),
            "quantize_int8_linear": lambda: torch.ops.compress.int8_linear(*torch.ops.compress.quantize_per_token(x), w_q, w_scale, b, "none"),
            "quantize_int8_linear_gelu": lambda: torch.ops.compress.int8_linear(*torch.ops.compress.quantize_per_token(x), w_q, w_scale, b, "gelu"),
            "torch_dynamic_int8_linear": lambda: dynamic(x),
        }
        with torch.inference_mode():
            t = interleaved_ms(variants, rounds=rounds)
        ratio = t["fp32_linear"]["median_ms"] / t["quantize_int8_linear"]["median_ms"]
        ratio_gelu = t["fp32_linear_gelu"]["median_ms"] / t["quantize_int8_linear_gelu"]["median_ms"]
        rows.append({"m": m, "k": k, "n": n, "timings": t, "max_rel_error_vs_fp32": round(rel_error, 5),
                     "int8_over_fp32": round(ratio, 3), "int8_gelu_over_fp32_gelu": round(ratio_gelu, 3),
                     "gmacs_per_s_int8": round(m * n * k / t["int8_linear"]["median_ms"] / 1e6, 1),
                     "target_met": ratio > TARGETS["cpu_int8_over_fp32"]})
    return rows


def gpu_rows(rounds: int) -> dict:
    from compress.ops import kernels as ops

    if not ops.has_cuda_kernels():
        raise SystemExit(f"the CUDA kernels are not loaded ({ops.status().reason or 'built without CUDA'}); nothing to time")
    linear = []
    for m, k, n in GPU_SHAPES:
        x, w, b, w_q, w_scale = _inputs(m, k, n, "cuda", torch.float16)
        w_q, w_scale, b32 = w_q.cuda(), w_scale.cuda(), b.float()
        q, xs = torch.ops.compress.quantize_per_token(x)
        got = torch.ops.compress.int8_linear(q, xs, w_q, w_scale, b32, "none", torch.float16)
        ref = ops.int8_linear_reference(q, xs, w_q, w_scale, b32, "none", torch.float16)
        torch.testing.assert_close(got, ref, rtol=2e-3, atol=2e-3)
        wt = w_q.t()

        def int_mm_dequant():  # what PyTorch offers without our kernels: the GEMM, then separate elementwise ops
            acc = torch._int_mm(q, wt)
            return (acc.float() * xs[:, None] * w_scale[None, :] + b32).half()

        variants = {"fp16_linear": lambda: F.linear(x, w, b),
                    "int_mm_then_dequant": int_mm_dequant,
                    "int8_linear": lambda: torch.ops.compress.int8_linear(q, xs, w_q, w_scale, b32, "none", torch.float16),
                    "quantize_int8_linear": lambda: torch.ops.compress.int8_linear(*torch.ops.compress.quantize_per_token(x), w_q, w_scale, b32, "none", torch.float16)}
        t = interleaved_ms(variants, rounds=rounds, calls=20, device="cuda")
        linear.append({"m": m, "k": k, "n": n, "timings": t,
                       "int8_over_fp16": round(t["fp16_linear"]["median_ms"] / t["int8_linear"]["median_ms"], 3),
                       "int8_over_int_mm_dequant": round(t["int_mm_then_dequant"]["median_ms"] / t["int8_linear"]["median_ms"], 3),
                       "tops_int8": round(2 * m * n * k / t["int8_linear"]["median_ms"] / 1e9, 1)})
    quantize = []
    for m, k in GPU_QUANTIZE_SHAPES:
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        copy_dst = torch.empty_like(x)
        t = interleaved_ms({"copy": lambda: copy_dst.copy_(x), "quantize": lambda: torch.ops.compress.quantize_per_token(x)},
                           rounds=rounds, calls=20, device="cuda")
        copy_gbs = 2 * x.numel() * 2 / t["copy"]["median_ms"] / 1e6
        quant_gbs = (x.numel() * 2 + x.numel() + 4 * m) / t["quantize"]["median_ms"] / 1e6  # read fp16, write int8 + scales
        quantize.append({"m": m, "k": k, "timings": t, "copy_gb_s": round(copy_gbs, 1), "quantize_gb_s": round(quant_gbs, 1),
                         "fraction_of_copy": round(quant_gbs / copy_gbs, 3)})
    return {"int8_linear": linear, "quantize_per_token": quantize}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, help="[default: bench/results/int8_kernels_<device>.json]")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    from compress.ops import kernels as ops
    from compress.ops.cpu_features import cpu_isa

    if ops.status().backend != "extension":
        raise SystemExit(f"the compiled kernels are not loaded ({ops.status().reason}); timing the reference ops would mean nothing")
    torch.set_num_threads(args.threads)
    out = args.out or Path(__file__).parents[1] / "results" / f"int8_kernels_{args.device}.json"
    payload = {"benchmark": "int8_kernels", "settings": {"device": args.device, "threads": args.threads, "rounds": args.rounds},
               "environment": capture(args.threads), "kernels": {"library": Path(ops.status().library).name, "cpu_isa": cpu_isa()},
               "targets": TARGETS}
    missed = []
    if args.device == "cpu":
        payload["cpu"] = cpu_rows(args.rounds)
        for row in payload["cpu"]:
            t = row["timings"]
            print(f"M={row['m']} K={row['k']} N={row['n']}: FP32 F.linear {t['fp32_linear']['median_ms']:.3f} ms | "
                  f"quantize {t['quantize']['median_ms']:.3f} + int8_linear {t['int8_linear']['median_ms']:.3f} = "
                  f"{t['quantize_int8_linear']['median_ms']:.3f} ms -> {row['int8_over_fp32']:.2f}x | with GELU "
                  f"{row['int8_gelu_over_fp32_gelu']:.2f}x | torch dynamic INT8 {t['torch_dynamic_int8_linear']['median_ms']:.3f} ms | "
                  f"max rel error vs FP32 {row['max_rel_error_vs_fp32']:.4f}")
            if not row["target_met"]:
                missed.append(f"CPU M={row['m']} K={row['k']} N={row['n']}: {row['int8_over_fp32']:.2f}x is not faster than FP32")
    else:
        payload["cuda"] = gpu_rows(args.rounds)
        for row in payload["cuda"]["int8_linear"]:
            print(f"M={row['m']} K={row['k']} N={row['n']}: {row['int8_over_fp16']:.2f}x FP16 F.linear, "
                  f"{row['int8_over_int_mm_dequant']:.2f}x _int_mm+dequant, {row['tops_int8']} TOPS")
            if row["int8_over_fp16"] < TARGETS["gpu_int8_over_fp16"]:
                missed.append(f"GPU {row['m']}x{row['k']}x{row['n']}: {row['int8_over_fp16']:.2f}x FP16 (< 1.6x)")
            if row["int8_over_int_mm_dequant"] <= TARGETS["gpu_int8_over_int_mm_dequant"]:
                missed.append(f"GPU {row['m']}x{row['k']}x{row['n']}: not faster than _int_mm + dequantize")
        for row in payload["cuda"]["quantize_per_token"]:
            print(f"quantize {row['m']}x{row['k']}: {row['quantize_gb_s']} GB/s = {row['fraction_of_copy']:.0%} of copy")
            if row["fraction_of_copy"] < TARGETS["gpu_quantize_of_copy_bandwidth"] and row["m"] * row["k"] >= 1 << 24:
                missed.append(f"GPU quantize {row['m']}x{row['k']}: {row['fraction_of_copy']:.0%} of copy bandwidth (< 80%)")
    payload["missed_targets"] = missed
    write_text_atomic(out, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}" + (f"; missed: {'; '.join(missed)}" if missed else "; every target met"))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
