"""What a result was measured on: CPU model and flags, GPU, driver, library versions.

Absolute times only compare between runs whose `fingerprint` matches; ratios travel further.
"""

from __future__ import annotations

import platform
import subprocess

from compress.core.versions import library_versions as manifest_versions
from compress.ops.cpu_features import ISA_PATHS, cpu_info, cpu_isa

_LIBRARIES = ("compress-toolkit", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy", "transformers")


def gpu_info() -> dict | None:
    """The first CUDA device as PyTorch sees it, with the driver version from nvidia-smi; None without one."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "compute_capability": f"{props.major}.{props.minor}", "memory_bytes": props.total_memory,
            "count": torch.cuda.device_count(), "driver": _nvidia_driver(), "cuda_runtime": torch.version.cuda}


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def library_versions() -> dict[str, str | None]:
    return manifest_versions(_LIBRARIES)


def capture(threads: int) -> dict:
    # isa: the CPU kernel path (amx, avx512_vnni, avx_vnni, avx2, portable): ratios measured on one are
    # never held against another's (bench.studies.ci_gate keeps a baseline per isa)
    return {"cpu": cpu_info(), "isa": cpu_isa(), "gpu": gpu_info(), "threads": threads, "os": platform.platform(),
            "versions": library_versions()}


def target_name(environment: dict) -> str:
    """The key a run is stored and merged under: the GPU if there is one, else the CPU, plus threads."""
    gpu = environment.get("gpu")
    device = f"cuda:{gpu['name']}" if gpu else f"cpu:{environment['cpu']['model']}"
    return f"{device}/{environment['threads']}t"


def run_isa(environment: dict) -> str:
    """The CPU kernel class a run was measured on; for runs recorded before the field existed, the
    one its CPU flags give (the same rule as the kernels' dispatch)."""
    if environment.get("isa"):
        return environment["isa"]
    flags = set(environment.get("cpu", {}).get("flags", []))
    return next(name for name, needs in ISA_PATHS if needs <= flags)


def fingerprint(environment: dict) -> tuple:
    """Equal fingerprints: absolute times are comparable (same hardware, threads and runtimes)."""
    gpu = environment.get("gpu") or {}
    versions = environment.get("versions", {})
    return (environment.get("cpu", {}).get("model"), environment.get("isa"), environment.get("threads"), gpu.get("name"), gpu.get("driver"),
            versions.get("torch"), versions.get("onnxruntime"), versions.get("tensorrt"))
