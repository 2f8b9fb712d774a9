"""The custom INT8 kernels (torch.ops.compress) against the float and INT8 paths PyTorch already has.

    python -m bench.studies.int8_kernels [--device cpu|cuda] [--threads 2] [--out FILE] [--check]

CPU: quantize_per_token + int8_linear_packed (the path ``Int8Linear`` runs), on every kernel
path this CPU can run (forced through COMPRESS_OPS_CPU_ISA, the one it picks by itself first),
against the machine's ceilings measured in the same run: FP32 ``F.linear``, PyTorch's dynamic
INT8 Linear (FBGEMM: per-tensor activation scales, so less accurate than ours), and the peak of
each path's INT8 instruction alone on registers (``compress::mac_peak``). Shapes: BERT-base's
FFN at M=128 tokens, MiniLM's at batch 16 x 128 tokens, and M=1. ``--isa`` times one path only.

CUDA: quantize_per_token's bandwidth against a device-to-device copy of the same input, and
int8_linear (FP16 output, the fused epilogue) against FP16 ``F.linear`` (cuBLAS) and against
``torch._int_mm`` followed by the dequantize ops, at M=N=K=4096 and BERT-base shapes.

Every variant is checked against its reference before it is timed, and the timings interleave
the variants round by round (bench/kernel_timing.py). ``--check`` exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.measure.environment import capture
from bench.measure.kernel_timing import interleaved_ms
from compress.core.atomic import write_text_atomic

# BERT-base's FFN at 128 tokens, MiniLM's FFN at batch 16 x 128 tokens, and one token (M=1) of each.
CPU_SHAPES = ((128, 768, 3072), (128, 3072, 768), (2048, 384, 1536), (1, 768, 3072), (1, 384, 1536))
ISA_ENV = "COMPRESS_OPS_CPU_ISA"
GPU_SHAPES = ((4096, 4096, 4096), (128, 768, 3072), (128, 3072, 768), (2048, 768, 3072), (2048, 3072, 768))
GPU_QUANTIZE_SHAPES = ((16384, 8192), (2048, 768), (128, 3072))
TARGETS = {"cpu_over_fbgemm": 0.9, "cpu_of_peak": 0.7, "cpu_m1_over_fp32": 1.0, "gpu_quantize_of_copy_bandwidth": 0.8, "gpu_int8_over_fp16": 1.6,
           "gpu_int8_over_int_mm_dequant": 1.0}


def _inputs(m: int, k: int, n: int, device: str, dtype=torch.float32, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(device, dtype)
    w = (torch.randn(n, k, generator=g) / math.sqrt(k)).to(device, dtype)
    b = torch.randn(n, generator=g).to(device, dtype)
    w_q, w_scale = torch.ops.compress.quantize_per_token(w.float().contiguous())
    return x, w, b, w_q, w_scale


def cpu_peaks(isas: list[str], seconds: float = 0.3) -> dict[str, float]:
    """GMAC/s of each path's INT8 instruction alone on registers, every thread (compress::mac_peak)."""
    peaks = {}
    for isa in isas:
        if isa == "portable":
            continue  # no single instruction to time
        with forced_isa(isa):
            torch.ops.compress.mac_peak(10_000, isa)  # warm-up: clocks, AMX state
            iterations, best = 100_000, 0.0
            for _ in range(5):
                t0 = time.perf_counter()
                macs = torch.ops.compress.mac_peak(iterations, isa)
                elapsed = time.perf_counter() - t0
                best = max(best, macs / elapsed / 1e9)
                iterations = max(iterations, int(iterations * seconds / max(elapsed, 1e-6)))
        peaks[isa] = round(best, 1)
    return peaks


@contextlib.contextmanager
def forced_isa(isa: str):
    old = os.environ.get(ISA_ENV)
    os.environ[ISA_ENV] = isa
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ISA_ENV, None)
        else:
            os.environ[ISA_ENV] = old


def _force(isa: str):
    return lambda: os.environ.__setitem__(ISA_ENV, isa)


