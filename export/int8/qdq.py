"""Insert QuantizeLinear/DequantizeLinear pairs around the weighted ops of an FP32 ONNX graph.

The inputs of MatMul, Gemm and Conv nodes whose weight is a constant are quantized: the
activation gets a Q→DQ pair with a per-tensor scale from calibration, the weight is stored as
INT8, symmetric, one scale per output channel, behind a DequantizeLinear. Biases, LayerNorm,
Softmax, GELU and the attention core (a MatMul of two activations) stay float. This is the form
TensorRT's explicit quantization reads, and ONNX Runtime fuses it into integer kernels. Named
tensors can also be quantized where they are made (``outputs``; see ``export.int8.conv_outputs``),
which ONNX Runtime needs to run a Conv as an integer QLinearConv.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTED_OPS = ("MatMul", "Gemm", "Conv")


@dataclass(frozen=True)
class QuantScheme:
    """How activations are stored: CPU kernels prefer uint8 with a zero point; TensorRT needs int8 symmetric."""

    name: str
    activation_type: int  # TensorProto.UINT8 or INT8
    symmetric: bool


CPU_SCHEME = QuantScheme("cpu", TensorProto.UINT8, False)
TENSORRT_SCHEME = QuantScheme("tensorrt", TensorProto.INT8, True)


@dataclass(frozen=True)
class WeightedNode:
    name: str
    op_type: str
    activation: str  # the input tensor that gets a per-tensor Q/DQ pair
    weight: str  # the initializer quantized per output channel
    axis: int  # the weight's output-channel axis


def weighted_nodes(model: onnx.ModelProto) -> list[WeightedNode]:
    """MatMul/Gemm/Conv nodes with one activation input and a constant float weight, in graph order."""
    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2:
            continue
        act, weight = node.input[0], inits.get(node.input[1])
        if weight is None or act in inits or weight.data_type != TensorProto.FLOAT:
            continue
        if node.op_type == "MatMul" and len(weight.dims) != 2:
            continue
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0):
                continue
            axis = 0 if attrs.get("transB", 0) else 1
        else:
            axis = 1 if node.op_type == "MatMul" else 0
        out.append(WeightedNode(node.name, node.op_type, act, weight.name, axis))
    return out


def activation_params(lo: float, hi: float, scheme: QuantScheme) -> tuple[float, int]:
    """(scale, zero point) for a calibrated range; the range always includes zero."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if scheme.symmetric:
        amax = max(-lo, hi)
        return (amax / 127.0 if amax > 0 else 1.0), 0
    if hi - lo <= 0:
        return 1.0, 0
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(round(-lo / scale), 0, 255))


