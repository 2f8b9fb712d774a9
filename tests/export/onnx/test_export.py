import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from compress.core.errors import ExportError
from compress.core.spec import parse_input_spec
from compress.load.loaders import load_model
from export.onnx.export import OnnxExportConfig, export_onnx
from tests.conftest import DIGITS_SPEC


def _input_dims(proto):
    return [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input]


def _logits(cnn, x):
    with torch.no_grad():
        return cnn(torch.from_numpy(x)).numpy()


def test_export_onnx_names_the_dynamic_batch_axis_when_torchscript(digits_onnx, digits_cnn, digits_data):
    proto = onnx.load(str(digits_onnx))
    onnx.checker.check_model(proto, full_check=True)
    assert [v.name for v in proto.graph.input] == ["x"]
    assert _input_dims(proto) == [["batch", 1, 8, 8]]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert min(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    session = ort.InferenceSession(str(digits_onnx), providers=["CPUExecutionProvider"])
    x = digits_data["x_test"][:9]  # not the batch size of the export example
    np.testing.assert_allclose(session.run(None, {"x": x})[0], _logits(digits_cnn, x), atol=1e-4)


def test_export_onnx_keeps_batch_dynamic_when_module_goes_through_torch_export(tmp_path, digits_files, digits_cnn, digits_data):
    model = load_model(digits_files["pickle"], (parse_input_spec(DIGITS_SPEC),), trust_pickle=True)
    path = tmp_path / "dynamo.onnx"
    proto = export_onnx(model, {"x": digits_data["x_test"][:2]}, path, OnnxExportConfig())
    assert _input_dims(proto) == [["batch", 1, 8, 8]]
    assert [o.name for o in proto.graph.output] == ["output"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = digits_data["x_test"][:5]
    np.testing.assert_allclose(session.run(None, {"x": x})[0], _logits(digits_cnn, x), atol=1e-4)


def test_export_onnx_fixes_every_axis_when_not_dynamic(tmp_path, digits_files, digits_data):
    model = load_model(digits_files["pickle"], (parse_input_spec(DIGITS_SPEC, dynamic_batch=False),), trust_pickle=True)
    path = tmp_path / "static.onnx"
    proto = export_onnx(model, {"x": digits_data["x_test"][:1]}, path, OnnxExportConfig(dynamic=False))
    assert _input_dims(proto) == [[1, 1, 8, 8]]


def test_export_onnx_raises_export_error_naming_the_op_when_operator_unsupported(tmp_path, wiggle_file):
    model = load_model(wiggle_file, (parse_input_spec("x:1x4:float32"),), trust_pickle=True)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(model.forward_numpy({"x": x})[0],
                               model.module.fc(torch.full((2, 4), 3.0)).detach().numpy(), atol=1e-6)  # wiggle(1) = 3
    with pytest.raises(ExportError, match="wiggle"):
        export_onnx(model, {"x": x}, tmp_path / "wiggle.onnx", OnnxExportConfig())
