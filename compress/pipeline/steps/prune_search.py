"""``PruneSearchConfig`` (``--prune auto``): the searches of ``prune_search`` wired to a real run.

The descent (default) prunes the original one chain step at a time, each from the student the
last left; successive halving prunes independent candidates from the original. Either way they
are distilled from the original on the run's distillation data (one cache of the teacher's
answers serving every candidate, round and stage), with each student layer's hidden state compared
with the teacher layer it was copied from, scored
in the run's task metric on the validation split (held out from distillation and from the
report's evaluation) and timed in PyTorch on the run's latency batches. The best candidate so far
is saved as the run's ``model/`` directory after every round; the explored candidates go to the
report with their Pareto front, as a table and ``prune_search.png``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from bench.backends.base import run_all, time_batches
from bench.backends.torch_eager import TorchEagerBackend
from compress.core.errors import InputError
from compress.core.forward_loop import forward_loop_over
from compress.core.model import Model, clone_model
from compress.core.registry import register_handler
from compress.load.hf_pruned import save_hf_dir
from compress.passes.distill import DistillConfig, distill
from compress.passes.distill_losses import layer_list
from compress.passes.prune import prune_
from compress.passes.prune_spec import parse_prune
from compress.passes.teacher_cache import TeacherCache
from compress.pipeline.int8_guard import describe, tolerance_for
from compress.pipeline.prune_search.config import PruneSearchConfig
from compress.pipeline.prune_search.descend import descend
from compress.pipeline.prune_search.ladder import chain, ladder
from compress.pipeline.prune_search.plot import plot_front
from compress.pipeline.prune_search.search import Candidate, SearchHooks, search_pruning
from compress.pipeline.state import RunState
from compress.pipeline.static_int8.evaluator import Evaluator
from compress.pipeline.steps.model_passes import HF_DIR, distill_data

TIMING_SECONDS = 0.5  # per batch size and candidate: pruning's speed differences are tens of percent
PLOT = "prune_search.png"


@register_handler(PruneSearchConfig)
def prune_search_step(config: PruneSearchConfig, state: RunState) -> None:
    original, options, metric = state.original, state.options, state.data.metric
    specs = config.candidates or _ladder_for(original, config.strategy)
    whole = config.max_drop if config.max_drop is not None else tolerance_for(metric, options)
    tolerance = whole * config.pruning_share
    what = (f"Pruning gradually ({' then '.join(specs)}), distilling from the original after each step" if config.strategy == "descend"
            else f"Searching {len(specs)} pruning candidates, each distilled from the original")
    title = f"{what} (budget {config.budget_s:.0f}s; pruning may lose {describe(metric, tolerance)} of the {describe(metric, whole)} tolerance)"
    with state.progress.step(title), tempfile.TemporaryDirectory(prefix="compress-prune-search-") as tmp:
        hooks, prune_further = _hooks(config, state, tolerance, Path(tmp))
        if config.strategy == "descend":
            result = descend(specs, config.budget_s, config.budget_s / config.checks, hooks, prune_further)
        else:
            result = search_pruning(specs, config.budget_s, config.rounds, hooks)
    section = {"strategy": config.strategy, **result.report(tolerance)}
    chosen = result.chosen
    state.model = chosen.student
    state.progress.say(_table(section, metric))
    plotted = plot_front(section, state.stage / PLOT, metric)
    section.update(metric=metric.name, drop_unit="relative" if metric.relative else "points", whole_tolerance=whole,
                   validation=state.data.validation.source, plot=plotted, prune=chosen.pruned, distill=chosen.distill)
    if not chosen.meets:
        state.progress.warn(f"no pruning candidate stayed within {describe(metric, tolerance)} on validation data; kept {chosen.spec}, "
                            f"which lost {describe(metric, chosen.drop)}; raise --distill-budget or --max-drop")
    state.report.setdefault("model_passes", {"stages": []})["stages"].append({"step": type(config).__name__, **section})
    state.changes += ["pruned", "distilled"]


prune_search_step.uses_validation = True  # candidates are scored on held-out validation data


def _ladder_for(model: Model, strategy: str) -> tuple[str, ...]:
    found = layer_list(model)
    if found is None:
        raise InputError("--prune auto searches transformer layers, heads and FFN neurons, and this model is not a transformers model "
                         "with a list of layers; give --prune a spec instead (e.g. channels=0.5 for a CNN)")
    return chain(found[1]) if strategy == "descend" else ladder(found[1])


def _hooks(config: PruneSearchConfig, state: RunState, tolerance: float, work: Path) -> tuple[SearchHooks, object]:
    original, options = state.original, state.options
    cache = TeacherCache()
    origins: dict[int, list[int] | None] = {}  # per student (by id): the teacher layer each of its layers was copied from
    data = distill_data(original, options)
    validation = state.data.validation
    with TorchEagerBackend(original, "cpu", "fp32", options.threads) as runner:
        reference = run_all(runner, validation.batches)
    evaluate = Evaluator(validation.batches, reference, validation.labels, state.data.metric, [], options.threads)

    def prune_from(model: Model, spec: str) -> tuple[Model, list[dict]]:
        student, sections = clone_model(model), []
        for step in parse_prune(spec):
            calibration = state.data.calibration(options.prune_samples).batches if step.uses_calibration() else None
            sections.append(prune_(student, step, forward_loop_over(calibration) if calibration is not None else None))
        found = origins.get(id(model)) if model is not original else _all_layers(original)
        origins[id(student)] = _follow(found, sections)
        return student, sections

    def prune(spec: str) -> tuple[Model, list[dict]]:
        return prune_from(original, spec)

    def time_it(model: Model) -> dict[int, float]:
        with TorchEagerBackend(model, "cpu", "fp32", options.threads) as runner:
            return {bs: round(lat.p50_ms, 3) for bs, lat in time_batches(runner, state.data.latency, TIMING_SECONDS).items()}

    def distill_more(candidate: Candidate, seconds: float) -> dict:
        step = DistillConfig(time_budget_s=max(seconds, 1.0), learning_rate=config.learning_rate, batch_size=config.batch_size,
                             seed=config.seed, warmup_steps=20, attention_weight=config.attention_weight,
                             checkpoint_every=10 ** 6)  # a checkpoint at the end of each round
        directory = work / re.sub(r"[^a-z0-9.]+", "-", candidate.spec)
        return distill(original, candidate.student, step, data.batches, checkpoint_dir=directory, resume=candidate.distill is not None,
                       progress=state.progress, hidden_pairs=_pairs(original, candidate.student, origins.get(id(candidate.student))),
                       teacher_cache=cache)

    def score(model: Model) -> tuple[float, bool, float | None]:
        with TorchEagerBackend(model, "cpu", "fp32", options.threads) as runner:
            drop, _ = evaluate.score_outputs(run_all(runner, validation.batches))
        met, bound = evaluate.judge(drop, tolerance)
        return drop, met, bound

    def save_best(candidate: Candidate) -> None:
        if candidate.student.hf_model is not None:  # the best so far stays on disk while the search goes on
            save_hf_dir(candidate.student, state.stage / HF_DIR, force=True)

    hooks = SearchHooks(prune=prune, time_it=time_it, distill=distill_more, score=score, save_best=save_best,
                        say=state.progress.say, describe=lambda drop: describe(state.data.metric, drop))
    return hooks, prune_from


def _all_layers(model: Model) -> list[int] | None:
    found = layer_list(model)
    return list(range(found[1])) if found is not None else None


def _follow(origin: list[int] | None, sections: list[dict]) -> list[int] | None:
    """The teacher layers behind a student's layers after these pruning steps (layer removal
    reports the indices it kept; other steps keep every layer)."""
    for section in sections:
        if origin is not None and "kept" in section and "layers_before" in section:
            origin = [origin[i] for i in section["kept"]]
    return origin


def _pairs(teacher: Model, student: Model, origin: list[int] | None) -> list[tuple[str, str]] | None:
    """Each student layer with the teacher layer it was copied from; None (the default pairing)
    where the origin is unknown."""
    found = (layer_list(teacher), layer_list(student))
    if origin is None or None in found or len(origin) != found[1][1]:
        return None
    (t_path, _), (s_path, _) = found
    return [(f"{t_path}.{t}", f"{s_path}.{i}") for i, t in enumerate(origin)]


def _table(section: dict, metric) -> str:
    sizes = list(section["candidates"][0]["latency_p50_ms"]) if section["candidates"] else []
    header = ["candidate", *[f"b{b} p50 ms" for b in sizes], "distilled s", "steps", f"{metric.name} drop", "within", "front", "out after"]
    lines = [header]
    unit = "check" if section.get("strategy") == "descend" else "round"  # what the search counts its scorings in
    for c in sorted(section["candidates"], key=lambda c: c["latency_p50_ms"][sizes[-1]]):
        mark = "chosen" if c["spec"] == section["chosen"] else ""
        lines.append([c["spec"], *[f"{c['latency_p50_ms'][b]:.1f}" for b in sizes], f"{c['distilled_s']:.0f}", str(c["distill_steps"]),
                      "-" if c["drop"] is None else describe(metric, c["drop"]), "yes" if c["meets_tolerance"] else "no",
                      "yes" if c["pareto"] else "", f"{unit} {c['out_after_round']}" if c["out_after_round"] else mark])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in lines)
