"""compress build-engine and --shapes: the checks that run without TensorRT."""

from __future__ import annotations

import pytest

from export.tensorrt.available import tensorrt_missing_reason
from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


@pytest.mark.skipif(tensorrt_missing_reason() is None, reason="TensorRT and a GPU are present: tests/gpu builds for real")
def test_build_engine_without_tensorrt_says_what_is_missing_and_writes_nothing(digits_onnx, tmp_path):
    result = invoke(["build-engine", digits_onnx, "--out", tmp_path])
    assert_one_line_error(result, "tensorrt is not installed")
    assert list(tmp_path.iterdir()) == []


def test_build_engine_refuses_a_file_that_is_not_onnx(digits_files, tmp_path):
    assert_one_line_error(invoke(["build-engine", digits_files["pt2"]]), "is not an ONNX file")


def test_shapes_without_the_tensorrt_target_is_refused(digits_files, tmp_path):
    result = invoke([digits_files["pt2"], "--out", tmp_path / "o", "--shapes", "batch=1:8:32", *FAST])
    assert_one_line_error(result, "--shapes sets the TensorRT engine's optimization profile; it needs --int8 --target tensorrt")
    assert not (tmp_path / "o").exists()


def test_a_bad_profile_fails_before_any_work(digits_files, tmp_path):
    result = invoke([digits_files["pt2"], "--out", tmp_path / "o", "--target", "tensorrt", "--shapes", "batch=9:4:1", *FAST])
    assert_one_line_error(result, "needs 1 <= MIN <= OPT <= MAX")
    assert not (tmp_path / "o").exists()
