"""Measuring an artifact the one way every row of a report is measured: its outputs on the
held-out evaluation inputs scored against the original's (retention), then its latency per
batch size, each backend opened and closed before the next."""

from __future__ import annotations

from pathlib import Path

from bench.backends.base import run_all, time_batches
from bench.backends.onnxruntime import OrtBackend
from bench.backends.torch_aoti import TorchAotiBackend
from bench.backends.torch_eager import TorchEagerBackend
from bench.measure.retention import retention
from bench.reporting.table import artifact_row
from compress.core.model import Model, module_bytes
from compress.pipeline.state import RunState


def measure_torch(state: RunState, name: str, model: Model, *, backend: str = "torch", precision: str = "fp32",
                  file: Path | None = None, title: str | None = None) -> dict:
    """A PyTorch model (the original, a pruned stage, a loaded .pt2) on the CPU in eager mode."""
    size = file.stat().st_size if file is not None else module_bytes(model.module)
    runner = TorchEagerBackend(model, "cpu", "fp32", state.options.threads)
    return _measure(state, title or f"Measuring {name}", name, runner, backend, precision, file, size)


def measure_aoti(state: RunState, name: str, model: Model, device: str, file: Path) -> dict:
    """An AOTInductor package (``model.module`` wraps the loaded package) on the device it was compiled for."""
    runner = TorchAotiBackend(model, device, state.options.threads)
    return _measure(state, f"Measuring {name}", name, runner, runner.name, "int8", file, file.stat().st_size)


def measure_onnx(state: RunState, name: str, path: Path, disabled_optimizers=()) -> dict:
    """An ONNX file on ONNX Runtime's CPU provider, loaded as the manifest says."""
    precision = name.split("-")[1]  # onnx-fp32, onnx-int8, onnx-int8-qdq
    runner = OrtBackend(path, state.options.threads, disabled_optimizers)
    return _measure(state, f"Measuring {name}", name, runner, "onnxruntime", precision, path, path.stat().st_size)


def _measure(state: RunState, title: str, name: str, runner, backend: str, precision: str, file: Path | None, size: int) -> dict:
    labels = state.data.evaluation.labels
    with state.progress.step(title), runner:
        outputs = run_all(runner, state.data.evaluation.batches)
        first = state.reference is None
        if first:  # the first artifact measured is the reference: the original itself
            state.reference = outputs
        kept = retention(state.original.task, state.reference, outputs, labels)
        if first and labels is None and not state.original.is_onnx:
            kept = None  # the PyTorch original scored against itself says nothing; with labels it has an accuracy
        if kept is not None:
            kept["task"] = state.data.metric.score(state.reference, outputs, labels)
        latency = time_batches(runner, state.data.latency, state.options.min_seconds)
    row = artifact_row(name, backend, precision, file.name if file is not None else None, size, latency, kept)
    state.rows.append(row)
    return row
