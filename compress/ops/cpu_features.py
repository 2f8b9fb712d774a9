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


# The kernel paths of csrc/cpu/cpu_isa.h, fastest first, and the CPU flags each needs. These names
# are the `isa` field of every report, manifest and benchmark.
ISA_PATHS = (("amx", {"amx_tile", "amx_int8", "avx512f", "avx512bw", "avx512_vnni"}),
             ("avx512_vnni", {"avx512f", "avx512bw", "avx512_vnni"}),
             ("avx_vnni", {"avx_vnni", "avx2", "fma"}),
             ("avx2", {"avx2", "fma"}),
             ("portable", set()))
ISA_NAMES = tuple(name for name, _ in ISA_PATHS)
_ALIASES = {"avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni"}  # the spellings COMPRESS_OPS_CPU_ISA also takes


def runnable_isas() -> list[str]:
    """Every kernel path this CPU can run, fastest first (what COMPRESS_OPS_CPU_ISA may force)."""
    flags = set(cpu_info()["flags"])
    return [name for name, needs in ISA_PATHS if needs <= flags]


def cpu_isa() -> str:
    """The CPU kernels csrc/cpu/cpu_isa.h picks on this machine (the same rule, from the same CPU
    flags), or the one COMPRESS_OPS_CPU_ISA forces."""
    forced = os.environ.get("COMPRESS_OPS_CPU_ISA", "auto")
    if forced not in ("", "auto"):
        return _ALIASES.get(forced, forced)
    return runnable_isas()[0]
