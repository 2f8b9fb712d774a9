"""Static INT8, the accuracy-aware search and the TensorRT QDQ file, through the ``compress`` command;
the choice between graph variants, through the Python API."""

import json
from collections import Counter

import numpy as np
import onnx
import pytest
import torch

from compress.cli.parse import parse_duration, parse_fraction
from compress.core.errors import ConfigError
from compress.pipeline.options import RunOptions
from compress.pipeline.run import run
from compress.pipeline.static_int8.config import Int8StaticConfig
from export.onnx.export import OnnxExportConfig
from export.tensorrt.qdq_check import check_tensorrt_qdq
from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


def _base(digits_files, out):
    return [digits_files["pt2"], "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST]


def test_cli_static_tensorrt_writes_both_files_and_keeps_accuracy(digits_files, tmp_path):
    out = tmp_path / "out"
    result = invoke([*_base(digits_files, out), "--target", "tensorrt", "--calib-method", "percentile"])
    assert result.exit_code == 0, result.output
    assert check_tensorrt_qdq(onnx.load(str(out / "model.int8.qdq.onnx"))) == []
    report = json.loads((out / "report.json").read_text())
    rows = {r["name"]: r for r in report["results"]}
    fp32 = rows["pytorch-fp32"]["retention"]["accuracy"]
    assert rows["onnx-int8"]["retention"]["accuracy"] >= fp32 - 0.02
    assert rows["onnx-int8-qdq"]["retention"]["accuracy"] >= fp32 - 0.02
    ops = {n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert ops & {"QLinearConv", "MatMulIntegerToFloat", "ConvInteger", "QLinearMatMul"}, ops  # integer operators
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"][1]["type"] == "Int8StaticConfig" and manifest["recipe"][1]["data"]["method"] == "percentile"
    assert manifest["recipe"][2]["type"] == "TensorRTEngineConfig"
    from export.tensorrt.available import tensorrt_missing_reason

    if tensorrt_missing_reason() is None:  # built here: the engine and its target metadata are in the output
        assert report["tensorrt"]["built"] and (out / report["tensorrt"]["file"]).exists()
    else:  # not here: says what is missing and how to build it where it will run
        assert report["tensorrt"] == {"built": False, "reason": tensorrt_missing_reason(),
                                      "build_on_target": "compress build-engine model.int8.qdq.onnx"}
        assert not list(out.glob("*.plan"))


def test_cli_max_drop_search_reports_every_point_and_the_pareto_front(digits_files, tmp_path):
    out = tmp_path / "out"
    result = invoke([*_base(digits_files, out), "--max-drop", "2%", "--search-budget", "3m"])
    assert result.exit_code == 0, result.output
    search = json.loads((out / "report.json").read_text())["int8"]["search"]
    assert search["metric"] == "accuracy" and len(search["tried"]) >= 3
    assert any(p["pareto"] for p in search["tried"])
    assert all({"latency_p50_ms", "drop", "meets_tolerance", "pareto"} <= set(p) for p in search["tried"])
    assert search["chosen"]["drop"] <= 0.02


def test_cli_exits_3_and_keeps_the_best_when_no_configuration_meets_the_tolerance(digits_files, tmp_path):
    out = tmp_path / "out"
    result = invoke([*_base(digits_files, out), "--task", "generic", "--max-drop", "0%", "--search-budget", "2m"])
    assert result.exit_code == 3, result.output
    assert "no INT8 configuration met --max-drop 0%" in result.stderr
    assert (out / "model.int8.onnx").is_file()
    search = json.loads((out / "report.json").read_text())["int8"]["search"]
    assert search["chosen"]["meets_tolerance"] is False
    assert search["chosen"]["drop"] == min(p["drop"] for p in search["tried"])


@pytest.mark.parametrize("case", ["empty", "shape", "dtype", "nan"])
def test_cli_static_names_the_calibration_file_and_first_bad_record(case, digits_files, digits_data, tmp_path):
    x = digits_data["x_train"][:8].copy()
    bad = {"empty": x[:0], "shape": x[:, :, :4], "dtype": x.astype(np.int32), "nan": x}[case]
    if case == "nan":
        bad[3, 0, 2, 2] = np.inf
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=bad)
    out = tmp_path / "out"
    result = invoke([digits_files["pt2"], "--calib", calib, "--out", out, "--int8-mode", "static", *FAST])
    assert_one_line_error(result, "calib.npz")
    if case != "empty":
        assert "record 0" in result.stderr or "record 3" in result.stderr
    assert not out.exists()


def test_cli_tensorrt_target_converts_an_old_opset_graph_before_quantizing(digits_cnn, digits_data, digits_files, tmp_path):
    """An opset-11 graph used to be refused for TensorRT (per-channel QDQ needs 13); it is now
    converted once on load (issue 16, item 5), and the QDQ file passes the TensorRT checks."""
    path = tmp_path / "digits_opset11.onnx"
    torch.onnx.export(digits_cnn, (torch.from_numpy(digits_data["x_test"][:2]),), str(path), opset_version=11,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    out = tmp_path / "out"
    result = invoke([path, "--target", "tensorrt", "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["export"]["normalized"]["opset"] == [11, 13]
    assert (out / "model.int8.qdq.onnx").is_file()


def test_parse_fraction_and_duration_accept_the_documented_forms():
    assert parse_fraction("0.2%") == pytest.approx(0.002) and parse_fraction("0.002") == 0.002
    assert parse_duration("10m") == 600 and parse_duration("90s") == 90 and parse_duration("1h") == 3600
    for bad in ("-1%", "abc"):
        with pytest.raises(ConfigError):
            parse_fraction(bad)
    with pytest.raises(ConfigError, match="search-budget"):
        parse_duration("soon")


CONV_OUTPUTS = "Conv outputs quantized"


def _float_convs_cost_time(path, inputs, threads, disabled):
    """The variant trial's timing, made deterministic: 1 ms for each Conv left in float."""
    return 1.0 + sum(n.op_type in ("Conv", "FusedConv") for n in onnx.load(str(path)).graph.node)


def _static_int8_run(model, digits_files, out, monkeypatch, **options):
    monkeypatch.setattr("compress.pipeline.fastest_variant.trial_p50", _float_convs_cost_time)
    run_options = RunOptions(out_dir=out, calib=digits_files["calib"], eval=digits_files["eval"], batch_sizes=(1, 4),
                             min_seconds=0.05, threads=1, **options)
    return run(model, [OnnxExportConfig(), Int8StaticConfig(smoothquant_alpha=None)], run_options).report


def test_a_depthwise_cnn_keeps_the_conv_output_variant_where_it_is_faster_and_accurate(depthwise_digits, digits_files, tmp_path,
                                                                                        monkeypatch):
    report = _static_int8_run(depthwise_digits, digits_files, tmp_path / "out", monkeypatch)
    int8 = report["int8"]
    assert set(int8["variant_trial_p50_ms"]) == {"plain", CONV_OUTPUTS}  # no LayerNorm: no SkipLayerNorm variant
    assert int8["variant"] == CONV_OUTPUTS and int8["guard"]["escalated"] is False
    assert int8["variant_validation_drop"][CONV_OUTPUTS] <= int8["guard"]["tolerance"]
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "out" / "model.int8.onnx")).graph.node)
    assert ops["QLinearConv"] == 5 and ops["Conv"] == ops["FusedConv"] == 0, ops
    rows = {r["name"]: r for r in report["results"]}
    assert rows["onnx-int8"]["retention"]["accuracy"] >= rows["onnx-fp32"]["retention"]["accuracy"] - 0.02


def unchanged_logits(reference, outputs, labels):
    """A metric no INT8 file meets: 1 - 100x the mean relative change of the logits."""
    return 1.0 - 100 * float(np.abs(outputs - reference).mean() / np.abs(reference).mean())


def test_a_faster_conv_output_variant_that_costs_accuracy_is_not_kept(depthwise_digits, digits_files, tmp_path, monkeypatch):
    report = _static_int8_run(depthwise_digits, digits_files, tmp_path / "out", monkeypatch, metric=unchanged_logits, search_budget=1.0)
    int8 = report["int8"]
    drops, times = int8["variant_validation_drop"], int8["variant_trial_p50_ms"]
    assert drops[CONV_OUTPUTS] > drops["plain"] > int8["guard"]["tolerance"]  # both miss; quantizing outputs loses more
    assert times[CONV_OUTPUTS] < times["plain"] and int8["variant"] == "plain"
