"""The pruning study's summary: points lost, agreement and speed over INT8 alone, from each run's rows."""

from bench.studies.prune_classifier import _summary


def _run(accuracy: float, agreement: float, b1: float, b16: float) -> dict:
    original = {"retention": {"accuracy": 0.80}, "latency": {"1": {"p50_ms": 10.0}, "16": {"p50_ms": 100.0}}}
    final = {"retention": {"accuracy": accuracy, "top1_agreement": agreement}, "speedup_vs_pytorch-fp32": {"1": b1, "16": b16}}
    return {"results": [original, final]}


def test_a_recipe_meets_its_targets_only_within_a_point_in_agreement_and_faster_than_int8_by_the_ratios():
    runs = {"int8": _run(0.80, 0.99, 4.0, 3.0), "good": _run(0.795, 0.96, 5.4, 4.9), "slow": _run(0.80, 0.99, 5.0, 4.9),
            "wrong": _run(0.78, 0.96, 6.0, 6.0), "flips": _run(0.80, 0.94, 6.0, 6.0)}
    summary = _summary(runs)
    assert "targets_met" not in summary["int8"] and summary["int8"]["points_lost"] == 0.0
    assert summary["good"]["over_int8_b1"] == 1.35 and summary["good"]["over_int8_b16"] == 1.63 and summary["good"]["targets_met"]
    assert summary["good"]["points_lost"] == 0.5
    assert not summary["slow"]["targets_met"]  # 1.25x INT8 alone at batch 1
    assert summary["wrong"]["points_lost"] == 2.0 and not summary["wrong"]["targets_met"]
    assert not summary["flips"]["targets_met"]  # answers changed on 6%


def test_paired_ratios_over_int8_alone_decide_the_speed_targets_where_they_were_timed():
    runs = {"int8": _run(0.80, 0.99, 4.0, 3.0), "good": _run(0.795, 0.96, 5.4, 4.9)}
    paired = {"good": {"1": {"median": 1.2}, "16": {"median": 1.7}}}  # run against run says 1.35x at b1; paired blocks 1.2x
    summary = _summary(runs, paired)
    assert summary["good"]["over_int8_b1"] == 1.35 and summary["good"]["over_int8_b1_paired"] == 1.2
    assert not summary["good"]["targets_met"]
