"""Which tensors to quantize where they are made, so ONNX Runtime runs a CNN's Convs as QLinearConv.

ONNX Runtime folds DQ → Conv → Q into QLinearConv only when the Conv's output goes to one
QuantizeLinear and nowhere else: a Conv whose inputs alone are quantized stays a float Conv
behind DequantizeLinear nodes. So each quantized Conv's output gets one Q/DQ pair, read by every
consumer. Where a Relu or Clip (ReLU6) is the Conv's only consumer, the pair goes after it: ORT
removes a Relu/Clip in front of a Q whose range it cannot change (ReluQuantFusion,
ClipQuantFusion), which holds for calibrated ranges since they never exceed the values seen. An
Add of two such tensors (a residual) has its output quantized too, and ORT folds it into QLinearAdd.
"""

from __future__ import annotations

import onnx

from export.int8.qdq import WeightedNode, weighted_nodes

ACTIVATIONS = ("Relu", "Clip")


def conv_output_tensors(model: onnx.ModelProto, nodes: list[WeightedNode]) -> list[str]:
    """The tensors to quantize where they are made, in graph order, for the Convs among ``nodes``
    (the nodes being quantized). A tensor stays float where it is a graph output, or where a
    weighted node left in float reads it (keep-float promises that layer a float input)."""
    graph = model.graph
    readers = _readers(graph)
    quantized = {w.name for w in nodes}
    kept_float = {w.name for w in weighted_nodes(model)} - quantized
    graph_outputs = {o.name for o in graph.output}
    chosen: dict[str, None] = {}  # ordered, with fast membership
    for node in graph.node:
        if node.op_type == "Conv" and node.name in quantized:
            tensor = _after_activation(node.output[0], readers)
        elif node.op_type == "Add" and all(name in chosen for name in node.input):
            tensor = node.output[0]
        else:
            continue
        if tensor not in graph_outputs and not any(r.name in kept_float for r in readers.get(tensor, ())):
            chosen[tensor] = None
    return list(chosen)


def _readers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):  # a node reading one tensor twice is one reader
            readers.setdefault(name, []).append(node)
    return readers


def _after_activation(tensor: str, readers: dict[str, list[onnx.NodeProto]]) -> str:
    """The output of the Relu/Clip that is ``tensor``'s only reader, else ``tensor`` itself."""
    only = readers.get(tensor, [])
    return only[0].output[0] if len(only) == 1 and only[0].op_type in ACTIVATIONS else tensor
