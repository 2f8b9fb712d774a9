"""What this CPU can do: its model, the instruction-set flags that decide INT8 speed, and which
of csrc/cpu's kernels the run-time dispatch picks on it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The flags that decide INT8 and FP16/BF16 speed on x86 and Arm CPUs.
_CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "bf16", "sve")


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


def cpu_isa() -> str:
    """The CPU kernels csrc/cpu/cpu_isa.h picks on this machine (the same rule, from the same CPU flags)."""
    forced = os.environ.get("COMPRESS_OPS_CPU_ISA", "auto")
    if forced not in ("", "auto"):
        return forced
    flags = set(cpu_info()["flags"])
    if {"avx512f", "avx512bw", "avx512_vnni"} <= flags:
        return "avx512vnni"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "portable"
