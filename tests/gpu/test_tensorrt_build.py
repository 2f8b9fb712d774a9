"""TensorRT engines built from the digits CNN's QDQ export, run, and compared with ONNX Runtime.
Runs only where tensorrt and a CUDA GPU exist (never on the machines this project is built on)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.tensorrt.available import tensorrt_missing_reason

if tensorrt_missing_reason():
    pytest.skip(tensorrt_missing_reason(), allow_module_level=True)

from compress.load.loaders import load_model  # noqa: E402
from export.onnx.session import make_session, run_session  # noqa: E402
from export.tensorrt.engine import TensorRTEngineConfig, build_engine, read_engine_metadata  # noqa: E402
from export.tensorrt.runner import EngineRunner  # noqa: E402
from tests.compress.cli.test_compress_command import FAST, invoke  # noqa: E402


@pytest.fixture(scope="module")
def qdq_dir(digits_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("trt") / "out"
    result = invoke([digits_files["pt2"], "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out,
                     "--target", "tensorrt", "--shapes", "batch=1:8:64", *FAST])
    assert result.exit_code == 0, result.output
    return out


def test_the_run_builds_an_int8_engine_with_its_target_metadata(qdq_dir):
    report = json.loads((qdq_dir / "report.json").read_text())["tensorrt"]
    assert report["built"] and (qdq_dir / report["file"]).exists()
    meta = read_engine_metadata(qdq_dir / report["file"])
    assert meta["layer_precisions"].get("INT8", 0) > 0 and meta["profiles"]["x"]["max"][0] == 64


def test_engine_answers_like_onnx_runtime(qdq_dir, digits_data):
    meta = json.loads((qdq_dir / "report.json").read_text())["tensorrt"]
    x = digits_data["x_test"][:32]
    with EngineRunner(qdq_dir / meta["file"]) as runner:
        got = runner.run({"x": x})[0]
    want = run_session(make_session(qdq_dir / "model.int8.qdq.onnx"), {"x": x})[0]
    assert got.shape == want.shape and (got.argmax(1) == want.argmax(1)).mean() > 0.95
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()


def test_timing_cache_is_written_and_reused(qdq_dir, tmp_path):
    specs = load_model(qdq_dir / "model.int8.qdq.onnx", None).inputs
    cache = tmp_path / "timing.cache"
    first = build_engine(qdq_dir / "model.int8.qdq.onnx", tmp_path, specs, TensorRTEngineConfig(timing_cache=str(cache)))
    assert cache.stat().st_size > 0
    second = build_engine(qdq_dir / "model.int8.qdq.onnx", tmp_path, specs, TensorRTEngineConfig(timing_cache=str(cache)), force=True)
    assert second["build_seconds"] <= first["build_seconds"] * 1.5


def test_version_compatible_engine_records_it(qdq_dir, tmp_path):
    specs = load_model(qdq_dir / "model.int8.qdq.onnx", None).inputs
    meta = build_engine(qdq_dir / "model.int8.qdq.onnx", tmp_path, specs, TensorRTEngineConfig(version_compatible=True))
    assert meta["version_compatible"] is True and (tmp_path / meta["file"]).exists()
