"""The gradual descent on stand-ins: a stage's drop falls with the seconds it was distilled (since
it was pruned), from a start and towards a floor the test sets per stage; the clock is the seconds
handed out."""

import pytest

from compress.pipeline.prune_search import descend as descend_module
from compress.pipeline.prune_search import search as search_module
from compress.pipeline.prune_search.descend import descend
from compress.pipeline.prune_search.search import SearchHooks

TOLERANCE = 0.01


class Student:
    """A stand-in model: which chain steps it has been pruned by, and how it was trained."""

    def __init__(self, steps):
        self.steps, self.trained = steps, 0.0
        self.module = self  # descend snapshots module weights before polishing

    def state_dict(self):
        return {"trained": self.trained}

    def load_state_dict(self, state):
        self.trained = state["trained"]


class World:
    def __init__(self, monkeypatch, floors: dict[str, float], interrupt_at_call: int | None = None):
        self.floors, self.now, self.calls, self.saved, self.interrupt_at_call = floors, 0.0, [], [], interrupt_at_call
        for module in (search_module, descend_module):
            monkeypatch.setattr(module.time, "monotonic", lambda: self.now)

    def hooks(self) -> SearchHooks:
        return SearchHooks(prune=lambda spec: (Student((spec,)), [{"parameters_after": 100}]),
                           time_it=lambda s: {1: 10.0 / len(s.steps), 16: 100.0 / len(s.steps)}, distill=self.distill,
                           score=self.score, save_best=lambda c: self.saved.append((c.spec, c.student.trained)), say=lambda _: None)

    def prune_further(self, student, spec):
        assert student.trained > 0  # the next stage starts from the distilled student
        return Student((*student.steps, spec)), [{"parameters_after": 100 - 10 * len(student.steps)}]

    def distill(self, candidate, seconds):
        self.calls.append((candidate.spec, seconds))
        if self.interrupt_at_call is not None and len(self.calls) == self.interrupt_at_call:
            candidate.student.trained += seconds / 2  # Ctrl-C mid-distillation: the weights have moved
            raise KeyboardInterrupt
        self.now += seconds
        candidate.student.trained += seconds
        return {"steps": int(candidate.student.trained)}

    def score(self, student):
        drop = self.floors[student.steps[-1]] + 0.2 / (1 + student.trained / 10)
        return drop, drop <= TOLERANCE, drop


def test_each_stage_prunes_the_distilled_student_further_and_the_last_one_within_the_tolerance_is_kept(monkeypatch):
    # layers=2 recovers after 200 s, ffn=0.5 after 400 s of its own, layers=1 never
    world = World(monkeypatch, {"layers=2": 0.0, "ffn=0.5": 0.005, "layers=1": 0.05})
    result = descend(("layers=2", "ffn=0.5", "layers=1"), budget_s=700, check_s=25, hooks=world.hooks(), prune_further=world.prune_further)
    assert [s.spec for s in result.candidates] == ["layers=2", "layers=2 + ffn=0.5", "layers=2 + ffn=0.5 + layers=1"]
    assert result.chosen.spec == "layers=2 + ffn=0.5" and result.chosen.meets
    assert world.saved[-1][0] == "layers=2 + ffn=0.5"  # saved when it got within the tolerance
    assert sum(seconds for _, seconds in world.calls) == pytest.approx(700)  # the whole budget, the rest spent on the last stage
    report = result.report(TOLERANCE)
    assert [c["meets_tolerance"] for c in report["candidates"]] == [True, True, False]
    assert report["candidates"][2]["out_after_round"] == len(report["candidates"][2]["rounds"])
    assert report["candidates"][1]["pareto"]


def test_a_chain_done_early_spends_what_is_left_on_its_last_stage(monkeypatch):
    world = World(monkeypatch, {"layers=2": 0.0, "ffn=0.5": 0.0})
    result = descend(("layers=2", "ffn=0.5"), budget_s=500, check_s=25, hooks=world.hooks(), prune_further=world.prune_further)
    assert result.chosen.spec == "layers=2 + ffn=0.5" and result.chosen.meets
    assert world.calls[-1][1] > 25 and sum(seconds for _, seconds in world.calls) == pytest.approx(500)
    assert world.saved[-1] == ("layers=2 + ffn=0.5", result.chosen.student.trained)


def test_polishing_that_leaves_the_tolerance_goes_back_to_the_weights_that_were_within_it(monkeypatch):
    world = World(monkeypatch, {"layers=2": 0.0})
    hooks = world.hooks()
    scores = iter([(0.05, False, None), (0.0, True, 0.0), (0.02, False, None)])  # recovers at the 2nd check, worse after polishing
    hooks.score = lambda student: next(scores)
    result = descend(("layers=2",), budget_s=300, check_s=25, hooks=hooks, prune_further=world.prune_further)
    assert result.chosen.meets and result.chosen.drop == 0.0 and result.chosen.student.trained == 50
    assert result.chosen.rounds[-1]["kept"] is False


def test_when_the_first_stage_never_recovers_it_is_kept_as_the_least_bad_and_not_called_within(monkeypatch):
    world = World(monkeypatch, {"layers=2": 0.03, "ffn=0.5": 0.0})
    result = descend(("layers=2", "ffn=0.5"), budget_s=200, check_s=50, hooks=world.hooks(), prune_further=world.prune_further)
    assert result.chosen.spec == "layers=2" and not result.chosen.meets
    assert [s.spec for s in result.candidates] == ["layers=2"]  # never pruned further
    assert not result.report(TOLERANCE)["chosen_meets_tolerance"]


def test_ctrl_c_keeps_the_last_stage_within_the_tolerance(monkeypatch):
    world = World(monkeypatch, {"layers=2": 0.0, "ffn=0.5": 0.005}, interrupt_at_call=10)
    result = descend(("layers=2", "ffn=0.5"), budget_s=600, check_s=25, hooks=world.hooks(), prune_further=world.prune_further)
    assert result.interrupted and result.chosen.spec == "layers=2" and result.chosen.meets


def test_a_step_the_student_cannot_take_ends_the_descent_with_a_note(monkeypatch):
    from compress.core.errors import ConfigError

    world = World(monkeypatch, {"layers=2": 0.0, "ffn=0.5": 0.0})

    def refuse(student, spec):
        raise ConfigError("removing 4 of the model's 4 layers would leave none")

    result = descend(("layers=2", "layers=4"), budget_s=300, check_s=25, hooks=world.hooks(), prune_further=refuse)
    assert result.chosen.spec == "layers=2" and result.chosen.meets
    assert result.report(TOLERANCE)["notes"] == ["stopped before layers=4: removing 4 of the model's 4 layers would leave none"]
    assert sum(seconds for _, seconds in world.calls) == pytest.approx(300)  # what was left went to the stage that recovered


def test_ctrl_c_while_polishing_keeps_the_weights_that_were_saved(monkeypatch):
    world = World(monkeypatch, {"layers=2": 0.0}, interrupt_at_call=9)  # 8 checks to recover, then the polish is interrupted
    result = descend(("layers=2",), budget_s=600, check_s=25, hooks=world.hooks(), prune_further=world.prune_further)
    assert result.interrupted and result.chosen.meets and result.chosen.student.trained == 200 == world.saved[-1][1]
