"""Q/DQ insertion: the graph ONNX Runtime runs equals fake quantization done by hand in numpy."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from export.int8.qdq import (
    CPU_SCHEME,
    TENSORRT_SCHEME,
    activation_params,
    insert_qdq,
    quantize_embedding_tables,
    quantize_weight,
    weighted_nodes,
)
from export.tensorrt.qdq_check import check_tensorrt_qdq


def _matmul_graph(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y0"], name="mm"), helper.make_node("Add", ["y0", "b"], ["y"], name="add"),
             helper.make_node("MatMul", ["y", "y_t"], ["z"], name="attention_core")]  # two activations: stays float
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, w.shape[0]]),
                                           helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [w.shape[1], 3])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 3])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _fake_quant(x, scale, zero, lo, hi):
    return (np.clip(np.round(x / scale) + zero, lo, hi) - zero) * scale


def test_weighted_nodes_skips_matmul_of_two_activations():
    rng = np.random.default_rng(0)
    model = _matmul_graph(rng.normal(size=(8, 5)).astype(np.float32), np.zeros(5, np.float32))
    found = weighted_nodes(model)
    assert [(n.name, n.activation, n.weight, n.axis) for n in found] == [("mm", "x", "w", 1)]


def test_quantize_weight_is_symmetric_per_output_channel():
    w = np.array([[1.0, -0.5], [-2.0, 0.25], [0.5, 0.0]], np.float32)  # [K=3, N=2]
    q, scale = quantize_weight(w, axis=1)
    np.testing.assert_allclose(scale, [2.0 / 127, 0.5 / 127], rtol=1e-6)
    assert q.dtype == np.int8 and q[:, 0].min() == -127 and q[:, 1].min() == -127


def test_activation_params_match_the_scheme():
    assert activation_params(-1.0, 3.0, TENSORRT_SCHEME) == (3.0 / 127, 0)
    scale, zero = activation_params(-1.0, 3.0, CPU_SCHEME)
    assert abs(scale - 4.0 / 255) < 1e-9 and zero == round(1.0 / scale)
    assert activation_params(0.0, 0.0, CPU_SCHEME) == (1.0, 0)  # a dead tensor: no division by zero


def test_insert_qdq_runs_in_onnxruntime_and_equals_numpy_fake_quantization():
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(16, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    x, y_t = rng.normal(size=(4, 16)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    model = _matmul_graph(w, b)
    lo, hi = float(x.min()), float(x.max())
    for scheme in (CPU_SCHEME, TENSORRT_SCHEME):
        qdq = insert_qdq(model, {"x": (lo, hi)}, weighted_nodes(model), scheme)
        onnx.checker.check_model(qdq, full_check=True)
        scale, zero = activation_params(lo, hi, scheme)
        bounds = (0, 255) if scheme is CPU_SCHEME else (-128, 127)
        wq, ws = quantize_weight(w, 1)
        expected = (_fake_quant(x, scale, zero, *bounds) @ (wq * ws) + b) @ y_t
        np.testing.assert_allclose(_run(qdq, {"x": x, "y_t": y_t}), expected, rtol=1e-4, atol=1e-4)
    assert check_tensorrt_qdq(insert_qdq(model, {"x": (lo, hi)}, weighted_nodes(model), TENSORRT_SCHEME)) == []


def test_cpu_scheme_graph_is_rejected_by_the_tensorrt_check():
    model = _matmul_graph(np.ones((4, 2), np.float32), np.zeros(2, np.float32))
    qdq = insert_qdq(model, {"x": (-1.0, 2.0)}, weighted_nodes(model), CPU_SCHEME)
    assert any("UINT8" in v.problem for v in check_tensorrt_qdq(qdq))


def test_embedding_tables_become_int8_and_gather_the_same_rows():
    rng = np.random.default_rng(2)
    table = rng.normal(size=(1000, 96)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["e"], name="embed")], "g",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [None, 96])], [numpy_helper.from_array(table, "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    small = quantize_embedding_tables(model)
    assert small.ByteSize() < model.ByteSize() / 3
    ids = np.array([0, 5, 999], np.int64)
    scale = np.abs(table).max() / 127
    np.testing.assert_allclose(_run(small, {"ids": ids}), table[ids], atol=scale / 2 + 1e-7)


def test_a_tensor_quantized_where_made_has_one_pair_that_every_reader_reads():
    """y feeds the second MatMul (whose input is quantized anyway) and the output Add: one Q/DQ pair
    right after y serves both, so y is never quantized twice with two scales."""
    rng = np.random.default_rng(3)
    w1, w2 = rng.normal(size=(6, 6)).astype(np.float32), rng.normal(size=(6, 6)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["y"], name="mm1"), helper.make_node("MatMul", ["y", "w2"], ["z"], name="mm2"),
             helper.make_node("Add", ["y", "z"], ["out"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 6])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    y = x @ w1
    ranges = {"x": (float(x.min()), float(x.max())), "y": (float(y.min()), float(y.max()))}
    qdq = insert_qdq(model, ranges, weighted_nodes(model), CPU_SCHEME, outputs=["y"])
    onnx.checker.check_model(qdq, full_check=True)
    assert [n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"] == ["x", "y"]
    readers = [n for n in qdq.graph.node if "y" in n.input]
    assert [n.op_type for n in readers] == ["QuantizeLinear"]  # everyone else reads the dequantized copy
    sx, zx = activation_params(*ranges["x"], CPU_SCHEME)
    sy, zy = activation_params(*ranges["y"], CPU_SCHEME)
    (q1, s1), (q2, s2) = quantize_weight(w1, 1), quantize_weight(w2, 1)
    y_q = _fake_quant(_fake_quant(x, sx, zx, 0, 255) @ (q1 * s1), sy, zy, 0, 255)
    np.testing.assert_allclose(_run(qdq, {"x": x}), y_q + y_q @ (q2 * s2), rtol=1e-4, atol=1e-4)
