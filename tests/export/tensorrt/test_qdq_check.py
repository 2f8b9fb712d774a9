import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress.core.errors import ExportError
from export.tensorrt.qdq_check import Violation, check_tensorrt_qdq, require_tensorrt_qdq

RNG = np.random.default_rng(0)
X_SCALE, C_SCALE = 0.05, 0.04


def _compliant(opset=17) -> onnx.ModelProto:
    """X -> Q/DQ -> MatMul(per-channel W) -> Add -> LayerNorm, and X2 -> Q/DQ -> Conv(per-channel W) + float bias."""
    w = RNG.integers(-127, 128, (4, 6), dtype=np.int8)
    wc = RNG.integers(-127, 128, (3, 3, 3, 3), dtype=np.int8)  # O == I so a wrong axis keeps the same size
    inits = {
        "x_scale": np.float32(X_SCALE), "x_zp": np.int8(0),
        "w": w, "w_scale": RNG.uniform(0.01, 0.02, 6).astype(np.float32), "w_zp": np.zeros(6, np.int8),
        "bias": RNG.standard_normal(6).astype(np.float32),
        "gamma": np.ones(6, np.float32), "beta": np.zeros(6, np.float32),
        "c_scale": np.float32(C_SCALE), "c_zp": np.int8(0),
        "wc": wc, "wc_scale": RNG.uniform(0.01, 0.02, 3).astype(np.float32), "wc_zp": np.zeros(3, np.int8),
        "bc": RNG.standard_normal(3).astype(np.float32),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["X", "x_scale", "x_zp"], ["x_q"], name="q_x"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["w_dq"], name="dq_w", axis=1),
        helper.make_node("MatMul", ["x_dq", "w_dq"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "bias"], ["biased"], name="add_bias"),
        helper.make_node("LayerNormalization", ["biased", "gamma", "beta"], ["Y"], name="layernorm", axis=-1),
        helper.make_node("QuantizeLinear", ["X2", "c_scale", "c_zp"], ["x2_q"], name="q_c"),
        helper.make_node("DequantizeLinear", ["x2_q", "c_scale", "c_zp"], ["x2_dq"], name="dq_c"),
        helper.make_node("DequantizeLinear", ["wc", "wc_scale", "wc_zp"], ["wc_dq"], name="dq_wc", axis=0),
        helper.make_node("Conv", ["x2_dq", "wc_dq", "bc"], ["Z"], name="conv"),
    ]
    graph = helper.make_graph(
        nodes, "qdq",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("X2", TensorProto.FLOAT, [1, 3, 5, 5])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 6]),
         helper.make_tensor_value_info("Z", TensorProto.FLOAT, [1, 3, 3, 3])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def _set_init(model, name, value):
    init = next(t for t in model.graph.initializer if t.name == name)
    init.CopyFrom(numpy_helper.from_array(np.asarray(value), name))


def _assert_flagged(model, node, fragment):
    """The node is named with a problem containing ``fragment``, in the result and in the error."""
    found = check_tensorrt_qdq(model)
    assert any(v.node == node and fragment in v.problem for v in found), found
    with pytest.raises(ExportError) as err:
        require_tensorrt_qdq(model, "model.int8.qdq.onnx")
    summary, *lines = str(err.value).splitlines()
    assert summary.startswith(f"model.int8.qdq.onnx is not TensorRT-compatible ({len(found)} violation")
    assert lines == [f"  {v}" for v in found]
    assert any(line.startswith(f"  {node} (") and fragment in line for line in lines)
    return found


def test_check_tensorrt_qdq_returns_nothing_when_graph_is_compliant():
    model = _compliant()
    onnx.checker.check_model(model, full_check=True)
    assert check_tensorrt_qdq(model) == []
    require_tensorrt_qdq(model, "model.int8.qdq.onnx")  # does not raise


def test_compliant_graph_runs_in_onnxruntime_with_symmetric_int8_semantics():
    model = _compliant()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    x2 = RNG.standard_normal((1, 3, 5, 5)).astype(np.float32)
    y, z = session.run(None, {"X": x, "X2": x2})
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    x_dq = np.clip(np.round(x / X_SCALE), -128, 127) * X_SCALE
    h = x_dq @ (inits["w"] * inits["w_scale"]) + inits["bias"]  # axis 1 scales the output channels
    expected = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, atol=1e-4)
    assert z.shape == (1, 3, 3, 3) and np.isfinite(z).all()


def test_violation_str_names_node_and_op_type():
    assert str(Violation("q_x", "QuantizeLinear", "bad.")) == "q_x (QuantizeLinear): bad."


def test_check_tensorrt_qdq_names_node_when_zero_point_is_uint8():
    model = _compliant()
    _set_init(model, "x_zp", np.uint8(0))
    found = _assert_flagged(model, "q_x", "UINT8")
    assert {v.node for v in found} == {"q_x", "dq_x"}  # both share the zero point


def test_check_tensorrt_qdq_names_node_when_zero_point_is_missing():
    model = _compliant()
    del _node(model, "q_x").input[2]
    _assert_flagged(model, "q_x", "no zero-point input")


