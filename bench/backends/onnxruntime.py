"""ONNX Runtime on the CPU, with the thread count fixed and the optimizers a manifest switches off."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from bench.backends.base import Backend
from export.onnx.session import make_session, run_session


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
