"""Data files that are valid but not in the model's dtypes, and an --eval too small to split: they
work (cast to the input spec; split within a batch) instead of ending in a traceback (issue 15, case 4)."""

from __future__ import annotations

import json

import numpy as np

from compress.load.data import Dataset, load_data_file, split_off
from compress.load.loaders import load_model
from tests.compress.cli.test_compress_command import FAST, invoke


def test_npz_data_in_wider_dtypes_is_cast_to_the_input_spec(digits_files, digits_data, tmp_path):
    model = load_model(digits_files["pt2"])
    path = tmp_path / "float64.npz"
    np.savez(path, x=digits_data["x_train"][:40].astype(np.float64))
    data = load_data_file(path, model, batch_size=16, seq_len=8)
    assert {b["x"].dtype for b in data.batches} == {np.dtype(np.float32)} and data.num_samples == 40


def test_a_float64_calibration_file_runs_static_int8(digits_files, digits_data, tmp_path):
    calib = tmp_path / "calib64.npz"
    np.savez(calib, x=digits_data["x_train"][:64].astype(np.float64))
    result = invoke([digits_files["pt2"], "--int8-mode", "static", "--calib", calib, "--eval", digits_files["eval"],
                     "--out", tmp_path / "out", *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["int8"]["mode"] == "static"


def test_split_off_cuts_inside_a_batch_and_keeps_labels_aligned():
    data = Dataset([{"x": np.arange(10)[:, None]}], np.arange(10), "ten")
    head, rest = split_off(data, 3)
    assert [b["x"][:, 0].tolist() for b in head.batches] == [[0, 1, 2]] and head.labels.tolist() == [0, 1, 2]
    assert [b["x"][:, 0].tolist() for b in rest.batches] == [[3, 4, 5, 6, 7, 8, 9]] and rest.labels.tolist() == list(range(3, 10))


def test_keep_float_with_an_eval_file_of_one_batch_runs(digits_files, digits_data, tmp_path):
    small = tmp_path / "eval12.npz"
    np.savez(small, x=digits_data["x_test"][:12], labels=digits_data["y_test"][:12])  # fits in one batch of 16
    result = invoke([digits_files["pt2"], "--keep-float", "1", "--calib", digits_files["calib"], "--eval", small,
                     "--out", tmp_path / "out", *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "first 3 for validation" in report["data"]["validation"] and report["int8"]["sensitivity"]


def test_inputs_too_large_for_memory_are_refused_with_the_figure(digits_files, tmp_path):
    from tests.compress.cli.test_compress_command import assert_one_line_error

    result = invoke([digits_files["torchscript"], "--input", "x:1x1x100000x100000:float32", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "x:2x1x100000x100000", "GiB", "smaller --input")
    assert not (tmp_path / "out").exists()


def test_a_batch_too_large_for_memory_is_refused_before_tokenizing(minilm_path, tmp_path):
    from tests.compress.cli.test_compress_command import assert_one_line_error

    result = invoke([minilm_path, "--no-int8", "--batch", "1,100000", "--out", tmp_path / "out", "--threads", "1", "--quiet"])
    assert_one_line_error(result, "--batch 100000", "GiB", "largest activation", "smaller --batch")
    assert not (tmp_path / "out").exists()
