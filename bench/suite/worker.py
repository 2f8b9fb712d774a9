"""One measurement in its own process: one artifact on one backend.

    python -m bench.suite.worker SPEC.json

A fresh process per measurement is what makes the numbers honest: nothing of the previous
backend is still running (ONNX Runtime's spinning threads, CUDA contexts), the peak RSS is
this backend's alone, and a crash in one backend cannot take the suite down. The worker writes
``result.json`` (latency, memory, size) and ``outputs.npy`` (the first output over the held-out
inputs) into the spec's ``out_dir``; the parent scores retention.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np
import psutil

from bench.suite.artifacts import Artifact

INPUTS_FILE = "inputs.npz"


def save_inputs(path: Path, evaluation: list[dict], latency: dict[int, list[dict]]) -> None:
    arrays = {f"eval__{i}__{k}": v for i, b in enumerate(evaluation) for k, v in b.items()}
    arrays.update({f"lat__{bs}__{i}__{k}": v for bs, bl in latency.items() for i, b in enumerate(bl) for k, v in b.items()})
    np.savez(path, **arrays)


def load_inputs(path: Path) -> tuple[list[dict], dict[int, list[dict]]]:
    evaluation: dict[int, dict] = {}
    latency: dict[int, dict[int, dict]] = {}
    with np.load(path) as data:
        for key in data.files:
            parts = key.split("__")
            if parts[0] == "eval":
                evaluation.setdefault(int(parts[1]), {})[parts[2]] = data[key]
            else:
                latency.setdefault(int(parts[1]), {}).setdefault(int(parts[2]), {})[parts[3]] = data[key]
    return ([evaluation[i] for i in sorted(evaluation)],
            {bs: [bl[i] for i in sorted(bl)] for bs, bl in sorted(latency.items())})


def open_backend(backend: str, artifact: Artifact, spec: dict):
    """The backend object for one artifact; torch artifacts are loaded here, in the worker."""
    threads = spec["threads"]
    if backend == "torch-kernels":  # loading the program imports compress.ops, which loads the kernels
        from bench.backends.torch_eager import TorchEagerBackend

        return TorchEagerBackend(_load_torch(artifact, spec), "cpu", "fp32", threads), None
    if backend.startswith("torch-aoti-"):  # compiled code: loaded only after its sidecar matched this machine
        from bench.backends.torch_aoti import TorchAotiBackend
        from compress.core.spec import TensorSpec
        from export.aoti.package import load_aoti_model

        specs = tuple(TensorSpec.from_json(s) for s in spec["inputs"]) if spec.get("inputs") else None
        return TorchAotiBackend(load_aoti_model(artifact.path, specs, spec.get("task")), backend.rsplit("-", 1)[1], threads), None
    if backend.startswith("torch-"):
        from bench.backends.torch_eager import TorchEagerBackend, dynamic_int8

        model = _load_torch(artifact, spec)
        module = dynamic_int8(model.module) if artifact.transform == "dynamic-int8" else None
        _, device, precision = backend.split("-")
        return TorchEagerBackend(model, device, precision, threads, module), module
    if backend == "ort-cpu":
        from bench.backends.onnxruntime import OrtBackend

        return OrtBackend(artifact.path, threads, artifact.disabled_optimizers), None
    if backend in ("ort-cuda", "ort-trt"):
        from bench.backends.ort_gpu import OrtProviderBackend

        return OrtProviderBackend(artifact.path, "cuda" if backend == "ort-cuda" else "tensorrt", threads, artifact.disabled_optimizers), None
    if backend == "trt":
        from bench.backends.tensorrt import TrtEngineBackend

        return TrtEngineBackend(artifact.path), None
    raise ValueError(f"backend {backend!r} has no runner")


def _load_torch(artifact: Artifact, spec: dict):
    from compress.core.spec import TensorSpec
    from compress.load.loaders import load_model

    specs = tuple(TensorSpec.from_json(s) for s in spec["inputs"]) if spec.get("inputs") else None
    return load_model(artifact.path, specs, task=spec.get("task"), trust_pickle=spec.get("trust_pickle", False))


def peak_rss_bytes() -> int:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss across fork+exec, so every worker would report the (larger) parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return psutil.Process().memory_info().rss  # no procfs: the current RSS, a lower bound


def measure_one(spec: dict) -> dict:
    from bench.backends.base import time_batches

    out_dir = Path(spec["out_dir"])
    artifact = Artifact.from_json(spec["artifact"])
    evaluation, latency_inputs = load_inputs(Path(spec["inputs_npz"]))
    baseline_rss = psutil.Process().memory_info().rss  # the interpreter and libraries, before the artifact
    backend, module = open_backend(spec["backend"], artifact, spec)
    with backend:
        outputs = np.concatenate([backend.run(b)[0] for b in evaluation])
        latency = time_batches(backend, latency_inputs, spec["min_seconds"])
        gpu_peak = backend.gpu_peak_bytes()
    np.save(out_dir / "outputs.npy", outputs)
    result = {"latency": {str(bs): lat.to_json() for bs, lat in latency.items()},
              "memory": {"peak_rss_bytes": peak_rss_bytes(),
                         "baseline_rss_bytes": baseline_rss, "gpu_peak_bytes": gpu_peak}}
    if module is not None:  # a transformed module exists only in memory: its size is its serialized state
        from bench.backends.torch_eager import serialized_bytes

        result["size_bytes"] = serialized_bytes(module)
    return result


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    out = Path(spec["out_dir"]) / "result.json"
    try:
        result = measure_one(spec)
    except Exception as exc:  # reported to the parent as this measurement's failure, with its cause
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        result = {"error": f"{type(exc).__name__}: {lines[0] if lines else ''}".strip(), "traceback": traceback.format_exc()}
    out.write_text(json.dumps(result))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
