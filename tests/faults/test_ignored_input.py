"""Input that used to be accepted and then ignored without a word (issue 15, case 7): each is now
used, refused in one line, or reported as a warning on stderr and in report.json."""

from __future__ import annotations

import json
import os

import numpy as np

from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


def test_int8_flags_with_no_int8_are_refused(digits_files, tmp_path):
    result = invoke([digits_files["pt2"], "--no-int8", "--int8-mode", "static", "--keep-float", "1", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "--int8-mode, --keep-float configure INT8, which --no-int8 turns off")
    assert os.listdir(tmp_path) == []


def test_calibration_data_that_no_step_reads_is_refused(digits_files, tmp_path):
    result = invoke([digits_files["pt2"], "--no-int8", "--calib", digits_files["calib"], "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "--calib", "would not be used", "drop --calib")
    assert os.listdir(tmp_path) == []


def test_calibration_data_with_explicit_dynamic_int8_is_refused(minilm_path, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text("one sentence to calibrate on\nand another one\n")
    result = invoke([minilm_path, "--int8-mode", "dynamic", "--calib", calib, "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "would not be used", "dynamic INT8", "--int8-mode static")
    assert sorted(os.listdir(tmp_path)) == ["calib.txt"]


def test_calibration_data_for_a_text_model_in_auto_mode_means_static_int8(minilm_path, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text("one sentence to calibrate on\n")
    result = invoke([minilm_path, "--calib", calib, "--print-recipe", "--quiet"])
    assert result.exit_code == 0, result.output
    int8 = json.loads(result.stdout)[-1]
    assert int8["type"] == "Int8StaticConfig" and int8["data"]["smoothquant_alpha"] == 0.85
    without = invoke([minilm_path, "--print-recipe", "--quiet"])
    assert json.loads(without.stdout)[-1]["type"] == "OnnxInt8Config"  # no data: dynamic, as before


def test_an_input_spec_without_dtype_says_float32_is_assumed(digits_files, tmp_path):
    result = invoke([digits_files["torchscript"], "--input", "x:1x1x8x8", "--no-int8", "--out", tmp_path / "out", *FAST])
    assert result.exit_code == 0, result.output
    assert "warning: --input x gives no dtype, so float32 is assumed; write it as x:batchx1x8x8:float32" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert any("float32 is assumed" in w for w in report["warnings"])


def test_calibration_data_for_an_onnx_transformer_in_auto_mode_is_reported_unused(minilm_run, minilm_model, tmp_path):
    from compress.load.data import tokenize
    from compress.load.text_corpus import evaluation_texts

    calib, held_out = tmp_path / "calib.npz", tmp_path / "eval.npz"
    np.savez(calib, **tokenize(minilm_model, ["a sentence", "another sentence"], seq_len=128))
    np.savez(held_out, **tokenize(minilm_model, list(evaluation_texts()[:96]), seq_len=128))  # real text: the ONNX file has no tokenizer
    result = invoke([minilm_run.out_dir / "model.onnx", "--task", "embedding", "--calib", calib, "--eval", held_out, "--out", tmp_path / "out",
                     "--batch", "1", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: --calib" in result.stderr and "was not used" in result.stderr and "--int8-mode static" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["int8"]["mode"] == "dynamic" and "not used" in report["data"]["calibration"]
    assert any("was not used" in w for w in report["warnings"])