def test_check_tensorrt_qdq_names_node_when_zero_point_is_nonzero():
    model = _compliant()
    _set_init(model, "x_zp", np.int8(3))
    _assert_flagged(model, "q_x", "nonzero zero point")


def test_check_tensorrt_qdq_names_node_when_zero_point_comes_from_constant_node():
    model = _compliant()
    model.graph.initializer.remove(next(t for t in model.graph.initializer if t.name == "c_zp"))
    model.graph.node.insert(0, helper.make_node(
        "Constant", [], ["c_zp"], name="c_zp_const", value=numpy_helper.from_array(np.int8(5))))
    _assert_flagged(model, "dq_c", "nonzero zero point")


def test_check_tensorrt_qdq_names_node_when_scale_is_not_positive():
    model = _compliant()
    _set_init(model, "c_scale", np.float32(0.0))
    _assert_flagged(model, "q_c", "finite scales > 0")


def test_check_tensorrt_qdq_names_node_when_weight_is_int4():
    model = _compliant()
    for name, dims in (("w", [4, 6]), ("w_zp", [6])):
        init = next(t for t in model.graph.initializer if t.name == name)
        init.CopyFrom(helper.make_tensor(name, TensorProto.INT4, dims, np.zeros(int(np.prod(dims)), int)))
    found = _assert_flagged(model, "dq_w", "INT4")
    assert len(found) == 1  # weight and zero point agree, so the type is reported once


def test_check_tensorrt_qdq_names_node_when_per_channel_axis_is_wrong():
    model = _compliant()
    _node(model, "dq_wc").attribute[0].i = 1  # input channels, same size as output channels here
    found = _assert_flagged(model, "dq_wc", "on axis 1, but conv (Conv) has output channels on axis 0")
    assert len(found) == 1


def test_check_tensorrt_qdq_names_node_when_matmul_weight_scales_do_not_match_axis():
    model = _compliant()
    _node(model, "dq_w").attribute[0].i = 0  # [K, N] quantized along K
    found = _assert_flagged(model, "dq_w", "output channels on axis 1")
    assert any("6 scales for axis 0 of size 4" in v.problem for v in found)


def test_check_tensorrt_qdq_accepts_gemm_weight_on_axis_0_when_trans_b():
    model = _compliant()
    matmul = _node(model, "matmul")
    matmul.CopyFrom(helper.make_node("Gemm", ["x_dq", "wt_dq"], ["mm"], name="matmul", transB=1))
    _node(model, "dq_w").CopyFrom(helper.make_node(
        "DequantizeLinear", ["wt", "w_scale", "w_zp"], ["wt_dq"], name="dq_w", axis=0))
    w = next(t for t in model.graph.initializer if t.name == "w")
    model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(w).T.copy(), "wt"))
    assert check_tensorrt_qdq(model) == []
    _node(model, "dq_w").attribute[0].i = 1
    _assert_flagged(model, "dq_w", "output channels on axis 0")


def test_check_tensorrt_qdq_names_node_when_dequantize_feeds_layer_norm():
    model = _compliant()
    _node(model, "layernorm").input[0] = "b_dq"
    model.graph.node.extend([
        helper.make_node("QuantizeLinear", ["biased", "x_scale", "x_zp"], ["b_q"], name="q_ln"),
        helper.make_node("DequantizeLinear", ["b_q", "x_scale", "x_zp"], ["b_dq"], name="dq_ln"),
    ])
    found = _assert_flagged(model, "dq_ln", "layernorm (LayerNormalization)")
    assert [v.node for v in found] == ["dq_ln"]  # the Q->DQ pair itself is fine


def test_check_tensorrt_qdq_names_node_when_conv_bias_is_dequantized():
    model = _compliant()
    _node(model, "conv").input[2] = "bc_dq"
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, -2, 3], np.int8), "bc_q"))
    model.graph.node.append(helper.make_node("DequantizeLinear", ["bc_q", "c_scale", "c_zp"], ["bc_dq"], name="dq_bc"))
    _assert_flagged(model, "dq_bc", "bias of conv (Conv)")


def test_check_tensorrt_qdq_names_model_when_opset_is_11():
    found = _assert_flagged(_compliant(opset=11), "<model>", "opset 11")
    assert [v.op_type for v in found] == ["opset"]


def test_check_tensorrt_qdq_names_model_when_opset_is_missing_or_too_new():
    model = _compliant(opset=22)
    _assert_flagged(model, "<model>", "opset 22")
    model.opset_import[0].domain = "com.microsoft"
    _assert_flagged(model, "<model>", "no default-domain")


def test_check_tensorrt_qdq_names_node_when_quantize_is_not_followed_by_dequantize():
    model = _compliant()
    _node(model, "matmul").input[0] = "x_q"
    _assert_flagged(model, "q_x", "matmul (MatMul)")


def test_check_tensorrt_qdq_names_node_when_activation_scale_is_not_scalar():
    model = _compliant()
    _set_init(model, "x_scale", np.full(4, X_SCALE, np.float32))
    _node(model, "q_x").attribute.append(helper.make_attribute("axis", 1))
    _assert_flagged(model, "q_x", "scalar (per-tensor) scale")
