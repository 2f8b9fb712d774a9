"""Timing many small variants side by side: rounds interleave the variants, so a noisy
neighbour or a clock change shifts them all alike and the ratios stay honest."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def interleaved_ms(variants: dict[str, Callable[[], object]], rounds: int = 15, calls: int = 5,
                   device: str = "cpu", before: dict[str, Callable[[], object]] | None = None) -> dict[str, dict]:
    """Median (and spread) over rounds of the mean time per call, in ms, for each variant.
    ``before[name]``, where given, runs untimed ahead of that variant's warm-up and each of its
    rounds (e.g. forcing a kernel path through the environment)."""
    before = before or {}
    for name, fn in variants.items():  # warm-up: first-call allocations, lazy kernel loads, autotuning
        before.get(name, _nothing)()
        for _ in range(3):
            fn()
    per_round: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            before.get(name, _nothing)()
            per_round[name].append(_one_round(fn, calls, device))
    return {name: {"median_ms": round(statistics.median(v), 5), "min_ms": round(min(v), 5), "max_ms": round(max(v), 5),
                   "rounds": rounds, "calls_per_round": calls} for name, v in per_round.items()}


def _nothing() -> None:
    pass


def _one_round(fn, calls: int, device: str) -> float:
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / calls
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) * 1e3 / calls
