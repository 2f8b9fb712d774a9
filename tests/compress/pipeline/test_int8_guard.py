"""The accuracy guard (issue 16, item 3): every INT8 run is judged in its task metric on held-out
data; a default configuration that misses escalates to the search, and a result still outside
the tolerance is a warning, a report section and exit code 3, never a silent success."""

from __future__ import annotations

import json

import pytest

from tests.compress.cli.test_compress_command import FAST, invoke


@pytest.fixture
def strict_metric(tmp_path, monkeypatch):
    """A metric no INT8 model can meet: 1 - 100x the mean relative change of the logits, in points."""
    (tmp_path / "strict_metrics.py").write_text(
        "import numpy as np\n"
        "def unchanged_logits(reference, outputs, labels):\n"
        "    return 1.0 - 100 * float(np.abs(outputs - reference).mean() / np.abs(reference).mean())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "strict_metrics:unchanged_logits"


def test_a_default_int8_within_tolerance_passes_the_guard_without_searching(digits_files, tmp_path):
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    guard = report["int8"]["guard"]
    assert guard["metric"] == "accuracy" and guard["tolerance"] == 0.01 and guard["escalated"] is False
    assert report["tolerance"]["met"] is True and report["tolerance"]["rows"]["onnx-int8"]["against"] == "onnx-fp32"


def test_a_miss_escalates_to_the_search_and_then_exits_3_with_one_warning(digits_files, tmp_path, strict_metric):
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--metric", strict_metric, "--search-budget", "20s", "--calib", digits_files["calib"],
                     "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 3, result.output
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning:") and "tolerance" in ln]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(warnings) == 1 and "outside the tolerance of 1.00 points" in warnings[0] and "onnx-int8" in warnings[0]
    assert len(errors) == 1 and "result outside the tolerance" in errors[0] and "--max-drop" in errors[0]
    report = json.loads((out / "report.json").read_text())
    assert report["int8"]["guard"]["escalated"] is True and report["int8"]["search"]["tried"]
    assert report["tolerance"]["met"] is False and (out / "model.int8.onnx").is_file()  # the best found is still written


def test_a_looser_max_drop_is_the_users_tolerance(digits_files, tmp_path, strict_metric):
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--metric", strict_metric, "--max-drop", "99%", "--search-budget", "20s",
                     "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["tolerance"]["tolerance"] == 0.99


def test_sensitivity_ranks_the_nodes_of_an_onnx_input_and_the_manifest_says_what_stayed_float(digits_onnx, digits_files, tmp_path,
                                                                                               strict_metric):
    """Item 4: any graph, ONNX included, is ranked node group by node group on the task metric;
    the float nodes the guard chose are in report.json and manifest.json with their scores."""
    out = tmp_path / "out"
    result = invoke([digits_onnx, "--metric", strict_metric, "--search-budget", "90s", "--calib", digits_files["calib"],
                     "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 3, result.output  # nothing meets the strict metric: the search ends with its best
    report = json.loads((out / "report.json").read_text())
    ranking = report["int8"]["search"]["sensitivity"]
    assert len(ranking) >= 3 and {op for r in ranking for op in r["ops"]} >= {"Conv", "Gemm"}
    keys = [(-r["drop_when_quantized_alone"], -r["output_error_when_quantized_alone"]) for r in ranking]
    assert keys == sorted(keys) and all(r["output_error_when_quantized_alone"] > 0 for r in ranking)
    decisions = json.loads((out / "manifest.json").read_text())["int8"]
    assert decisions["decided_by"] == "the accuracy guard's search" and decisions["tolerance_met_on_validation"] is False
    chosen = report["int8"]["search"]["chosen"]["float_layers"]
    assert decisions["float_layers"] == chosen and set(decisions["why_float"]) == set(chosen)
    if chosen:  # the float groups are the top of the ranking
        assert set(chosen) == {r["layer"] for r in ranking[: len(chosen)]}


def test_the_manifest_says_the_recipe_decided_when_the_guard_did_not_escalate(digits_files, tmp_path):
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 0, result.output
    decisions = json.loads((out / "manifest.json").read_text())["int8"]
    assert decisions["decided_by"] == "the recipe" and decisions["float_layers"] == [] and decisions["tolerance_met_on_validation"] is True
