"""Conv outputs quantized where they are made: which tensors, and that ONNX Runtime then runs every
Conv of a real depthwise-separable CNN as QLinearConv, with answers close to FP32."""

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress.core.forward_loop import forward_loop_over
from export.int8.calibrate import calibrate_onnx
from export.int8.conv_outputs import conv_output_tensors
from export.int8.qdq import CPU_SCHEME, weighted_nodes
from export.int8.qdq_files import calibration_tensors, node_groups, write_cpu_integer, write_qdq
from export.onnx.session import make_session, run_session


def _graph(nodes: list[onnx.NodeProto], outputs: list[str]) -> onnx.ModelProto:
    """``nodes`` in order, each Conv with a constant 1x1 weight, and the ReLU6 bounds as constants."""
    weights = [numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), n.input[1]) for n in nodes if n.op_type == "Conv"]
    bounds = [numpy_helper.from_array(np.array(v, np.float32), name) for name, v in (("lo", 0.0), ("hi", 6.0))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], [*weights, *bounds])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _conv(name: str, x: str, y: str) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, f"{name}_w"], [y], name=name)


def _residual() -> onnx.ModelProto:
    """c1 → ReLU6 (a6) → c2 (b); a6 + b (s) → c3 (c), read by a Relu and by a Mul (y, the output)."""
    return _graph([_conv("c1", "x", "a"), helper.make_node("Clip", ["a", "lo", "hi"], ["a6"], name="relu6"),
                   _conv("c2", "a6", "b"), helper.make_node("Add", ["a6", "b"], ["s"], name="add"),
                   _conv("c3", "s", "c"), helper.make_node("Relu", ["c"], ["r"], name="relu"),
                   helper.make_node("Mul", ["c", "r"], ["y"], name="mul")], ["y"])


def test_the_tensor_after_a_lone_activation_and_a_residual_add_are_quantized_where_made():
    model = _residual()
    # a6: the Clip is c1's only reader; b: c2 has no activation; s: an Add of two quantized tensors;
    # c: c3's output has two readers (the Relu and the Mul), so it is quantized itself
    assert conv_output_tensors(model, weighted_nodes(model)) == ["a6", "b", "s", "c"]


def test_a_tensor_read_by_a_layer_kept_float_stays_float():
    model = _residual()
    without_c2 = [w for w in weighted_nodes(model) if w.name != "c2"]
    # a6 feeds c2, kept float; b is c2's own output; so s is no longer an Add of two quantized tensors
    assert conv_output_tensors(model, without_c2) == ["c"]


def test_a_graph_output_stays_float_and_a_graph_without_conv_has_nothing_to_quantize():
    model = _graph([_conv("c1", "x", "a"), helper.make_node("Clip", ["a", "lo", "hi"], ["y"], name="relu6")], ["y"])
    assert conv_output_tensors(model, weighted_nodes(model)) == []
    matmul = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), helper.make_node("Add", ["y", "y"], ["z"], name="add")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((4, 3), np.float32), "w")]), opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    assert calibration_tensors(matmul, node_groups(matmul)) == ["x"]  # a transformer-like graph calibrates its inputs only


@pytest.fixture(scope="module")
def depthwise_calibrated(depthwise_onnx, digits_data):
    graph = onnx.load(str(depthwise_onnx))
    groups = node_groups(graph)
    tensors = calibration_tensors(graph, groups)
    observers = calibrate_onnx(depthwise_onnx, tensors, forward_loop_over([{"x": digits_data["x_train"][:256]}]), threads=1)
    return graph, [w for g in groups for w in g.nodes], observers


def _cpu_integer_file(depthwise_calibrated, tmp_path, conv_outputs: bool):
    graph, nodes, observers = depthwise_calibrated
    qdq, cpu = tmp_path / f"qdq-{conv_outputs}.onnx", tmp_path / f"cpu-{conv_outputs}.onnx"
    write_qdq(graph, observers, nodes, "minmax", 99.99, CPU_SCHEME, qdq, conv_outputs=conv_outputs)
    write_cpu_integer(qdq, cpu)
    return cpu


def test_every_conv_of_a_depthwise_cnn_becomes_qlinearconv_and_answers_stay_close(depthwise_calibrated, depthwise_onnx,
                                                                                   digits_data, tmp_path):
    graph = depthwise_calibrated[0]
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    path = _cpu_integer_file(depthwise_calibrated, tmp_path, conv_outputs=True)
    cpu = onnx.load(str(path))
    ops = Counter(n.op_type for n in cpu.graph.node)
    assert ops["QLinearConv"] == len(convs) == 5 and ops["Conv"] == ops["FusedConv"] == 0, ops
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in cpu.graph.node if n.op_type == "QLinearConv"]
    assert max(groups) == 48  # the depthwise Conv is integer too
    assert ops["QLinearAdd"] == 1 and ops["Clip"] == ops["Relu"] == 0  # the residual Add; ReLU6/ReLU folded into the ranges
    x = digits_data["x_test"]
    fp32 = run_session(make_session(depthwise_onnx, 1), {"x": x})[0]
    int8 = run_session(make_session(path, 1), {"x": x})[0]
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.97
    assert np.abs(int8 - fp32).mean() / np.abs(fp32).mean() < 0.03


def test_without_conv_outputs_a_conv_after_an_activation_stays_float(depthwise_calibrated, tmp_path):
    ops = Counter(n.op_type for n in onnx.load(str(_cpu_integer_file(depthwise_calibrated, tmp_path, conv_outputs=False))).graph.node)
    assert ops["Conv"] + ops["FusedConv"] > 0 and ops["QLinearAdd"] == 0, ops  # what the option is for
