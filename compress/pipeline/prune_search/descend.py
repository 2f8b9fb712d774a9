"""Gradual pruning interleaved with distillation: prune a step, distil until the student is back
within the tolerance, then prune the next step from that student.

Successive halving (``search``) splits the budget between independent candidates, each distilled
from scratch: with 20 minutes on two cores and six candidates, each had a few hundred steps, and
a strongly pruned candidate is judged on its first minute, when it still looks worst. Descending a
chain instead spends the whole budget on one student that gets smaller as it recovers: every
stage starts from a student that already imitates the teacher, and the budget decides how far
down the chain the run gets. The student is scored on validation data every ``check_s`` seconds
of distillation; it moves on as soon as it is within the tolerance, and the last stage that was
within it (saved when it got there) is the result when the budget runs out on the next.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from compress.core.errors import ConfigError, InputError
from compress.core.model import Model
from compress.pipeline.prune_search.search import (
    Candidate,
    SearchHooks,
    SearchResult,
    train_and_score,
)

STAGE_JOIN = " + "  # a stage's name: the chain's steps so far, e.g. "layers=2 + ffn=0.5"


def descend(chain: tuple[str, ...], budget_s: float, check_s: float, hooks: SearchHooks,
            prune_further: Callable[[Model, str], tuple[Model, list[dict]]]) -> SearchResult:
    """``prune_further(student, spec)`` prunes a copy of ``student`` by one more spec."""
    start = time.monotonic()
    stages: list[Candidate] = []
    best, interrupted, notes = None, False, []
    try:
        for step in chain:
            if budget_s - (time.monotonic() - start) <= 0:
                break
            try:
                stage = _next_stage(stages, step, hooks, prune_further)
            except (ConfigError, InputError) as exc:  # e.g. a step this architecture cannot take: the descent ends here
                hooks.say(f"  cannot prune {step} further: {exc}")
                notes.append(f"stopped before {step}: {exc}")
                break
            stages.append(stage)
            while not stage.meets and (left := budget_s - (time.monotonic() - start)) > 0:
                train_and_score(stage, min(check_s, left), len(stage.rounds) + 1, hooks)
            if not stage.meets:
                break  # the budget ran out before this stage recovered: the last one that did is the result
            best = stage
            hooks.save_best(best)
            hooks.say(f"  {stage.spec} is within the tolerance after {stage.distilled_s:.0f}s of distillation (saved)")
        if stages and best is stages[-1]:  # the chain ended (done, or a step it cannot take) with time to spare
            _polish(best, budget_s - (time.monotonic() - start), hooks)
    except KeyboardInterrupt:
        if best is None:
            raise
        interrupted = True
        hooks.say(f"  search interrupted: keeping the last stage within the tolerance ({best.spec})")
    if best is None:  # no stage recovered: keep the one that lost least, and the caller says so
        best = min((s for s in stages if s.drop is not None), key=lambda s: s.drop, default=None)
        if best is None:
            raise KeyboardInterrupt if interrupted else _no_time(budget_s)
        hooks.save_best(best)
    for stage in stages:
        if stage is not best and stage.out_after_round is None and not stage.meets:
            stage.out_after_round = len(stage.rounds)
    return SearchResult(best, stages, interrupted, time.monotonic() - start, notes)


def _next_stage(stages: list[Candidate], step: str, hooks: SearchHooks, prune_further) -> Candidate:
    if stages:
        student, sections = prune_further(stages[-1].student, step)
        spec = stages[-1].spec + STAGE_JOIN + step
    else:
        (student, sections), spec = hooks.prune(step), step
    stage = Candidate(spec, student, sections, hooks.time_it(student))
    hooks.say(f"  {spec}: " + ", ".join(f"b{b} {ms:.1f} ms" for b, ms in stage.latency_ms.items()))
    return stage


def _polish(stage: Candidate, left: float, hooks: SearchHooks) -> None:
    """The last stage recovered with time to spare: distil it on, and keep the result only if it
    is still within the tolerance (more distillation rarely hurts, but it is checked)."""
    if left <= 0:
        return
    hooks.say(f"  nothing left to prune; distilling {stage.spec} for the {left:.0f}s left")
    weights = copy.deepcopy(stage.student.module.state_dict())
    scored = (stage.drop, stage.meets, stage.bound)

    def restore() -> None:  # the weights saved when it was within the tolerance
        stage.student.module.load_state_dict(weights)
        stage.drop, stage.meets, stage.bound = scored

    try:
        train_and_score(stage, left, len(stage.rounds) + 1, hooks)
    except KeyboardInterrupt:  # half-polished and unscored: the saved weights are the result
        restore()
        raise
    if stage.meets:
        hooks.save_best(stage)
    else:
        restore()
        stage.rounds[-1]["kept"] = False


def _no_time(budget_s: float) -> ConfigError:
    return ConfigError(f"the pruning search's budget of {budget_s:.0f}s ran out before the first stage was distilled; raise --distill-budget")
