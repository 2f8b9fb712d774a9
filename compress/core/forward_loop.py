"""How data reaches a pass: a batch, and the forward loop that feeds batches to a callable.

Passes never own datasets. Calibration and distillation take a ``forward_loop(run_batch)`` that
calls ``run_batch`` on each batch (a dict of numpy arrays named like the model's inputs); the
CLI and the pipeline build those from files or the built-in text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

Batch = dict[str, np.ndarray]
RunBatch = Callable[[Batch], object]
ForwardLoop = Callable[[RunBatch], None]


def forward_loop_over(batches: Iterable[Batch], limit: int | None = None, on_batch=None) -> ForwardLoop:
    """A forward loop that feeds ``batches`` (any iterable, read once per call) up to ``limit`` samples."""

    def loop(run_batch: RunBatch) -> None:
        seen = 0
        for batch in batches:
            if limit is not None and seen >= limit:
                break
            n = len(next(iter(batch.values())))
            if limit is not None and seen + n > limit:
                batch = {k: v[: limit - seen] for k, v in batch.items()}
                n = limit - seen
            run_batch(batch)
            seen += n
            if on_batch is not None:
                on_batch(seen)

    return loop
