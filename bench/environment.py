"""What a result was measured on: CPU model and flags, GPU, driver, library versions.

Absolute times only compare between runs whose `fingerprint` matches; ratios travel further.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from export.manifest import library_versions as manifest_versions

# The flags that decide INT8 and FP16/BF16 speed on x86 and Arm CPUs.
_CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "bf16", "sve")
_LIBRARIES = ("compress-toolkit", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy", "transformers")


def cpu_info() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "CPU part") and model in (platform.processor(), platform.machine(), ""):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "architecture": platform.machine(), "logical_cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "flags": sorted(f for f in _CPU_FLAGS if f in flags)}


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
    return {"cpu": cpu_info(), "gpu": gpu_info(), "threads": threads, "os": platform.platform(), "versions": library_versions()}


def target_name(environment: dict) -> str:
    """The key a run is stored and merged under: the GPU if there is one, else the CPU, plus threads."""
    gpu = environment.get("gpu")
    device = f"cuda:{gpu['name']}" if gpu else f"cpu:{environment['cpu']['model']}"
    return f"{device}/{environment['threads']}t"


def fingerprint(environment: dict) -> tuple:
    """Equal fingerprints: absolute times are comparable (same hardware, threads and runtimes)."""
    gpu = environment.get("gpu") or {}
    versions = environment.get("versions", {})
    return (environment.get("cpu", {}).get("model"), environment.get("threads"), gpu.get("name"), gpu.get("driver"),
            versions.get("torch"), versions.get("onnxruntime"), versions.get("tensorrt"))
