"""The 2:4 masks survive export: read back from the ONNX file, in every weight layout the exporters write."""

import copy
import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from bench.models.digits_cnn import digits_split, train_digits_cnn
from compress.core.model import Model
from compress.core.spec import parse_input_spec
from compress.passes.prune_unstructured import SemiStructuredConfig, semi_structured_
from export.int8.qdq import TENSORRT_SCHEME, insert_qdq, weighted_nodes
from export.onnx.export import OnnxExportConfig, export_onnx
from export.onnx.sparsity_check import check_onnx_n_m


@pytest.fixture(scope="module")
def digits():
    data = digits_split()
    return data, train_digits_cnn(data, epochs=2)


@pytest.fixture(scope="module")
def sparse_digits(digits):
    """The digits CNN with 2:4 weights (conv1, with one input channel, cannot hold the pattern)."""
    data, trained = digits
    model = copy.deepcopy(trained)
    report = semi_structured_(model, SemiStructuredConfig())
    assert set(report["layers"]) == {"conv2", "fc"}
    return model


def _export_torchscript(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    torch.onnx.export(module, (example,), str(path), input_names=["x"], opset_version=17, dynamo=False)
    return path


def _by_shape(path: Path, result: dict) -> dict[tuple[int, ...], bool]:
    """Results keyed by each initializer's shape: exporters rename weights (BatchNorm folding, transposes)."""
    shapes = {i.name: tuple(i.dims) for i in onnx.load(str(path)).graph.initializer}
    return {shapes[name]: ok for name, ok in result["layers"].items()}


def test_check_onnx_n_m_holds_for_every_pruned_layer_when_exported_with_torchscript(sparse_digits, digits, tmp_path):
    data, _ = digits
    path = _export_torchscript(sparse_digits, torch.from_numpy(data["x_test"][:2]), tmp_path / "sparse.onnx")
    result = check_onnx_n_m(path)
    # conv1 (folded with its BatchNorm, still one input channel) cannot hold 2:4; conv2 and the Gemm's fc do
    assert _by_shape(path, result) == {(16, 1, 3, 3): False, (32, 16, 3, 3): True, (10, 512): True}
    assert result["pattern"] == "2:4" and result["zeros"]["fc.weight"] == 0.5


def test_check_onnx_n_m_holds_for_every_pruned_layer_when_exported_by_the_repo_exporter(sparse_digits, digits, tmp_path):
    data, _ = digits
    model = Model(sparse_digits, (parse_input_spec("x:1x1x8x8:float32"),), "classification", source=tmp_path, format="test")
    export_onnx(model, {"x": data["x_test"][:2]}, tmp_path / "sparse.onnx", OnnxExportConfig())
    result = check_onnx_n_m(tmp_path / "sparse.onnx")
    assert _by_shape(tmp_path / "sparse.onnx", result) == {(16, 1, 3, 3): False, (32, 16, 3, 3): True, (10, 512): True}
    assert sorted(result["zeros"].values())[1:] == [0.5, 0.5]


class TokenMLP(nn.Module):
    """Linear layers on [batch, tokens, features]: the exporter writes MatMul with [in, out] weights."""

    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(16, 32), nn.Linear(32, 8)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def test_check_onnx_n_m_reads_matmul_weights_as_in_out_and_follows_int8_dequantize(tmp_path):
    torch.manual_seed(0)
    model = TokenMLP().eval()
    semi_structured_(model, SemiStructuredConfig())
    path = _export_torchscript(model, torch.randn(2, 5, 16), tmp_path / "mlp.onnx")
    proto = onnx.load(str(path))
    assert {n.op_type for n in proto.graph.node} >= {"MatMul"}
    result = check_onnx_n_m(path)
    assert len(result["layers"]) == 2 and all(result["layers"].values())
    assert all(z == 0.5 for z in result["zeros"].values())
    nodes = weighted_nodes(proto)  # INT8: weights stored as int8 behind a DequantizeLinear
    quantized = insert_qdq(proto, {n.activation: (-4.0, 4.0) for n in nodes}, nodes, TENSORRT_SCHEME)
    onnx.save(quantized, str(tmp_path / "mlp_qdq.onnx"))
    int8 = check_onnx_n_m(tmp_path / "mlp_qdq.onnx")
    assert len(int8["layers"]) == 2 and all(int8["layers"].values()) and all(n.endswith("_int8") for n in int8["layers"])


def test_check_onnx_n_m_fails_dense_weights_and_leaves_the_file_unchanged(digits, tmp_path):
    data, trained = digits
    path = _export_torchscript(trained, torch.from_numpy(data["x_test"][:2]), tmp_path / "dense.onnx")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = check_onnx_n_m(path)
    assert len(result["layers"]) == 3 and not any(result["layers"].values())
    assert all(z < 0.1 for z in result["zeros"].values())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_check_onnx_n_m_transposes_a_gemm_without_trans_b(tmp_path):
    rows = np.array([[1, 0, 2, 0], [0, 3, 0, 4]], np.float32)  # [out=2, in=4]: 2:4 along each row
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Gemm", ["x", "w"], ["y"], transB=0)], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.numpy_helper.from_array(rows.T.copy(), "w")])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "gemm.onnx"))
    assert check_onnx_n_m(tmp_path / "gemm.onnx")["layers"] == {"w": True}
    assert check_onnx_n_m(tmp_path / "gemm.onnx", n=1, m=2)["layers"] == {"w": True}
    assert check_onnx_n_m(tmp_path / "gemm.onnx", n=1, m=4)["layers"] == {"w": False}
