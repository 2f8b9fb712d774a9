"""The suite end to end on real models: each measurement in its own worker process."""

from __future__ import annotations

import shutil

import pytest
import torch

from bench.backends.registry import parse_backends
from bench.suite.runner import SuiteOptions, run_suite
from compress.core.errors import BenchError


def _options(backends: str, **kw) -> SuiteOptions:
    chosen, explicit = parse_backends(backends)
    defaults = dict(backends=chosen, explicit_backends=explicit, batch_sizes=(1, 4), min_seconds=0.01, threads=1, samples=64)
    return SuiteOptions(**{**defaults, **kw})


@pytest.fixture(scope="module")
def digits_suite(digits_run, digits_files):
    options = _options("torch-cpu-fp32,ort-cpu,kernels", eval=digits_files["eval"], samples=400, trust_pickle=True)
    return run_suite([digits_run.out_dir], options)


def _rows(result) -> dict:
    return {(r["artifact"], r["backend"]): r for r in result.data["jobs"][0]["results"]}


def test_run_suite_measures_every_artifact_against_the_original_when_given_an_output_dir(digits_suite, digits_run):
    job = digits_suite.data["jobs"][0]
    rows = _rows(digits_suite)
    first = job["results"][0]
    assert (first["artifact"], first["backend"], first["role"]) == ("original", "torch-cpu-fp32", "reference")
    assert {("model.onnx", "ort-cpu"), ("model.int8.onnx", "ort-cpu"), ("peer:pytorch-dynamic-int8", "torch-cpu-fp32")} <= set(rows)
    # ORT's quantize_dynamic (the peer, run with its defaults) rejects this torch.export graph's shape annotations:
    # the peer is then a listed skip with ORT's reason, not a missing row
    if ("peer:ort-quantize-dynamic", "ort-cpu") not in rows:
        reasons = {s["artifact"]: s["reason"] for s in job["skipped"]}
        assert "quantize_dynamic failed" in reasons["peer:ort-quantize-dynamic"]
    assert rows[("model.onnx", "ort-cpu")]["size_bytes"] == (digits_run.out_dir / "model.onnx").stat().st_size
    # the exported FP32 graph answers as the original does; every row scored on the same 400 held-out digits
    assert rows[("model.onnx", "ort-cpu")]["retention"]["top1_agreement"] == 1.0
    assert all(r["retention"]["samples"] == 400 for r in rows.values())
    assert first["retention"]["reference_accuracy"] > 0.9
    assert set(job["reference_drift"]) == {"1", "4"}


def test_run_suite_ratios_are_reference_p50_over_each_p50(digits_suite):
    job = digits_suite.data["jobs"][0]
    base = job["results"][0]["latency"]
    for row in job["results"]:
        for bs, lat in row["latency"].items():
            assert row["ratio_to_reference"][bs] == pytest.approx(base[bs]["p50_ms"] / lat["p50_ms"], rel=1e-3)
            assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
        assert row["memory"]["peak_rss_bytes"] >= row["memory"]["baseline_rss_bytes"] > 0


def test_run_suite_lists_backends_that_cannot_run_with_their_reason(digits_suite):
    skipped = {s["backend"]: s["reason"] for s in digits_suite.data["jobs"][0]["skipped"]}
    from compress.ops import kernels as ops

    if ops.status().backend == "extension":  # available, but no artifact of this job needs it
        assert "no artifact here calls torch.ops.compress" in skipped["torch-kernels"]
    else:
        assert "kernels are not loaded" in skipped["torch-kernels"]
    assert digits_suite.impossible == []


def test_run_suite_records_the_environment(digits_suite):
    env = digits_suite.data["environment"]
    assert env["cpu"]["model"] and env["threads"] == 1 and env["versions"]["torch"] == torch.__version__
    assert digits_suite.data["target"].endswith("/1t")


def test_run_suite_refuses_a_pickled_original_without_trust(digits_run):
    with pytest.raises(BenchError, match="--trust-pickle"):
        run_suite([digits_run.out_dir], _options("ort-cpu"))


def test_run_suite_records_a_failing_artifact_and_measures_the_rest(digits_run, digits_files, tmp_path):
    broken = tmp_path / "out"
    shutil.copytree(digits_run.out_dir, broken)
    (broken / "model.int8.onnx").write_bytes(b"not an onnx file")
    result = run_suite([broken], _options("torch-cpu-fp32,ort-cpu", eval=digits_files["eval"], trust_pickle=True, peers=False, batch_sizes=(1,)))
    assert any("model.int8.onnx on ort-cpu" in f for f in result.failures)
    assert ("model.onnx", "ort-cpu") in _rows(result)
    assert any(s["artifact"] == "model.int8.onnx" and s["reason"].startswith("failed:") for s in result.data["jobs"][0]["skipped"])


def test_run_suite_measures_an_onnx_file_against_itself_with_the_ort_peer(digits_onnx):
    result = run_suite([digits_onnx], _options("ort-cpu", batch_sizes=(2,), samples=32))
    rows = _rows(result)
    assert list(rows)[0] == ("original", "ort-cpu")
    assert rows[("peer:ort-quantize-dynamic", "ort-cpu")]["precision"] == "int8"
    assert result.impossible == [] and result.failures == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="the test needs a machine without CUDA")
def test_run_suite_errors_when_no_backend_asked_for_can_run(digits_onnx):
    with pytest.raises(BenchError, match="none of the backends asked for can run here"):
        run_suite([digits_onnx], _options("torch-cuda-fp16,torch-cuda-bf16"))


def test_run_suite_errors_on_a_path_with_nothing_measurable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BenchError, match="nothing measurable"):
        run_suite([tmp_path / "notes.txt"], _options("ort-cpu"))
    with pytest.raises(BenchError, match="does not exist"):
        run_suite([tmp_path / "missing.onnx"], _options("ort-cpu"))


def test_run_suite_builds_the_transformer_peers_from_the_original(minilm_path):
    result = run_suite([minilm_path], _options("torch-cpu-fp32,ort-cpu", batch_sizes=(1,), samples=8, seq_len=32))
    rows = _rows(result)
    assert rows[("peer:onnx-fp32", "ort-cpu")]["retention"]["mean_cosine"] > 0.9999
    dynamic = rows[("peer:pytorch-dynamic-int8", "torch-cpu-fp32")]
    assert dynamic["precision"] == "int8" and 0.8 < dynamic["retention"]["mean_cosine"] < 0.9999
    assert dynamic["size_bytes"] < rows[("original", "torch-cpu-fp32")]["size_bytes"] / 1.4


def test_run_suite_builds_the_quantize_static_peer_from_calibration_data(digits_onnx, digits_files):
    result = run_suite([digits_onnx], _options("ort-cpu", batch_sizes=(2,), samples=64, eval=digits_files["eval"], calib=digits_files["calib"]))
    static = _rows(result)[("peer:ort-quantize-static", "ort-cpu")]
    assert static["precision"] == "int8" and static["retention"]["top1_agreement"] > 0.9  # ORT's defaults work on a small CNN
    without = run_suite([digits_onnx], _options("ort-cpu", batch_sizes=(2,), samples=32))
    reasons = {s["artifact"]: s["reason"] for s in without.data["jobs"][0]["skipped"]}
    assert "no calibration data" in reasons["peer:ort-quantize-static"]


def test_run_suite_takes_the_calibration_file_compress_recorded(digits_run):
    from bench.suite.artifacts import discover

    assert discover(digits_run.out_dir).calib_file is not None
