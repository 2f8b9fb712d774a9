"""Backends that run an artifact on numpy batches: PyTorch eager and ONNX Runtime on CPU.

Each is opened, measured and closed before the next one starts, so nothing of one backend
(ONNX Runtime's spinning worker threads above all) is still running while another is timed.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench.latency import Latency, measure
from export.ort_session import make_session, run_session


class TorchBackend:
    name = "torch"

    def __init__(self, forward_numpy, threads: int):
        self._forward, self._threads = forward_numpy, threads

    def __enter__(self):
        self._saved = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self._saved)

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._forward(batch)


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int, disabled_optimizers=()):
        self._path, self._threads, self._disabled = path, threads, tuple(disabled_optimizers)

    def __enter__(self):
        self._session = make_session(self._path, self._threads, disabled_optimizers=self._disabled)
        return self

    def __exit__(self, *exc):
        del self._session
        gc.collect()  # the session's thread pool goes with it

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return run_session(self._session, batch)


def run_all(backend, batches: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The first output over every batch, concatenated."""
    return np.concatenate([backend.run(b)[0] for b in batches])


def time_batches(backend, latency_inputs: dict[int, list[dict]], min_seconds: float = 2.0) -> dict[int, Latency]:
    return {bs: measure(backend.run, inputs, min_seconds=min_seconds) for bs, inputs in latency_inputs.items()}
