"""Static TensorRT-compatibility check of a QDQ-form INT8 ONNX graph.

TensorRT 10+ builds INT8 only through explicit quantization (QuantizeLinear/DequantizeLinear
in a strongly typed network); its implicit calibrators are gone. When a graph breaks its rules
the parser fails, or the builder silently keeps layers in float, with messages that name
layers rather than ONNX nodes. This check names the offending node before a build is tried.
Only the top-level graph is checked: our QDQ export writes no subgraphs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compress.core.errors import ExportError

MIN_OPSET, MAX_OPSET = 13, 21  # per-channel DequantizeLinear needs 13; TensorRT 10's parser stops at 21
_QDQ = ("QuantizeLinear", "DequantizeLinear")
# Our exporter quantizes only the inputs of these ops; a DequantizeLinear anywhere else is a
# misplaced pair that TensorRT cannot fuse into an INT8 kernel.
_DQ_CONSUMERS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
_BIAS_INPUT = {"Gemm": 2, "Conv": 2, "ConvTranspose": 2}
_FLOAT_SCALES = (TensorProto.FLOAT, TensorProto.FLOAT16)
_NEEDS = f"TensorRT needs opset {MIN_OPSET} to {MAX_OPSET}"


@dataclass(frozen=True)
class Violation:
    node: str  # node name; "<model>" for the opset
    op_type: str
    problem: str  # one sentence: what is wrong and what TensorRT needs instead

    def __str__(self):
        return f"{self.node} ({self.op_type}): {self.problem}"


def check_tensorrt_qdq(model: onnx.ModelProto) -> list[Violation]:
    """Every rule violation in ``model``, in graph order; empty when TensorRT can build it."""
    graph = model.graph
    consts = _constants(graph)
    consumers = defaultdict(list)  # tensor name -> [(node, input index)]
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name:
                consumers[name].append((node, index))
    outputs = {o.name for o in graph.output}
    found = _opset_violations(model)
    for node in graph.node:
        if node.op_type not in _QDQ:
            continue
        problems = _zero_point(node, consts) + _types(node, consts) + _scale(node, consts)
        if node.op_type == "QuantizeLinear":
            problems += _pairing(node, consumers, outputs)
        else:
            problems += _weight_axis(node, consts, consumers) + _placement(node, consumers, outputs)
        found += [Violation(_name(node), node.op_type, p) for p in problems]
    return found


def require_tensorrt_qdq(model: onnx.ModelProto, path_label: str) -> None:
    """Raise ExportError listing every violation, one per line, if there are any."""
    found = check_tensorrt_qdq(model)
    if found:
        lines = "\n".join(f"  {v}" for v in found)
        plural = "" if len(found) == 1 else "s"
        raise ExportError(f"{path_label} is not TensorRT-compatible ({len(found)} violation{plural}):\n{lines}")


def _opset_violations(model) -> list[Violation]:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        problem = f"has no default-domain (ai.onnx) opset; {_NEEDS}"
    elif versions[0] < MIN_OPSET:
        problem = f"uses opset {versions[0]}, too old for per-channel DequantizeLinear; {_NEEDS}"
    elif versions[0] > MAX_OPSET:
        problem = f"uses opset {versions[0]}, newer than TensorRT 10's ONNX parser supports; {_NEEDS}"
    else:
        return []
    return [Violation("<model>", "opset", problem)]


def _zero_point(node, consts) -> list[str]:
    if len(node.input) < 3 or not node.input[2]:
        return ["has no zero-point input, which ONNX reads as uint8 quantization; "
                "TensorRT needs an explicit INT8 zero point of 0"]
    zp = consts.get(node.input[2])
    if zp is None:
        return [f"zero point {node.input[2]!r} is computed at runtime; TensorRT needs a constant INT8 zero point of 0"]
    if zp.data_type == TensorProto.INT8 and np.any(numpy_helper.to_array(zp) != 0):
        return ["has a nonzero zero point (asymmetric quantization); TensorRT supports only symmetric INT8 with zero point 0"]
    return []


def _types(node, consts) -> list[str]:
    """Rule: INT8 only. The zero point, a constant weight and Q's output_dtype all carry the type."""
    found = {consts[n].data_type for n in node.input[2:3] if n in consts}
    if node.op_type == "DequantizeLinear" and node.input[0] in consts:
        found.add(consts[node.input[0]].data_type)
    if _attr(node, "output_dtype", 0):
        found.add(_attr(node, "output_dtype", 0))
    return [f"quantizes to {TensorProto.DataType.Name(t)}; TensorRT supports only INT8 (with zero point 0) here"
            for t in sorted(found - {TensorProto.INT8})]


