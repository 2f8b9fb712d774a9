"""ONNX Runtime sessions with the thread count fixed, so timings are comparable and reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_session(path: str | Path, threads: int | None = None, spin: bool = True, disabled_optimizers=()):
    """A CPU session. ``spin=False`` for sessions that are not timed: ORT's idle workers
    otherwise keep spinning after a run and steal cores from whatever is measured next."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initializers are noise to a user
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled_optimizers))


def session_feed(session, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only the inputs the graph declares, with the dtypes it declares, contiguous."""
    feed = {}
    for inp in session.get_inputs():
        value = np.asarray(arrays[inp.name])
        feed[inp.name] = np.ascontiguousarray(value.astype(_ORT_TYPES.get(inp.type, value.dtype), copy=False))
    return feed


def float32_outputs(outputs) -> list[np.ndarray]:
    return [np.asarray(o, dtype=np.float32) if np.issubdtype(np.asarray(o).dtype, np.floating) else np.asarray(o) for o in outputs]


def run_session(session, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    return float32_outputs(session.run(None, session_feed(session, arrays)))


_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
}
