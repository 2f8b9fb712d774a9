"""The successive-halving loop on stand-ins: each candidate's drop falls with the seconds it was
distilled, along a curve the test sets, and the clock is the seconds handed out."""

import pytest

from compress.core.errors import ConfigError
from compress.pipeline.prune_search import search as search_module
from compress.pipeline.prune_search.search import SearchHooks, search_pruning

TOLERANCE = 0.01


class World:
    """Candidates named by spec: latency (ms) and the drop they reach after t seconds, floor + 0.1 / (1 + t)."""

    def __init__(self, monkeypatch, floors: dict[str, float], latency: dict[str, float], interrupt_at_call: int | None = None):
        self.floors, self.latency, self.now, self.trained, self.calls = floors, latency, 0.0, {}, []
        self.interrupt_at_call = interrupt_at_call
        self.saved = []
        monkeypatch.setattr(search_module.time, "monotonic", lambda: self.now)

    def hooks(self) -> SearchHooks:
        return SearchHooks(prune=lambda spec: (spec, [{"parameters_after": 1}]), time_it=lambda spec: {1: self.latency[spec] / 4, 16: self.latency[spec]},
                           distill=self.distill, score=self.score, save_best=lambda c: self.saved.append(c.spec), say=lambda _: None)

    def distill(self, candidate, seconds):
        self.calls.append((candidate.spec, seconds))
        if self.interrupt_at_call is not None and len(self.calls) == self.interrupt_at_call:
            raise KeyboardInterrupt
        self.now += seconds
        self.trained[candidate.spec] = self.trained.get(candidate.spec, 0.0) + seconds
        return {"steps": int(self.trained[candidate.spec])}

    def score(self, spec):
        drop = self.floors[spec] + 0.1 / (1 + self.trained[spec])
        return drop, drop <= TOLERANCE, drop


LATENCY = {"layers=3": 40.0, "layers=2": 60.0, "ffn=0.5": 80.0, "mild": 95.0}


def test_the_fastest_candidate_that_reaches_the_tolerance_is_chosen_and_slower_ones_drop_out(monkeypatch):
    world = World(monkeypatch, {"layers=3": 0.03, "layers=2": 0.002, "ffn=0.5": 0.001, "mild": 0.0}, LATENCY)
    result = search_pruning(tuple(LATENCY)[::-1], budget_s=600, rounds=3, hooks=world.hooks())
    assert result.chosen.spec == "layers=2" and result.chosen.meets
    assert [c.spec for c in result.candidates] == list(LATENCY)  # fastest first
    report = result.report(TOLERANCE)
    out = {c["spec"]: c["out_after_round"] for c in report["candidates"]}
    assert out["mild"] is not None and out["ffn=0.5"] is not None  # slower than a candidate within the tolerance
    assert world.trained["layers=2"] > world.trained["mild"]  # the survivors got the later rounds
    assert sum(world.trained.values()) == pytest.approx(600)  # the whole budget, and no more
    assert world.saved[-1] == "layers=2"


def test_when_none_reaches_the_tolerance_the_one_that_lost_least_is_kept_and_says_so(monkeypatch):
    world = World(monkeypatch, {"layers=3": 0.2, "layers=2": 0.05, "ffn=0.5": 0.03, "mild": 0.02}, LATENCY)
    result = search_pruning(tuple(LATENCY), budget_s=300, rounds=2, hooks=world.hooks())
    assert result.chosen.spec == "mild" and not result.chosen.meets
    assert not result.report(TOLERANCE)["chosen_meets_tolerance"]


def test_the_front_holds_every_candidate_no_other_beats_on_both_speed_and_drop(monkeypatch):
    world = World(monkeypatch, {"layers=3": 0.03, "layers=2": 0.002, "ffn=0.5": 0.001, "mild": 0.0}, LATENCY)
    report = search_pruning(tuple(LATENCY), budget_s=100, rounds=1, hooks=world.hooks()).report(TOLERANCE)
    front = {c["spec"] for c in report["candidates"] if c["pareto"]}
    assert front == set(LATENCY)  # each is faster than every one that loses less
    world = World(monkeypatch, {"layers=3": 0.03, "layers=2": 0.0, "ffn=0.5": 0.001, "mild": 0.0}, LATENCY)
    report = search_pruning(tuple(LATENCY), budget_s=100, rounds=1, hooks=world.hooks()).report(TOLERANCE)
    assert {c["spec"] for c in report["candidates"] if c["pareto"]} == {"layers=3", "layers=2"}


def test_an_interrupted_search_keeps_the_best_candidate_scored_so_far(monkeypatch):
    world = World(monkeypatch, {"layers=3": 0.03, "layers=2": 0.002, "ffn=0.5": 0.001, "mild": 0.0}, LATENCY, interrupt_at_call=5)
    result = search_pruning(tuple(LATENCY), budget_s=600, rounds=3, hooks=world.hooks())
    assert result.interrupted and result.chosen.drop is not None
    world = World(monkeypatch, {"layers=3": 0.03, "layers=2": 0.002, "ffn=0.5": 0.001, "mild": 0.0}, LATENCY, interrupt_at_call=1)
    with pytest.raises(KeyboardInterrupt):  # nothing scored yet: nothing to keep
        search_pruning(tuple(LATENCY), budget_s=600, rounds=3, hooks=world.hooks())


def test_a_budget_spent_before_any_distillation_is_refused_with_a_fix(monkeypatch):
    world = World(monkeypatch, {"layers=3": 0.03, "layers=2": 0.002, "ffn=0.5": 0.001, "mild": 0.0}, LATENCY)
    hooks = world.hooks()
    timed = hooks.time_it

    def slow_timing(spec):
        world.now += 10  # pruning and timing the candidates alone outlast the budget
        return timed(spec)

    hooks.time_it = slow_timing
    with pytest.raises(ConfigError, match="raise --distill-budget"):
        search_pruning(tuple(LATENCY), budget_s=20, rounds=3, hooks=hooks)
