"""The runner's PyTorch-INT8 step (``--int8 --backend torch``): swap the Linear layers of a copy
of the model for ``Int8Linear`` (compress's kernels), save it as ``model.int8.pt2``, load that
file back and measure it like every other artifact."""

from __future__ import annotations

from pathlib import Path

from bench.backends import TorchBackend, run_all, time_batches
from bench.report import artifact_row
from bench.retention import retention
from compress.loaders import load_model
from compress.model import Model
from compress.passes.int8_dynamic import Int8DynamicConfig, quantize_linear_layers_
from compress.passes.quantize import clone_model
from export.pt2_export import export_program

FILE_NAME = "model.int8.pt2"


def torch_int8(model: Model, config: Int8DynamicConfig, stage: Path, parity_sets: list[dict], evaluation, latency_inputs,
               reference, options) -> tuple[dict, dict]:
    """(report row, report section)."""
    from compress import ops

    quantized = clone_model(model)
    summary = quantize_linear_layers_(quantized.module, config)
    path = stage / FILE_NAME
    check = export_program(model, quantized.module, parity_sets, path)
    loaded = load_model(path, None, task=model.task)  # measure the file that ships, not the module in memory
    with TorchBackend(loaded.forward_numpy, options.threads) as backend:
        outputs = run_all(backend, evaluation.batches)
        kept = retention(model.task, reference, outputs, evaluation.labels)
        latency = time_batches(backend, latency_inputs, options.min_seconds)
    status = ops.status()
    row = artifact_row("pytorch-int8-kernels", "torch-kernels", "int8", FILE_NAME, path.stat().st_size, latency, kept)
    section = {"config": config.to_json(), "describe": config.describe(), **summary, "export": check,
               "kernels": {"backend": status.backend, "reason": status.reason, "cpu_isa": cpu_isa(),
                           "library": Path(status.library).name if status.library else None}}
    return row, section


def cpu_isa() -> str:
    """The CPU kernels csrc/cpu/cpu_isa.h picks on this machine (the same rule, from the same CPU flags)."""
    import os

    from bench.environment import cpu_info

    forced = os.environ.get("COMPRESS_OPS_CPU_ISA", "auto")
    if forced not in ("", "auto"):
        return forced
    flags = set(cpu_info()["flags"])
    if {"avx512f", "avx512bw", "avx512_vnni"} <= flags:
        return "avx512vnni"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "portable"
