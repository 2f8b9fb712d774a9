"""Successive halving over pruning candidates, each distilled from the original.

Pruning fixes a candidate's speed at once; only its accuracy needs distillation to show. So every
candidate is pruned and timed first, then the rounds share the budget: in each, the candidates
still in the race are distilled further (each resuming where it stopped, optimizer state and all)
and scored on validation data. After a round, candidates slower than the fastest one within the
tolerance are out (it beats them on both counts), and of those faster than it, or of all where
none is within it yet, the half with the smaller drop stays. A short distillation understates
what a candidate reaches, which is why no candidate is judged on its first round alone unless a
faster one already meets the tolerance.

The work the search delegates (pruning, distilling, scoring, timing, saving the best so far) comes
in as functions, so the same loop runs on a real model in the pipeline and on stand-ins in tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from compress.core.errors import ConfigError
from compress.core.model import Model
from compress.pipeline.pareto import mark_pareto


@dataclass
class Candidate:
    spec: str
    student: Model
    pruned: list[dict]  # each pruning step's report section
    latency_ms: dict[int, float]  # p50 per batch size, timed after pruning
    distill: dict | None = None  # the last distillation report (steps add up over rounds)
    distilled_s: float = 0.0
    drop: float | None = None
    bound: float | None = None
    meets: bool = False
    rounds: list[dict] = field(default_factory=list)
    out_after_round: int | None = None

    @property
    def speed_key(self) -> float:
        """The p50 at the largest batch size timed: what throughput-bound users pay."""
        return self.latency_ms[max(self.latency_ms)]

    def to_json(self) -> dict:
        return {"spec": self.spec, "latency_p50_ms": {str(k): v for k, v in self.latency_ms.items()}, "drop": self.drop,
                "drop_bound": self.bound, "meets_tolerance": self.meets, "distilled_s": round(self.distilled_s, 1),
                "distill_steps": (self.distill or {}).get("steps", 0), "rounds": self.rounds, "out_after_round": self.out_after_round,
                "parameters_after": next((s["parameters_after"] for s in reversed(self.pruned) if "parameters_after" in s), None)}


@dataclass
class SearchHooks:
    prune: Callable[[str], tuple[Model, list[dict]]]  # spec -> (a pruned copy of the original, the pruning sections)
    time_it: Callable[[Model], dict[int, float]]  # p50 ms per batch size
    distill: Callable[[Candidate, float], dict]  # distill the candidate this many more seconds; returns the report
    score: Callable[[Model], tuple[float, bool, float | None]]  # (validation drop, within the tolerance, resampled bound)
    save_best: Callable[[Candidate], None] = lambda candidate: None
    say: Callable[[str], None] = print
    describe: Callable[[float], str] = lambda drop: f"{100 * drop:+.2f} points"  # a drop in the metric's unit


@dataclass
class SearchResult:
    chosen: Candidate
    candidates: list[Candidate]
    interrupted: bool
    seconds: float
    notes: list[str] = field(default_factory=list)

    def report(self, tolerance: float) -> dict:
        points = [c.to_json() for c in self.candidates]
        mark_pareto(points, _p50)
        return {"tolerance": tolerance, "chosen": self.chosen.spec, "chosen_meets_tolerance": self.chosen.meets,
                "seconds": round(self.seconds, 1), "interrupted": self.interrupted, "candidates": points, "notes": self.notes}


def search_pruning(specs: tuple[str, ...], budget_s: float, rounds: int, hooks: SearchHooks) -> SearchResult:
    start = time.monotonic()
    candidates = []
    for spec in specs:
        student, sections = hooks.prune(spec)
        candidates.append(Candidate(spec, student, sections, hooks.time_it(student)))
        hooks.say(f"  {spec}: " + ", ".join(f"b{b} {ms:.1f} ms" for b, ms in candidates[-1].latency_ms.items()))
    candidates.sort(key=lambda c: c.speed_key)  # fastest first
    alive, best, interrupted = list(candidates), None, False
    try:
        for round_no in range(1, rounds + 1):
            left = budget_s - (time.monotonic() - start)
            if left <= 0:
                break
            share = left / (rounds - round_no + 1) / len(alive) if len(alive) > 1 else left  # the last one left takes the rest
            for candidate in alive:
                train_and_score(candidate, share, round_no, hooks)
            best = choose(candidates, best)
            hooks.save_best(best)
            alive = survivors(alive, round_no)
            hooks.say(f"  after round {round_no}: {', '.join(c.spec for c in alive)} go on; best so far {best.spec}")
    except KeyboardInterrupt:
        if best is None:
            raise
        interrupted = True
        hooks.say(f"  search interrupted: keeping the best candidate so far ({best.spec})")
    if best is None:
        raise KeyboardInterrupt if interrupted else ConfigError(
            f"the pruning search's budget of {budget_s:.0f}s ran out before one candidate was distilled (pruning and timing "
            f"{len(candidates)} candidates took {time.monotonic() - start:.0f}s); raise --distill-budget")
    return SearchResult(best, candidates, interrupted, time.monotonic() - start)


def train_and_score(candidate: Candidate, seconds: float, round_no: int, hooks: SearchHooks) -> None:
    started = time.monotonic()
    report = hooks.distill(candidate, seconds)
    candidate.distilled_s += time.monotonic() - started
    candidate.distill = report
    candidate.drop, candidate.meets, candidate.bound = hooks.score(candidate.student)
    candidate.rounds.append({"round": round_no, "distill_steps": report.get("steps"), "drop": candidate.drop, "meets_tolerance": candidate.meets})
    hooks.say(f"  {candidate.spec}: {report.get('steps')} steps, validation drop {hooks.describe(candidate.drop)}{'  ✓' if candidate.meets else ''}")


def choose(candidates: list[Candidate], previous: Candidate | None) -> Candidate:
    """The fastest scored candidate within the tolerance; else the one that lost least."""
    scored = [c for c in candidates if c.drop is not None]
    meeting = [c for c in scored if c.meets]
    if meeting:
        return min(meeting, key=lambda c: c.speed_key)
    return min(scored, key=lambda c: c.drop) if scored else previous


def survivors(alive: list[Candidate], round_no: int) -> list[Candidate]:
    """Who goes on after a round (``alive`` fastest first). Slower than the fastest candidate that
    meets the tolerance: out. Of the faster ones (all, where none meets), the better half by drop."""
    meeting = next((c for c in alive if c.meets), None)
    racing = alive[:alive.index(meeting)] if meeting is not None else list(alive)
    keep = sorted(racing, key=lambda c: c.drop)[:math.ceil(len(racing) / 2)] if len(racing) > 1 else racing
    kept = [c for c in alive if c in keep or c is meeting]
    for c in alive:
        if c not in kept:
            c.out_after_round = round_no
    return kept


def _p50(point: dict) -> float:
    """The p50 at the largest batch size timed (the keys are JSON strings)."""
    return max(point["latency_p50_ms"].items(), key=lambda kv: int(kv[0]))[1]
