"""The GPU check's dry run: on a machine without a GPU every step that can run here runs, the GPU
ones are recorded as skipped with their reason, and the JSON and the log are written."""

from __future__ import annotations

import json
import time

import pytest
import torch

from bench.gpu_check import steps
from bench.gpu_check.__main__ import LOG_NAME, RESULT_NAME, main

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: run the real check, not its dry run")


def test_the_dry_run_runs_what_can_run_here_and_skips_the_gpu_steps_with_reasons(tmp_path):
    code = main(["--out", str(tmp_path), "--quick", "--steps", "environment,build_kernels,gpu_tests,kernel_bench,aoti,sanitizer"])
    result = json.loads((tmp_path / RESULT_NAME).read_text())
    assert code == 0 and result["dry_run"] and result["failed"] == []
    s = result["steps"]
    assert s["environment"]["status"] == "ok" and s["environment"]["environment"]["isa"]
    assert s["build_kernels"]["status"] == "ok" and s["build_kernels"]["backend"] == "extension"
    # tests/gpu ran under pytest: the GPU tests skipped, each with the reason it gives, and none failed
    gpu = s["gpu_tests"]
    assert gpu["status"] == "ok" and gpu["tests"] > 0 and gpu["skipped"] > 0 and gpu["failures"] == gpu["errors"] == 0
    assert any("CUDA" in r or "GPU" in r or "tensorrt" in r.lower() for r in s["gpu_tests"]["skip_reasons"])
    assert s["kernel_bench"] == {**s["kernel_bench"], "status": "skipped", "reason": "no CUDA device: the CUDA kernel benchmark needs one"}
    assert s["sanitizer"]["status"] == "skipped"
    assert s["aoti"]["status"] == "skipped" and "the CUDA AOTInductor package needs one" in s["aoti"]["reason"]
    assert "===== gpu_tests" in (tmp_path / LOG_NAME).read_text()


def test_steps_past_the_time_limit_are_skipped_and_a_failing_step_fails_the_check(tmp_path, monkeypatch):
    def slow(ctx):
        time.sleep(1.2)
        return {"status": "ok"}

    def broken(ctx):
        raise RuntimeError("the GPU fell off the bus")

    monkeypatch.setattr(steps, "STEPS", {"slow": slow, "broken": broken, "late": slow})
    monkeypatch.setattr("bench.gpu_check.__main__.STEPS", steps.STEPS)
    code = main(["--out", str(tmp_path), "--time-limit", "1", "--steps", "slow,late"])
    result = json.loads((tmp_path / RESULT_NAME).read_text())
    assert code == 0 and result["steps"]["slow"]["status"] == "ok"
    assert result["steps"]["late"] == {**result["steps"]["late"], "status": "skipped"} and "time limit" in result["steps"]["late"]["reason"]
    assert main(["--out", str(tmp_path), "--steps", "broken"]) == 1
    assert json.loads((tmp_path / RESULT_NAME).read_text())["steps"]["broken"]["reason"] == "RuntimeError: the GPU fell off the bus"


def test_unknown_steps_are_refused_with_the_list(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--steps", "warp-drive"])
    assert "unknown step(s) warp-drive; choose from environment" in capsys.readouterr().err
