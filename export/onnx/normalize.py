"""An ONNX file from any exporter, made into the one form every later step expects.

Exporters other than PyTorch's write graphs that are valid but awkward: weights held in
``Constant`` nodes instead of initializers (a quantizer then finds no constant weights), weights
also listed as graph inputs (ONNX Runtime treats those as overridable and its quantizer skips
them), old opsets (per-channel QDQ needs 13), and no shape information. ``normalize_onnx``
rewrites a copy once, so the INT8 step, the search and the sensitivity analysis all see the same
graph; the caller checks the copy computes what the original does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import numpy_helper, version_converter

from compress.core.errors import ExportError, first_line

MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear
EXTERNAL_DATA_ABOVE = 1_500_000_000  # protobuf's 2 GB limit, with room for the graph


@dataclass
class Normalized:
    constants_to_initializers: int = 0
    initializers_dropped_from_inputs: int = 0
    opset_before: int = 0
    opset_after: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.constants_to_initializers or self.initializers_dropped_from_inputs or self.opset_after != self.opset_before)

    def to_json(self) -> dict:
        return {"constants_to_initializers": self.constants_to_initializers,
                "initializers_dropped_from_inputs": self.initializers_dropped_from_inputs,
                "opset": [self.opset_before, self.opset_after], "notes": self.notes}


def normalize_onnx(src: Path, dst: Path) -> Normalized:
    """Write ``dst``: ``src`` with constant weights as initializers, none of them a graph input,
    at opset ``MIN_OPSET`` or newer, shapes inferred, checked."""
    model = onnx.load(str(src))  # external data included: dst is written whole
    result = Normalized(opset_before=_opset(model))
    result.constants_to_initializers = _constants_to_initializers(model.graph)
    result.initializers_dropped_from_inputs = _drop_initializer_inputs(model.graph)
    if result.opset_before < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:  # noqa: BLE001 - onnx raises bare RuntimeErrors and ValidationErrors here
            result.notes.append(f"kept opset {result.opset_before}: onnx's version converter failed ({first_line(exc)})")
    result.opset_after = _opset(model)
    # weights no longer listed as inputs need IR 4 or newer; a converted opset may need newer still
    model.ir_version = max(model.ir_version, onnx.helper.find_min_ir_version_for(list(model.opset_import)), 4)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - a graph shape inference cannot follow still runs
        result.notes.append(f"shape inference incomplete: {first_line(exc)}")
    try:
        onnx.checker.check_model(model, full_check=False)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{src} could not be normalized to a valid ONNX graph ({first_line(exc)}); re-export it at opset "
                          f"{MIN_OPSET} or newer") from exc
    large = model.ByteSize() > EXTERNAL_DATA_ABOVE
    onnx.save(model, str(dst), save_as_external_data=large, location=f"{dst.name}.data" if large else None)
    return result


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _constants_to_initializers(graph: onnx.GraphProto) -> int:
    """``Constant`` nodes of the main graph holding a tensor become initializers of the same name.
    Subgraphs (If/Loop bodies) keep theirs: their scoping differs and quantizers do not enter them."""
    kept, moved = [], 0
    for node in graph.node:
        tensor = _constant_value(node)
        if tensor is None:
            kept.append(node)
            continue
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        moved += 1
    if moved:
        del graph.node[:]
        graph.node.extend(kept)
    return moved


def _constant_value(node: onnx.NodeProto) -> onnx.TensorProto | None:
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attr.t)
            return tensor
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return numpy_helper.from_array(_attribute_array(attr))
    return None  # sparse_value, strings: left as they are


def _attribute_array(attr: onnx.AttributeProto):
    import numpy as np

    value = onnx.helper.get_attribute_value(attr)
    dtype = np.float32 if attr.name.startswith("value_float") else np.int64
    return np.asarray(value, dtype=dtype)


def _drop_initializer_inputs(graph: onnx.GraphProto) -> int:
    """Old exporters (IR < 4) list every weight as a graph input too; ONNX Runtime then lets a feed
    override it, and its quantizer leaves it in float. An initializer is a constant: drop the input."""
    weights = {t.name for t in graph.initializer}
    kept = [i for i in graph.input if i.name not in weights]
    dropped = len(graph.input) - len(kept)
    if dropped:
        del graph.input[:]
        graph.input.extend(kept)
    return dropped