def cpu_rows(rounds: int, isas: list[str], peaks: dict[str, float]) -> list[dict]:
    """``isas``: every kernel path timed (the first is the one this CPU picks by itself)."""
    from compress.ops import kernels as ops
    from compress.ops.packing import pack_weight

    rows = []
    for m, k, n in CPU_SHAPES:
        x, w, b, w_q, w_scale = _inputs(m, k, n, "cpu")
        w_packed, w_sums = pack_weight(w_q)
        q, xs = torch.ops.compress.quantize_per_token(x)
        # correctness first: every path agrees with the reference ops, and stays within INT8 rounding of FP32
        want_ref = ops.int8_linear_reference(q, xs, w_q, w_scale, b, "gelu")
        for isa in isas:
            with forced_isa(isa):
                got = torch.ops.compress.int8_linear_packed(q, xs, w_packed, w_sums, w_scale, b, "gelu")
            torch.testing.assert_close(got, want_ref, rtol=1e-5, atol=1e-5)
        want = F.gelu(F.linear(x, w, b))
        rel_error = float((got - want).abs().max() / want.abs().max())
        dynamic = torch.ao.nn.quantized.dynamic.Linear(k, n)
        dynamic.set_weight_bias(torch.quantize_per_channel(w, w.abs().amax(1) / 127, torch.zeros(n, dtype=torch.long), 0, torch.qint8), b)
        quantize = torch.ops.compress.quantize_per_token
        variants = {
            "fp32_linear": lambda: F.linear(x, w, b),
            "fp32_linear_gelu": lambda: F.gelu(F.linear(x, w, b)),
            "fbgemm_dynamic_int8_linear": lambda: dynamic(x),
            "quantize": lambda: quantize(x),
            "quantize_int8_linear_unpacked": lambda: torch.ops.compress.int8_linear(*quantize(x), w_q, w_scale, b, "none"),
            "quantize_int8_linear_gelu": lambda: torch.ops.compress.int8_linear_packed(*quantize(x), w_packed, w_sums, w_scale, b, "gelu"),
        }
        before = {"quantize_int8_linear_unpacked": _force(isas[0]), "quantize_int8_linear_gelu": _force(isas[0])}
        for isa in isas:
            variants[f"ours[{isa}]"] = lambda: torch.ops.compress.int8_linear_packed(*quantize(x), w_packed, w_sums, w_scale, b, "none")
            before[f"ours[{isa}]"] = _force(isa)
        with torch.inference_mode(), forced_isa(isas[0]):
            t = interleaved_ms(variants, rounds=rounds, before=before)
        gmacs = lambda name: m * n * k / t[name]["median_ms"] / 1e6  # noqa: E731
        paths = {}
        for isa in isas:
            name = f"ours[{isa}]"
            paths[isa] = {"gmacs_per_s": round(gmacs(name), 1),
                          "over_fp32": round(t["fp32_linear"]["median_ms"] / t[name]["median_ms"], 3),
                          "over_fbgemm": round(t["fbgemm_dynamic_int8_linear"]["median_ms"] / t[name]["median_ms"], 3),
                          "of_peak": round(gmacs(name) / peaks[isa], 3) if isa in peaks else None}
        best = paths[isas[0]]
        rows.append({"m": m, "k": k, "n": n, "timings": t, "max_rel_error_vs_fp32": round(rel_error, 5), "paths": paths,
                     "gmacs_per_s": {"fp32_linear": round(gmacs("fp32_linear"), 1),
                                     "fbgemm_dynamic_int8_linear": round(gmacs("fbgemm_dynamic_int8_linear"), 1)},
                     "packed_over_unpacked": round(t["quantize_int8_linear_unpacked"]["median_ms"] / t[f"ours[{isas[0]}]"]["median_ms"], 3),
                     "int8_gelu_over_fp32_gelu": round(t["fp32_linear_gelu"]["median_ms"] / t["quantize_int8_linear_gelu"]["median_ms"], 3),
                     "targets_met": _cpu_targets(m, best)})
    return rows


def _cpu_targets(m: int, ours: dict) -> dict[str, bool]:
    if m == 1:  # a matrix-vector product: bound by reading the weights, no MAC peak to reach
        return {"m1_at_least_fp32": ours["over_fp32"] >= TARGETS["cpu_m1_over_fp32"]}
    met = {"over_fbgemm": ours["over_fbgemm"] >= TARGETS["cpu_over_fbgemm"]}
    if ours["of_peak"] is not None:
        met["of_peak"] = ours["of_peak"] >= TARGETS["cpu_of_peak"]
    return met


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
    parser.add_argument("--isa", help="CPU: time only this kernel path (amx, avx512_vnni, avx_vnni, avx2, portable)")
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
        from compress.ops.cpu_features import runnable_isas

        isas = [args.isa] if args.isa else runnable_isas()
        with forced_isa(isas[0]):
            payload["cpu_peaks_gmacs_per_s"] = peaks = cpu_peaks(isas)
        payload["kernels"]["paths_timed"] = isas
        payload["cpu"] = cpu_rows(args.rounds, isas, peaks)
        print(f"{payload['environment']['cpu']['model']}, {args.threads} threads; INT8 instruction peaks (GMAC/s): "
              + ", ".join(f"{isa} {p:.0f}" for isa, p in peaks.items()))
        for row in payload["cpu"]:
            g = row["gmacs_per_s"]
            print(f"M={row['m']} K={row['k']} N={row['n']}: FP32 F.linear {g['fp32_linear']:.0f} GMAC/s, FBGEMM INT8 "
                  f"{g['fbgemm_dynamic_int8_linear']:.0f} | ours (quantize included): " + "; ".join(
                      f"{isa} {p['gmacs_per_s']:.0f} = {p['over_fbgemm']:.2f}x FBGEMM, {p['over_fp32']:.2f}x FP32"
                      + (f", {p['of_peak']:.0%} of peak" if p["of_peak"] else "") for isa, p in row["paths"].items())
                  + f" | packed {row['packed_over_unpacked']:.2f}x unpacked | max rel error vs FP32 {row['max_rel_error_vs_fp32']:.4f}")
            missed += [f"CPU M={row['m']} K={row['k']} N={row['n']} ({isas[0]}): {name} missed"
                       for name, met in row["targets_met"].items() if not met]
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
