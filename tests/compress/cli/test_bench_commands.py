"""`compress bench run|compare|merge` from the command line, on real models and real measurements."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from compress.cli.main import main


class SlowerDigits(torch.nn.Module):
    """A deliberately slower artifact: the same CNN run on 8 slightly shifted copies of the input,
    averaged. Answers as the original does (to ~1e-6) and does 8x the work; no graph optimizer
    can merge the copies, because their inputs differ."""

    def __init__(self, cnn, copies: int = 8):
        super().__init__()
        self.cnn, self.copies = cnn, copies

    def forward(self, x):
        return sum(self.cnn(x + 1e-7 * i) for i in range(self.copies)) / self.copies


def _bench(*args) -> object:
    return CliRunner().invoke(main, ["bench", *map(str, args)], catch_exceptions=False)


def _run_args(path, digits_files, json_out, *extra):
    return ["run", path, "--trust-pickle", "--backends", "torch-cpu-fp32,ort-cpu", "--no-peers", "--batch", "256",
            "--min-seconds", "0.5", "--threads", "1", "--eval", digits_files["eval"], "--samples", "200", "--quiet",
            "--json", json_out, *extra]


@pytest.fixture(scope="module")
def baseline(digits_run, digits_files, tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_cli")
    result = _bench(*_run_args(digits_run.out_dir, digits_files, d / "base.json", "--markdown", d / "base.md", "--plots", d / "plots"))
    assert result.exit_code == 0, result.output
    return d


def test_bench_run_writes_json_markdown_and_plots(baseline):
    data = json.loads((baseline / "base.json").read_text())
    assert data["schema"] == "compress.bench/1" and len(data["runs"]) == 1
    names = {r["artifact"] for r in data["runs"][0]["jobs"][0]["results"]}
    assert {"original", "model.onnx", "model.int8.onnx"} <= names
    assert "model.int8.onnx" in (baseline / "base.md").read_text()
    pngs = sorted((baseline / "plots").glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_bench_run_refuses_to_replace_results_without_force(baseline, digits_run, digits_files):
    result = _bench(*_run_args(digits_run.out_dir, digits_files, baseline / "base.json"))
    assert result.exit_code == 1 and "already exists; pass --force" in result.output


def test_bench_compare_passes_an_unchanged_artifact_and_fails_a_deliberately_slower_one(baseline, digits_run, digits_files, digits_cnn, digits_spec, tmp_path):
    from compress.core.model import Model
    from export.onnx.export import OnnxExportConfig, export_onnx

    # unchanged: measured again, compared with a generous threshold: sub-millisecond timings on a shared 2-core machine move by up to 50% between runs
    again = _bench(*_run_args(digits_run.out_dir, digits_files, tmp_path / "again.json"))
    assert again.exit_code == 0, again.output
    same = _bench("compare", tmp_path / "again.json", baseline / "base.json", "--max-latency-regression", "100%")
    assert same.exit_code == 0, same.output

    # slower: the same directory (same job name) with model.onnx replaced by the 8x-work model
    slow_dir = tmp_path / "slow" / digits_run.out_dir.name
    shutil.copytree(digits_run.out_dir, slow_dir)
    slow = Model(SlowerDigits(digits_cnn).eval(), digits_spec, "classification", tmp_path / "slow.pt", "pytorch")
    export_onnx(slow, {"x": digits_files_x(digits_files)}, slow_dir / "model.onnx", OnnxExportConfig())
    assert _bench(*_run_args(slow_dir, digits_files, tmp_path / "slow.json")).exit_code == 0
    gate = _bench("compare", tmp_path / "slow.json", baseline / "base.json", "--max-latency-regression", "100%")
    assert gate.exit_code == 4, gate.output
    regressed = [line for line in gate.output.splitlines() if line.endswith("REGRESSED")]
    assert regressed and all("model.onnx" in line for line in regressed)


def digits_files_x(digits_files):
    import numpy as np

    with np.load(digits_files["eval"]) as data:
        return data["x"][:2]


def test_bench_compare_rejects_a_corrupt_results_file_in_one_line(baseline, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "compress.bench/1", "runs": [')
    result = _bench("compare", bad, baseline / "base.json")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1 and "not valid JSON" in result.output
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "compress.bench/0", "runs": []}))
    result = _bench("compare", other, baseline / "base.json")
    assert result.exit_code == 1 and "schema 'compress.bench/0'" in result.output


def test_bench_run_exits_non_zero_when_an_asked_for_backend_cannot_run(digits_onnx, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    result = _bench("run", digits_onnx, "--backends", "ort-cpu,torch-cuda-fp16", "--batch", "2", "--min-seconds", "0.01",
                    "--samples", "16", "--quiet", "--json", tmp_path / "r.json")
    assert result.exit_code == 1 and "torch-cuda-fp16" in result.output and "no CUDA device" in result.output
    assert (tmp_path / "r.json").exists()  # what could run was measured and written


def test_bench_merge_keys_runs_by_target(baseline, digits_run, digits_files, tmp_path):
    # a second target: the same machine at two threads is a different target (and a real measurement)
    two = _bench(*_run_args(digits_run.out_dir, digits_files, tmp_path / "two.json")[:-2], "--threads", "2", "--json", tmp_path / "two.json")
    assert two.exit_code == 0, two.output
    merged = _bench("merge", baseline / "base.json", tmp_path / "two.json", "-o", tmp_path / "all.json")
    assert merged.exit_code == 0, merged.output
    targets = [r["target"] for r in json.loads((tmp_path / "all.json").read_text())["runs"]]
    assert len(targets) == 2 and targets[0].endswith("/1t") and targets[1].endswith("/2t")
    assert targets[0] in merged.output and targets[1] in merged.output
    dup = _bench("merge", baseline / "base.json", baseline / "base.json", "-o", tmp_path / "dup.json")
    assert dup.exit_code == 1 and "merge one run per target" in dup.output


def test_bench_run_scores_every_row_in_the_chosen_task_metric(digits_run, digits_files, tmp_path):
    """The suite scores with the metric `compress --metric` takes (issue 16, item 2)."""
    result = _bench(*_run_args(digits_run.out_dir, digits_files, tmp_path / "top5.json", "--metric", "top5"))
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "top5.json").read_text())["runs"][0]["jobs"][0]["results"]
    scored = [r["retention"]["task"] for r in rows if r["retention"]]
    assert scored and all(t["name"] == "top5" and 0.9 <= t["value"] <= 1.0 for t in scored)
    assert "top5 " in result.output
