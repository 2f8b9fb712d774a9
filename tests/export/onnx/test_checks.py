import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from compress.core.errors import ExportError, InputError
from compress.core.spec import TensorSpec
from compress.load.onnx_file import graph_input_specs, load_onnx_model
from export.onnx.checks import check_and_infer, rename_outputs


def _graph(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)  # one ORT can load


def test_graph_input_specs_reads_names_dims_and_dtypes_skipping_initializers():
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    proto = _graph(
        [helper.make_node("Add", ["a", "w"], ["y"]), helper.make_node("Identity", ["ids"], ["z"])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [None, None]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("z", TensorProto.INT64, [None, None])],
        [w],
    )
    assert graph_input_specs(proto) == (TensorSpec("a", ("n", 3), "float32"), TensorSpec("ids", ("batch", "dim_1"), "int64"))


def test_load_onnx_model_keeps_generic_task_when_output_is_not_2d_logits(tmp_path):
    proto = _graph([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 4])])
    path = tmp_path / "relu.onnx"
    onnx.save(proto, str(path))
    model = load_onnx_model(path, "generic", None)
    assert model.task == "generic"
    assert model.output_names == ("y",)
    assert model.inputs == (TensorSpec("x", ("batch", 4, 4), "float32"),)


def test_rename_outputs_moves_aside_an_inner_value_that_has_the_wanted_name(tmp_path):
    # The inner value is already called "embedding"; the output must become "embedding" too.
    proto = _graph([helper.make_node("Relu", ["x"], ["embedding"]), helper.make_node("Neg", ["embedding"], ["out0"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                   [helper.make_tensor_value_info("out0", TensorProto.FLOAT, [2])])
    rename_outputs(proto, ("embedding",))
    onnx.checker.check_model(proto)
    assert [o.name for o in proto.graph.output] == ["embedding"]
    path = tmp_path / "renamed.onnx"
    onnx.save(proto, str(path))
    x = np.array([-1.0, 2.0], np.float32)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["embedding"], {"x": x})[0]
    np.testing.assert_array_equal(out, -np.maximum(x, 0))


def test_check_and_infer_raises_export_error_naming_the_file_when_graph_invalid(tmp_path):
    proto = _graph([helper.make_node("Relu", ["missing"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "broken.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ExportError, match="broken.onnx"):
        check_and_infer(path)


def test_load_onnx_model_raises_input_error_when_file_truncated(tmp_path, digits_onnx):
    data = digits_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="cut.onnx"):
        load_onnx_model(cut, "generic", None)
