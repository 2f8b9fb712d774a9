"""``--metric``: the task metric a run reports and searches with (issue 16, item 2)."""

from __future__ import annotations

import json

import numpy as np

from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


def test_a_chosen_metric_is_in_every_row_and_the_table(digits_files, tmp_path):
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--metric", "top5", "--calib", digits_files["calib"], "--eval", digits_files["eval"],
                     "--out", out, *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    task = {r["name"]: r["retention"]["task"] for r in report["results"]}
    assert task["onnx-int8"]["name"] == "top5" and task["onnx-int8"]["reference_value"] == 1.0
    assert 0.9 <= task["onnx-int8"]["value"] <= 1.0 and task["onnx-int8"]["drop"] == round(1.0 - task["onnx-int8"]["value"], 6)
    assert "top5 " in result.stdout and report["settings"]["metric"] == "top5"


def test_the_search_uses_the_users_own_metric(digits_files, tmp_path, monkeypatch):
    (tmp_path / "digit_metrics.py").write_text(
        "import numpy as np\n"
        "def even_odd_agreement(reference, outputs, labels):\n"
        "    return float(((reference.argmax(1) % 2) == (outputs.argmax(1) % 2)).mean())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--metric", "digit_metrics:even_odd_agreement", "--max-drop", "2%", "--search-budget", "60s",
                     "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code in (0, 3), result.output
    search = json.loads((out / "report.json").read_text())["int8"]["search"]
    assert search["metric"] == "digit_metrics:even_odd_agreement" and search["reference_score"] == 1.0


def test_a_metric_that_needs_labels_without_them_is_refused_before_any_work(digits_files, digits_data, tmp_path):
    unlabeled = tmp_path / "eval.npz"
    np.savez(unlabeled, x=digits_data["x_test"][:32])
    result = invoke([digits_files["pt2"], "--metric", "accuracy", "--eval", unlabeled, "--no-int8", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "accuracy metric needs labels")
    assert not (tmp_path / "out").exists()
