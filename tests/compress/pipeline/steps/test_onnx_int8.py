"""The default INT8 step's candidates: per-tensor weights compete on speed only where the accuracy check lets them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress.pipeline.steps.onnx_int8 import quantize_fastest
from export.int8.ort_quantize import OnnxInt8Config


@pytest.fixture
def matmul_layernorm(tmp_path):
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "w"),
               numpy_helper.from_array(np.ones(64, np.float32), "gamma"), numpy_helper.from_array(np.zeros(64, np.float32), "beta")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("LayerNormalization", ["h", "gamma", "beta"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8, 64])], weights)
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("allowed", [False, True])
def test_per_tensor_weights_are_timed_only_where_the_check_allows_them(matmul_layernorm, tmp_path, allowed):
    checked = []

    def within_tolerance(path):
        checked.append(onnx.load(str(path)))
        return allowed

    batch = {"x": np.random.default_rng(1).standard_normal((2, 8, 64)).astype(np.float32)}
    result = quantize_fastest(matmul_layernorm, tmp_path / "out.onnx", OnnxInt8Config(mode="dynamic"), None, None, [batch], 1, within_tolerance)
    assert len(checked) == 1  # one distinct per-tensor file: the plain graph
    scales = [numpy_helper.to_array(t) for t in checked[0].graph.initializer if t.name.endswith("_scale")]
    assert scales and all(s.size == 1 for s in scales)  # what was checked really has one scale per tensor
    per_tensor = [name for name in result.trials if "per-tensor" in name]
    assert len(per_tensor) == (2 if allowed else 0) and len(result.trials) == (4 if allowed else 2)
    assert result.per_channel or allowed
    assert result.to_json()["weights"] == ("per-channel" if result.per_channel else "per-tensor")


def test_without_a_check_or_with_per_tensor_asked_for_there_is_nothing_more_to_try(matmul_layernorm, tmp_path):
    batch = {"x": np.zeros((1, 8, 64), np.float32)}
    result = quantize_fastest(matmul_layernorm, tmp_path / "a.onnx", OnnxInt8Config(mode="dynamic"), None, None, [batch], 1)
    assert result.per_channel and not any("per-tensor" in name for name in result.trials)
    called = []
    result = quantize_fastest(matmul_layernorm, tmp_path / "b.onnx", OnnxInt8Config(mode="dynamic", per_channel=False), None, None, [batch], 1,
                              lambda path: called.append(path) or True)
    assert not called and not result.per_channel
