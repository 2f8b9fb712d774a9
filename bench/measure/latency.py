"""Latency percentiles and throughput of one callable, measured the careful way.

Warm-up first; inputs rotate so caches do not flatter; iterations continue until both a
minimum count and a minimum time are reached, so fast models get a stable median.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Latency:
    batch_size: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def throughput(self) -> float:
        """Samples per second at the median latency."""
        return self.batch_size * 1000.0 / self.p50_ms if self.p50_ms > 0 else float("inf")

    def to_json(self) -> dict:
        return {**asdict(self), "throughput_per_s": round(self.throughput, 2)}


def measure(
    fn: Callable[[dict], object],
    inputs: Sequence[dict],
    *,
    warmup: int = 3,
    min_iters: int = 10,
    min_seconds: float = 2.0,
    max_iters: int = 10_000,
    batch_size: int | None = None,
) -> Latency:
    """Time ``fn(inputs[i % len(inputs)])``; batch size is read from the first input's first axis
    unless given (inputs already staged on a device are not numpy dicts)."""
    if not inputs:
        raise ValueError("measure needs at least one input batch")
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_seconds):
        x = inputs[len(samples) % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        samples.append((time.perf_counter() - t0) * 1000.0)
    arr = np.asarray(samples)
    batch = batch_size if batch_size is not None else len(next(iter(inputs[0].values())))
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return Latency(batch, len(arr), round(float(p50), 3), round(float(p90), 3), round(float(p99), 3), round(float(arr.mean()), 3))
