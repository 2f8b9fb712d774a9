"""Latency percentiles and throughput of one callable, measured the careful way.

Warm-up first; inputs rotate so caches do not flatter; iterations continue until both a
minimum count and a minimum time are reached, so fast models get a stable median. Each
measurement also says how far it can be trusted: its spread (p90 over p50), its drift (the
median of the last third of the samples over the first third's), and, on the CPU, the share of a
core the process got while timed. A busy machine shows in at least one of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Beyond these a speed-up computed from the measurement is reported as untrustworthy. A quiet
# machine measures p90/p50 under 1.2 and drift within 10% for every model in the suite; a CPU
# shared with another busy process shows 2x and more.
MAX_SPREAD = 1.5
MAX_DRIFT = 1.3
MIN_CPU_SHARE = 0.5  # CPU-bound work on an idle core gets ~100%, with several threads more


@dataclass(frozen=True)
class Latency:
    batch_size: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    drift: float = 1.0  # median of the last third of the samples / median of the first third
    cpu_share: float | None = None  # process CPU seconds per wall second while timed (None: not CPU-bound work)

    def trust_problem(self) -> str | None:
        """Why a ratio using this measurement cannot be trusted, or None."""
        if self.p90_ms > MAX_SPREAD * self.p50_ms:
            return f"p90 is {self.p90_ms / self.p50_ms:.1f}x p50"
        if not 1 / MAX_DRIFT <= self.drift <= MAX_DRIFT:
            return f"its last third ran at {self.drift:.2f}x the time of its first"
        if self.cpu_share is not None and self.cpu_share < MIN_CPU_SHARE:
            return f"the process got {self.cpu_share:.0%} of a core while timed (a busy CPU)"
        return None

    @property
    def throughput(self) -> float:
        """Samples per second at the median latency."""
        return self.batch_size * 1000.0 / self.p50_ms if self.p50_ms > 0 else float("inf")

    def to_json(self) -> dict:
        return {**asdict(self), "throughput_per_s": round(self.throughput, 2), "untrusted": self.trust_problem()}


def measure(
    fn: Callable[[dict], object],
    inputs: Sequence[dict],
    *,
    warmup: int = 3,
    min_iters: int = 10,
    min_seconds: float = 2.0,
    max_iters: int = 10_000,
    batch_size: int | None = None,
    cpu_bound: bool = True,
) -> Latency:
    """Time ``fn(inputs[i % len(inputs)])``; batch size is read from the first input's first axis
    unless given (inputs already staged on a device are not numpy dicts). ``cpu_bound=False``
    (a GPU backend, which may wait without using a core) leaves the CPU share unjudged."""
    if not inputs:
        raise ValueError("measure needs at least one input batch")
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    samples: list[float] = []
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_seconds):
        x = inputs[len(samples) % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        samples.append((time.perf_counter() - t0) * 1000.0)
    cpu_share = (_cpu_seconds() - cpu_start) / max(time.perf_counter() - start, 1e-9)
    arr = np.asarray(samples)
    batch = batch_size if batch_size is not None else len(next(iter(inputs[0].values())))
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    third = max(len(arr) // 3, 1)
    drift = float(np.median(arr[-third:]) / max(np.median(arr[:third]), 1e-9))
    return Latency(batch, len(arr), round(float(p50), 3), round(float(p90), 3), round(float(p99), 3), round(float(arr.mean()), 3),
                   round(drift, 3), round(cpu_share, 3) if cpu_bound else None)


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (ONNX Runtime's and torch's pools included), children excluded."""
    times = os.times()
    return times.user + times.system