def quantize_weight(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric INT8 per output channel: returns (int8 weight, float32 scale per channel)."""
    reduce_axes = tuple(i for i in range(weight.ndim) if i != axis)
    amax = np.abs(weight).max(axis=reduce_axes)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def insert_qdq(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], nodes: list[WeightedNode],
               scheme: QuantScheme, outputs: Sequence[str] = ()) -> onnx.ModelProto:
    """A copy of ``model`` with Q/DQ on the inputs of ``nodes`` and right after each tensor in
    ``outputs``, which every reader then reads dequantized (one pair per tensor, shared with a
    weighted node that reads it); ``ranges`` maps those tensor names to (lo, hi)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    missing = sorted(({n.activation for n in nodes} | set(outputs)) - set(ranges))
    if missing:
        raise ValueError(f"no calibrated range for tensor {missing[0]}")
    quantizer = _Quantizer(graph, ranges, scheme)
    by_name, at_source = {n.name: n for n in nodes}, set(outputs)
    rebuilt = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in at_source:  # made (and quantized) earlier: the graph is in topological order
                node.input[i] = quantizer.act_dq[name]
        target = by_name.get(node.name)
        if target is not None:
            node.input[0] = quantizer.activation(target.activation, rebuilt)
            node.input[1] = quantizer.weight(target)
        rebuilt.append(node)
        for name in node.output:
            if name in at_source:
                quantizer.activation(name, rebuilt)
    del graph.node[:]
    graph.node.extend([*quantizer.weight_dq.values(), *rebuilt])
    graph.initializer.extend(quantizer.new_inits)
    _drop_unused_initializers(graph)
    return out


class _Quantizer:
    """Makes the Q/DQ nodes and their initializers for ``insert_qdq``, one set per tensor."""

    def __init__(self, graph: onnx.GraphProto, ranges: dict[str, tuple[float, float]], scheme: QuantScheme):
        self.inits = {i.name: i for i in graph.initializer}
        self.ranges, self.scheme = ranges, scheme
        self.new_inits: list[onnx.TensorProto] = []
        self.weight_dq: dict[tuple[str, int], onnx.NodeProto] = {}
        self.act_dq: dict[str, str] = {}  # tensor -> its dequantized copy

    def weight(self, w: WeightedNode) -> str:
        """The dequantized INT8 copy of ``w``'s weight (its DQ node goes ahead of the graph)."""
        key = (w.weight, w.axis)
        if key not in self.weight_dq:
            q, scale = quantize_weight(numpy_helper.to_array(self.inits[w.weight]), w.axis)
            base = f"{w.weight}_{w.axis}"
            self.new_inits.extend([numpy_helper.from_array(q, f"{base}_int8"), numpy_helper.from_array(scale, f"{base}_scale"),
                                   numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{base}_zero_point")])
            self.weight_dq[key] = helper.make_node("DequantizeLinear", [f"{base}_int8", f"{base}_scale", f"{base}_zero_point"],
                                                   [f"{base}_dequantized"], name=f"{base}_DequantizeLinear", axis=w.axis)
        return self.weight_dq[key].output[0]

    def activation(self, name: str, nodes: list[onnx.NodeProto]) -> str:
        """The dequantized copy of activation ``name``; its Q/DQ pair is appended to ``nodes`` the first time."""
        if name not in self.act_dq:
            scale, zero = activation_params(*self.ranges[name], self.scheme)
            zero_np = np.array(zero, np.uint8 if self.scheme.activation_type == TensorProto.UINT8 else np.int8)
            self.new_inits.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                                   numpy_helper.from_array(zero_np, f"{name}_zero_point")])
            nodes.append(helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [f"{name}_quantized"],
                                          name=f"{name}_QuantizeLinear"))
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                                          [f"{name}_dequantized"], name=f"{name}_DequantizeLinear"))
            self.act_dq[name] = f"{name}_dequantized"
        return self.act_dq[name]


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def quantize_embedding_tables(model: onnx.ModelProto, min_elements: int = 65_536) -> onnx.ModelProto:
    """Store large constant Gather tables (token embeddings) as INT8 with one symmetric scale and
    dequantize only the gathered rows: the file shrinks by the table's 3/4 at no GEMM cost.
    For the CPU file; TensorRT's explicit quantization keeps Gather in float."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    rebuilt, done = [], {}
    for node in graph.node:
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or table.data_type != TensorProto.FLOAT or int(np.prod(table.dims)) < min_elements:
            rebuilt.append(node)
            continue
        if table.name not in done:
            values = numpy_helper.to_array(table)
            scale = max(float(np.abs(values).max()), 1e-12) / 127.0
            q = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
            graph.initializer.extend([numpy_helper.from_array(q, f"{table.name}_int8"),
                                      numpy_helper.from_array(np.array(scale, np.float32), f"{table.name}_scale"),
                                      numpy_helper.from_array(np.array(0, np.int8), f"{table.name}_zero_point")])
            done[table.name] = True
        gathered = f"{node.output[0]}_int8"
        rebuilt.append(helper.make_node("Gather", [f"{table.name}_int8", node.input[1]], [gathered], name=node.name,
                                        axis=next((a.i for a in node.attribute if a.name == "axis"), 0)))
        rebuilt.append(helper.make_node("DequantizeLinear", [gathered, f"{table.name}_scale", f"{table.name}_zero_point"],
                                        [node.output[0]], name=f"{node.name}_DequantizeLinear"))
    del graph.node[:]
    graph.node.extend(rebuilt)
    _drop_unused_initializers(graph)
    return out
