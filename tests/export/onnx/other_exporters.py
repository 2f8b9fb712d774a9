"""ONNX files written the way exporters other than PyTorch's current one write them: an old
opset, weights held in ``Constant`` nodes, or weights also listed as graph inputs (IR 3)."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch


def legacy_export(module: torch.nn.Module, example: torch.Tensor, path: Path, opset: int = 12) -> Path:
    """PyTorch's TorchScript-based exporter at an old opset, batch axis dynamic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), opset_version=opset, dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return path


def weights_as_constant_nodes(path: Path, out: Path) -> Path:
    """Every initializer becomes a ``Constant`` node at the head of the graph (as TF converters write)."""
    model = onnx.load(str(path))
    constants = [onnx.helper.make_node("Constant", [], [t.name], value=t) for t in model.graph.initializer]
    nodes = list(model.graph.node)
    del model.graph.initializer[:]
    del model.graph.node[:]
    model.graph.node.extend(constants + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def weights_as_graph_inputs(path: Path, out: Path) -> Path:
    """Every initializer is also a graph input, as IR-3 exporters wrote them."""
    model = onnx.load(str(path))
    for tensor in model.graph.initializer:
        model.graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out
