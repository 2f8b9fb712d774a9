"""Choosing between INT8 files that compute the same thing by timing them here.

ONNX Runtime's graph fusions (the transformer optimizer's, and SkipLayerNormalization above
all) are faster on some CPUs and slower on others, so the INT8 steps write every variant and
keep the one that measures fastest on this machine, on the batches the report times.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from bench.measure.latency import measure
from export.onnx.session import make_session, run_session

# Another variant is kept only if it is 3% faster than the plain graph: a tie keeps the simpler
# graph, and the same run repeated writes the same file (trial timings of a small model jitter)
MUST_BEAT_PLAIN_BY = 0.03


def trial_p50(path: Path, inputs: list[dict[str, np.ndarray]], threads: int | None, disabled: tuple[str, ...]) -> float:
    """Median latency (ms) of one ONNX file cycling through ``inputs``: a short trial, not a benchmark."""
    session = make_session(path, threads, disabled_optimizers=disabled)
    try:
        return session_p50(session, inputs)
    finally:
        del session


def session_p50(session, inputs: list[dict[str, np.ndarray]]) -> float:
    """The short trial on an open ONNX Runtime session (the search also scores on it): each batch
    run once to warm up, then each at least twice."""
    return round(measure(lambda x: run_session(session, x), inputs, warmup=len(inputs), min_iters=2 * len(inputs), min_seconds=1.0).p50_ms, 3)


def pick_fastest(variants: dict[str, tuple[Path, tuple[str, ...]]], inputs: list[dict[str, np.ndarray]], threads: int | None,
                 margin: float = 0.0, allowed: Collection[str] | None = None) -> tuple[str, dict[str, float]]:
    """(the fastest variant's name, every variant's trial p50). ``variants``: name -> (file, ONNX
    Runtime optimizers disabled at load). The first variant is the plain one: another must beat it
    by ``margin`` (0.03: 3%) to be chosen, so a tie keeps the simpler graph. ``allowed``: the names
    that may be chosen (all by default; the first allowed one then counts as the plain one); every
    variant is still timed, for the report. A single variant has nothing to beat and is not timed."""
    if len(variants) == 1:
        return next(iter(variants)), {}
    times = {name: trial_p50(path, inputs, threads, disabled) for name, (path, disabled) in variants.items()}
    names = [name for name in variants if allowed is None or name in allowed]
    first = names[0]
    best = min(names, key=times.get)
    if times[best] > (1 - margin) * times[first]:
        best = first
    return best, times
