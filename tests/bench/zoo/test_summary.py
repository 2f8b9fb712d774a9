"""The zoo's verdicts, on made-up rows: each target can fail."""

from bench.zoo.summary import verdict


def _row(artifact, drop, p50, backend="ort-cpu"):
    return {"artifact": artifact, "backend": backend, "value": 0.9 - drop, "drop": drop, "p50_ms": {"1": p50}, "vs_ort_fp32": {"1": 10.0 / p50}}


def _result(exit_code, tolerance=0.01):
    return {"compress": {"exit_code": exit_code, "guard": {"tolerance": tolerance}}}


def test_all_targets_met():
    rows = [_row("model.onnx", 0.0, 10.0), _row("model.int8.onnx", 0.005, 5.0), _row("peer:ort-quantize-static", 0.02, 5.1)]
    judged = verdict(_result(0), rows)
    assert judged["met"] and all(v is True for v in judged["checks"].values())


def test_each_target_can_miss():
    rows = [_row("model.onnx", 0.0, 10.0), _row("model.int8.onnx", 0.03, 12.0), _row("peer:ort-quantize-static", 0.02, 5.0)]
    checks = verdict(_result(0), rows)["checks"]
    assert checks == {"within tolerance": False, "faster than ORT FP32": False, "exit code honest": False,
                      "speed >= ort-quantize-static": False, "retention > ort-quantize-static": False}


def test_exit_3_is_honest_about_a_miss_and_a_lossless_tie_is_said():
    rows = [_row("model.onnx", 0.0, 10.0), _row("model.int8.onnx", 0.0, 5.0), _row("peer:ort-quantize-dynamic", 0.0, 6.0)]
    checks = verdict(_result(3), rows)["checks"]
    assert checks["exit code honest"] is True and checks["retention > ort-quantize-dynamic"] == "tie at no loss"
    assert verdict(_result(0), [_row("model.onnx", 0.0, 10.0)])["met"] is False  # no INT8 file
