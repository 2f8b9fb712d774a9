"""Backends that run an artifact on numpy batches, and the protocol every backend follows.

A backend is a context manager. ``run(batch)`` takes and returns numpy (for accuracy);
``prepare(batch)`` stages one batch where the backend computes (a GPU's memory, the right
dtype) outside the timed region, and ``run_prepared(staged)`` is what latency measures: it
returns only when the work is done (GPU backends synchronize). Each backend is opened,
measured and closed before the next one starts, so nothing of one backend (ONNX Runtime's
spinning worker threads above all) is still running while another is timed.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench.latency import Latency, measure
from export.ort_session import make_session, run_session


class Backend:
    """Defaults for a host backend: staging is the identity, the timed call is ``run``."""

    name = "backend"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def prepare(self, batch: dict[str, np.ndarray]):
        return batch

    def run_prepared(self, staged):
        return self.run(staged)

    def gpu_peak_bytes(self) -> int | None:
        """Peak device memory while open, where the backend can tell; None on CPU."""
        return None


class TorchBackend(Backend):
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


class OrtBackend(Backend):
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
    """Latency per batch size; batches are staged first, so copies to a device are not timed."""
    out = {}
    for bs, inputs in latency_inputs.items():
        staged = [backend.prepare(b) for b in inputs]
        out[bs] = measure(backend.run_prepared, staged, min_seconds=min_seconds, batch_size=bs)
    return out
