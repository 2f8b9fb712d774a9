"""Errors that used to name the wrong thing or nothing (issue 15, case 8): each now names what was
given, what was expected and the fix, in one line. The hostile pickle under --trust-pickle is in
test_hostile_files.py, the signal message without a checkpoint in test_signals.py."""

from __future__ import annotations

import os

from click.testing import CliRunner

from compress.cli.main import main
from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


def test_a_wrong_shape_for_torchscript_names_the_input_the_shape_and_the_cause(digits_files, tmp_path):
    result = invoke([digits_files["torchscript"], "--input", "x:1x3x8x8:float32", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "rejected x of shape [2, 3, 8, 8] float32", "expected input[2, 3, 8, 8] to have 1 channels",
                          "fix --input")
    assert "TorchScript interpreter" not in result.stderr


def test_a_directory_given_as_data_is_named_as_a_directory_before_any_work(digits_files, tmp_path):
    data_dir = tmp_path / "calib"
    data_dir.mkdir()
    for flag in ("--calib", "--eval"):
        result = invoke([digits_files["pt2"], flag, data_dir, "--int8-mode", "static", "--out", tmp_path / "out", *FAST])
        assert_one_line_error(result, f"{flag} {data_dir} is a directory", "give one file")
    assert sorted(os.listdir(tmp_path)) == ["calib"]


def test_build_engine_on_a_missing_file_says_it_does_not_exist(tmp_path):
    result = CliRunner().invoke(main, ["build-engine", str(tmp_path / "model.int8.qdq.onnx")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "does not exist" in result.stderr and "not an ONNX file" not in result.stderr


def test_an_unforeseen_runtime_failure_is_one_line_with_exit_70_and_nothing_written(digits_files, tmp_path, monkeypatch):
    """A runtime raising what no check foresaw (here ONNX Runtime during the INT8 step) is not a traceback."""
    import compress.pipeline.steps.onnx_static_int8 as step

    def broken(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running QLinearAdd node\nmore detail")

    monkeypatch.setattr(step, "_build", broken)
    out = tmp_path / "out"
    result = invoke([digits_files["torchscript"], "--input", "x:1x1x8x8:float32", "--calib", digits_files["calib"], "--out", out, *FAST])
    assert result.exit_code == 70, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unexpected RuntimeError: [ONNXRuntimeError]") and "--debug" in lines[0]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
