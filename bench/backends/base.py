"""The protocol every backend follows, and the two loops that use it.

A backend is a context manager. ``run(batch)`` takes and returns numpy (for accuracy);
``prepare(batch)`` stages one batch where the backend computes (a GPU's memory, the right
dtype) outside the timed region, and ``run_prepared(staged)`` is what latency measures: it
returns only when the work is done (GPU backends synchronize). Each backend is opened,
measured and closed before the next one starts, so nothing of one backend (ONNX Runtime's
spinning worker threads above all) is still running while another is timed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.measure.latency import Latency, measure


class Backend:
    """Defaults for a host backend: staging is the identity, the timed call is ``run``."""

    name = "backend"
    on_gpu = False  # a GPU backend's timed call may wait without using a core: its CPU share is not judged

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


def run_all(backend, batches: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The first output over every batch, concatenated."""
    return np.concatenate([backend.run(b)[0] for b in batches])


def time_batches(backend, latency_inputs: dict[int, list[dict]], min_seconds: float = 2.0) -> dict[int, Latency]:
    """Latency per batch size; batches are staged first, so copies to a device are not timed."""
    out = {}
    for bs, inputs in latency_inputs.items():
        staged = [backend.prepare(b) for b in inputs]
        out[bs] = measure(backend.run_prepared, staged, min_seconds=min_seconds, batch_size=bs, cpu_bound=not backend.on_gpu)
    return out
