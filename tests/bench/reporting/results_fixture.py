"""Results files with realistic values (MiniLM-like), for the compare/merge/markdown tests."""

from __future__ import annotations

import copy

ENV = {"cpu": {"model": "AMD EPYC 7R13", "flags": ["avx2", "fma"], "usable_cores": 2, "logical_cores": 2, "architecture": "x86_64"},
       "gpu": None, "threads": 2, "os": "Linux", "versions": {"torch": "2.13.0", "onnxruntime": "1.31.1", "tensorrt": None}}


def _lat(p50: float, bs: int = 1) -> dict:
    return {"batch_size": bs, "iterations": 100, "p50_ms": p50, "p90_ms": p50 * 1.05, "p99_ms": p50 * 1.2, "mean_ms": p50 * 1.02,
            "throughput_per_s": round(bs * 1000 / p50, 2)}


def _row(artifact, backend, role, p50, cos=None, precision="fp32", ref=25.0) -> dict:
    return {"artifact": artifact, "backend": backend, "precision": precision, "role": role, "file": artifact, "size_bytes": 90_000_000,
            "latency": {"1": _lat(p50)}, "memory": {"peak_rss_bytes": 500_000_000, "baseline_rss_bytes": 220_000_000, "gpu_peak_bytes": None},
            "retention": None if cos is None else {"metric": "cosine", "mean_cosine": cos, "worst_cosine": cos - 0.005, "samples": 64},
            "ratio_to_reference": {"1": round(ref / p50, 4)}}


def results(target: str = "cpu:AMD EPYC 7R13/2t", int8_p50: float = 18.0, int8_cos: float = 0.9917, ref_p50: float = 25.0) -> dict:
    rows = [_row("original", "torch-cpu-fp32", "reference", ref_p50, ref=ref_p50),
            _row("peer:ort-quantize-dynamic", "ort-cpu", "peer", 14.1, 0.9561, "int8", ref=ref_p50),
            _row("model.int8.onnx", "ort-cpu", "ours", int8_p50, int8_cos, "int8", ref=ref_p50)]
    job = {"job": "minilm", "source": "minilm.compressed", "task": "embedding", "reference": "original", "reference_backend": "torch-cpu-fp32",
           "evaluation": "held-out text", "samples": 64, "notes": [], "results": rows, "reference_drift": {"1": 1.01},
           "skipped": [{"artifact": "*", "backend": "trt", "reason": "tensorrt is not installed"}]}
    return {"schema": "compress.bench/1", "runs": [{"target": target, "created": "2026-11-22T10:00:00+00:00", "environment": copy.deepcopy(ENV),
                                                     "settings": {"batch_sizes": [1]}, "jobs": [job]}]}
