"""The benchmark results file: one versioned JSON schema for `bench run`, `merge` and `compare`.

    {"schema": "compress.bench/1",
     "runs": [                                   # one per machine/GPU target; `merge` concatenates
       {"target": "cpu:AMD EPYC 7R13/2t",       # key of the run: device and thread count
        "created": "2026-11-22T10:00:00+00:00",
        "environment": {...},                    # bench.measure.environment.capture()
        "settings": {"batch_sizes": [1, 16], "sequence_length": 128, "threads": 2, "min_seconds": 2.0, ...},
        "jobs": [                                # one per PATH given to `bench run`
          {"job": "minilm", "source": "...", "task": "embedding", "reference": "pytorch-fp32",
           "evaluation": "what the held-out inputs were", "samples": 128,
           "results": [
             {"artifact": "pytorch-fp32", "backend": "torch-cpu", "precision": "fp32",
              "role": "reference" | "original" (on another backend) | "peer" | "ours" | "artifact", "file": "model.onnx",
              "size_bytes": 90868672,
              "latency": {"1": {"batch_size", "iterations", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_per_s"}},
              "memory": {"peak_rss_bytes", "baseline_rss_bytes", "gpu_peak_bytes" | null},
              "retention": {"metric": ..., ...} | null,       # bench.measure.retention; null for the reference
              "ratio_to_reference": {"1": 1.0}}],             # reference p50 / this p50, same run
           "skipped": [{"artifact", "backend", "reason"}]}]}]}

A result is identified by (job, artifact, backend); batch sizes are keys of its latency.
"""

from __future__ import annotations

import json
from pathlib import Path

from compress.core.atomic import write_text_atomic
from compress.core.errors import BenchError

SCHEMA = "compress.bench/1"


def result_key(job: str, result: dict) -> tuple[str, str, str]:
    return (job, result["artifact"], result["backend"])


def new_file(runs: list[dict]) -> dict:
    return {"schema": SCHEMA, "runs": runs}


def load_results(path: str | Path) -> dict:
    """Read and check a results file; every problem is one line naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path} does not exist; give a results file written by `compress bench run --json`")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path} is not valid JSON ({exc}); it is corrupt or truncated, run the benchmark again") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA:
        raise BenchError(f"{path} has schema {schema!r}, this tool reads {SCHEMA!r}; re-run `compress bench run` with this version")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise BenchError(f"{path} holds no runs; it is incomplete, run the benchmark again")
    for i, run in enumerate(runs):
        for key in ("target", "environment", "settings", "jobs"):
            if key not in run:
                raise BenchError(f"{path}: run {i} lacks {key!r}; the file is damaged, run the benchmark again")
        for job in run["jobs"]:
            for result in job.get("results", []):
                missing = {"artifact", "backend", "latency"} - set(result)
                if missing:
                    raise BenchError(f"{path}: a result in job {job.get('job')!r} lacks {sorted(missing)}; the file is damaged")
    return data


def write_results(data: dict, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


