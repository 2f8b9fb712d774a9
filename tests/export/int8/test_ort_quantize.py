import numpy as np
import onnx
import onnxruntime as ort
import pytest

from compress.core.errors import QuantizationError
from export.int8.ort_quantize import OnnxInt8Config, quantize_onnx_int8, resolve_mode


def _ops(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_resolve_mode_picks_static_for_conv_graphs_and_keeps_explicit_modes(digits_onnx):
    proto = onnx.load(str(digits_onnx))
    assert resolve_mode(proto, "auto") == "static"
    assert resolve_mode(proto, "dynamic") == "dynamic"
    no_conv = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    assert resolve_mode(no_conv, "auto") == "dynamic"


def test_quantize_onnx_int8_raises_quantization_error_when_static_without_calibration(digits_onnx, tmp_path):
    with pytest.raises(QuantizationError, match="calibration"):
        quantize_onnx_int8(digits_onnx, tmp_path / "q.onnx", OnnxInt8Config(mode="static"))
    assert not (tmp_path / "q.onnx").exists()


def test_quantize_onnx_int8_static_writes_integer_conv_that_keeps_accuracy(digits_onnx, digits_data, tmp_path):
    out = tmp_path / "static.int8.onnx"
    before = digits_onnx.read_bytes()
    calib = [{"x": digits_data["x_train"][i:i + 32]} for i in range(0, 128, 32)]
    result = quantize_onnx_int8(digits_onnx, out, OnnxInt8Config(), calibration=calib)
    assert result.mode == "static" and result.fused is False
    assert result.to_json()["mode"] == "static" and result.to_json()["transformer_fusions"] is False
    assert digits_onnx.read_bytes() == before  # the FP32 file is never modified
    assert "QLinearConv" in _ops(out)
    assert out.stat().st_size < digits_onnx.stat().st_size
    x, y = digits_data["x_test"], digits_data["y_test"]
    fp32 = ort.InferenceSession(str(digits_onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    int8 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert (int8.argmax(1) == y).mean() >= (fp32.argmax(1) == y).mean() - 0.02


def test_quantize_onnx_int8_dynamic_needs_no_calibration(digits_onnx, digits_data, tmp_path):
    out = tmp_path / "dynamic.int8.onnx"
    result = quantize_onnx_int8(digits_onnx, out, OnnxInt8Config(mode="dynamic"))
    assert result.mode == "dynamic"
    x = digits_data["x_test"][:11]
    logits = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert logits.shape == (11, 10) and np.isfinite(logits).all()
