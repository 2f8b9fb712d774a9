"""--prune auto through the CLI on a small BERT: candidates pruned, distilled within one budget,
scored on validation data, the chosen one saved and measured, the front reported and plotted."""

import json

import pytest
from click.testing import CliRunner

from compress.cli.main import main
from compress.load.loaders import load_model
from tests.compress.pipeline.steps.conftest import FAST


@pytest.mark.parametrize("strategy", ["halving", "descend"])
def test_cli_prune_auto_distills_every_candidate_keeps_one_and_reports_the_front(tiny_bert, distill_text, tmp_path, strategy):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(tiny_bert), "--prune", "auto", "--prune-search", strategy, "--distill", str(distill_text),
                                       "--distill-budget", "12s", "--no-int8", "--max-drop", "50%", "--json", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    stage = report["model_passes"]["stages"][0]
    assert stage["step"] == "PruneSearchConfig" and stage["strategy"] == strategy
    specs = [c["spec"] for c in stage["candidates"]]
    if strategy == "halving":
        assert sorted(specs) == sorted(["layers=1,ffn=0.5", "layers=1", "heads=0.33,ffn=0.5,scope=global", "ffn=0.5,scope=global"])
    else:  # the chain of the 2-layer model, each stage pruned from the one before
        assert specs == ["layers=1", "layers=1 + ffn=0.5", "layers=1 + ffn=0.5 + heads=0.33,scope=global"][:len(specs)] and specs
        assert all(c["meets_tolerance"] for c in stage["candidates"][:-1])  # a stage is pruned further only once it recovered
    assert all(c["distill_steps"] > 0 and c["drop"] is not None for c in stage["candidates"])  # each was distilled and scored
    assert stage["tolerance"] == pytest.approx(0.5 * 0.75)  # pruning's share of --max-drop
    chosen = next(c for c in stage["candidates"] if c["spec"] == stage["chosen"])
    meeting = [c for c in stage["candidates"] if c["meets_tolerance"]]
    if meeting and strategy == "halving":  # the fastest within the tolerance, measured at the largest batch size
        assert chosen["meets_tolerance"] and chosen["latency_p50_ms"]["2"] == min(c["latency_p50_ms"]["2"] for c in meeting)
        assert chosen["pareto"]
    elif meeting:  # the most pruned stage that recovered (a tiny model's stages time within noise of each other)
        assert chosen is meeting[-1]
    assert any(c["pareto"] for c in stage["candidates"])
    assert stage["plot"] == "prune_search.png" and (out / "prune_search.png").stat().st_size > 1000
    names = [r["name"] for r in report["results"]]
    assert names[:2] == ["pytorch-fp32", "pytorch-pruned-distilled"]
    saved = load_model(out / "model")  # the chosen candidate, as a directory the loaders open
    assert sum(p.numel() for p in saved.module.parameters()) == chosen["parameters_after"]


@pytest.mark.parametrize("flags, message", [(["--resume"], "--prune auto runs several"), (["--distill-steps", "3"], "share a time budget")])
def test_cli_prune_auto_refuses_flags_of_a_single_distillation(tiny_bert, distill_text, tmp_path, flags, message):
    result = CliRunner().invoke(main, [str(tiny_bert), "--prune", "auto", "--distill", str(distill_text), *flags, "--out", str(tmp_path / "o"), *FAST])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_student_pruned_twice_pairs_each_layer_with_the_teacher_layer_it_was_copied_from():
    from compress.pipeline.steps.prune_search import _follow

    six = list(range(6))
    after_two = _follow(six, [{"layers_before": 6, "kept": [1, 2, 4, 5]}, {"heads_pruned": 4}])
    assert after_two == [1, 2, 4, 5]
    assert _follow(after_two, [{"layers_before": 4, "kept": [1, 2, 3]}]) == [2, 4, 5]  # not kept_layers(6, 3) = [1, 3, 5]
    assert _follow(None, [{"layers_before": 4, "kept": [0]}]) is None