def _scale(node, consts) -> list[str]:
    scale = consts.get(node.input[1])
    if scale is None:
        return [f"scale {node.input[1]!r} is computed at runtime; TensorRT needs a constant scale"]
    if scale.data_type not in _FLOAT_SCALES:
        return [f"scale is {TensorProto.DataType.Name(scale.data_type)}; TensorRT needs a FLOAT or FLOAT16 scale"]
    values = numpy_helper.to_array(scale)
    problems = [] if np.all(np.isfinite(values) & (values > 0)) else [
        "scale has zero, negative or non-finite values; TensorRT needs finite scales > 0"]
    activation = node.op_type == "QuantizeLinear" or node.input[0] not in consts
    if activation and (values.size != 1 or values.ndim > 1):
        problems.append(f"quantizes an activation with a scale of shape {list(values.shape)}; "
                        "TensorRT needs a scalar (per-tensor) scale for activations")
    return problems


def _pairing(node, consumers, outputs) -> list[str]:
    y = node.output[0]
    bad = [f"{_name(c)} ({c.op_type})" for c, _ in consumers[y] if c.op_type != "DequantizeLinear"]
    bad += ["the graph output"] if y in outputs else []
    if bad or not consumers[y]:
        return [f"output feeds {', '.join(bad) or 'nothing'}; TensorRT needs each QuantizeLinear "
                "to feed only DequantizeLinear nodes (Q->DQ pairs)"]
    return []


def _weight_axis(node, consts, consumers) -> list[str]:
    weight, scale = consts.get(node.input[0]), consts.get(node.input[1])
    if weight is None or scale is None or _size(scale) <= 1:
        return []  # activation or per-tensor weight: no axis to check
    rank, axis = len(weight.dims), _attr(node, "axis", 1)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        return [f"has per-channel axis {_attr(node, 'axis', 1)}, out of range for weight "
                f"{node.input[0]!r} of rank {rank}; TensorRT needs the output-channel axis"]
    problems = []
    for consumer, index in consumers[node.output[0]]:
        want = _output_channel_axis(consumer, index, rank)
        if want is not None and axis != want:
            problems.append(f"quantizes weight {node.input[0]!r} per channel on axis {axis}, but "
                            f"{_name(consumer)} ({consumer.op_type}) has output channels on axis {want}; "
                            "TensorRT needs the per-channel axis to be the output-channel axis")
    if _size(scale) != weight.dims[axis]:
        problems.append(f"has {_size(scale)} scales for axis {axis} of size {weight.dims[axis]}; "
                        "TensorRT needs exactly one scale per channel")
    return problems


def _output_channel_axis(consumer, index, rank) -> int | None:
    if index != 1:
        return None  # only the weight input (index 1) has a known channel layout
    if consumer.op_type == "MatMul":
        return rank - 1  # [.., K, N]
    if consumer.op_type == "Gemm":
        return 0 if _attr(consumer, "transB", 0) else 1
    return {"Conv": 0, "ConvTranspose": 1}.get(consumer.op_type)  # [O, I, ..] and [I, O/g, ..]


def _placement(node, consumers, outputs) -> list[str]:
    problems, bad = [], []
    for consumer, index in consumers[node.output[0]]:
        if consumer.op_type not in _DQ_CONSUMERS:
            bad.append(f"{_name(consumer)} ({consumer.op_type})")
        elif index == _BIAS_INPUT.get(consumer.op_type):
            problems.append(f"dequantizes the bias of {_name(consumer)} ({consumer.op_type}); "
                            "TensorRT needs biases kept in float")
    bad += ["the graph output"] if node.output[0] in outputs else []
    if bad:
        problems.append(f"output feeds {', '.join(bad)}; TensorRT needs DequantizeLinear to feed only "
                        f"{', '.join(_DQ_CONSUMERS)}")
    return problems


def _constants(graph) -> dict[str, TensorProto]:
    """Initializers and Constant-node outputs, by tensor name."""
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "Constant" or not node.attribute:
            continue
        attr = node.attribute[0]
        value = helper.get_attribute_value(attr)
        if attr.name == "value":
            consts[node.output[0]] = value
        elif attr.name in ("value_float", "value_floats"):
            consts[node.output[0]] = numpy_helper.from_array(np.asarray(value, np.float32))
        elif attr.name in ("value_int", "value_ints"):
            consts[node.output[0]] = numpy_helper.from_array(np.asarray(value, np.int64))
    return consts


def _attr(node, name, default):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _size(tensor) -> int:
    return int(np.prod(tensor.dims))  # dims of a scalar are [], whose product is 1


def _name(node) -> str:
    return node.name or node.output[0]
