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
    assert len(errors) == 1 and "INT8 result outside the tolerance" in errors[0] and "--max-drop" in errors[0]
    report = json.loads((out / "report.json").read_text())
    assert report["int8"]["guard"]["escalated"] is True and report["int8"]["search"]["tried"]
    assert report["tolerance"]["met"] is False and (out / "model.int8.onnx").is_file()  # the best found is still written


def test_a_looser_max_drop_is_the_users_tolerance(digits_files, tmp_path, strict_metric):
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--metric", strict_metric, "--max-drop", "99%", "--search-budget", "20s",
                     "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["tolerance"]["tolerance"] == 0.99
