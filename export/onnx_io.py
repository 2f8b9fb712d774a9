"""Reading and checking ONNX files, and giving their outputs the names the user will see."""

from __future__ import annotations

from pathlib import Path

import onnx

from compress.errors import ExportError, InputError
from compress.model import Model
from compress.spec import TensorSpec

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.BOOL: "bool",
}


def graph_input_specs(proto: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    initializers = {i.name for i in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        dims = []
        for i, d in enumerate(tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            else:
                dims.append(d.dim_param or ("batch" if i == 0 else f"dim_{i}"))
        specs.append(TensorSpec(value.name, tuple(dims), _ONNX_DTYPES.get(tensor_type.elem_type, "float32")))
    return tuple(specs)


def load_onnx_model(path: Path, task: str, input_specs: tuple[TensorSpec, ...] | None) -> Model:
    """An ONNX file as a Model: export is skipped, the FP32 ONNX itself is the reference."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise InputError(f"{path} is not a valid ONNX model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); re-export or re-copy it") from exc
    specs = graph_input_specs(proto)
    if input_specs:
        by_name = {s.name: s for s in specs}
        unknown = [s.name for s in input_specs if s.name not in by_name]
        if unknown:
            raise InputError(f"--input names {unknown} are not inputs of {path}; its inputs are {[str(s) for s in specs]}")
    outputs = tuple(o.name for o in proto.graph.output)
    if task == "generic" and len(proto.graph.output) == 1:
        dims = proto.graph.output[0].type.tensor_type.shape.dim
        if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value > 1:
            task = "classification"
    return Model(None, specs, task, path, "onnx", outputs)


def rename_outputs(proto: onnx.ModelProto, names: tuple[str, ...]) -> None:
    """Give graph outputs the requested names, moving aside any inner value that already uses one.

    The exporter's own output renaming can collide with an inner value of the same name
    (an embedding lookup is called ``embedding``), which makes an invalid graph.
    """
    graph = proto.graph
    current = [o.name for o in graph.output]
    taken = {v for n in graph.node for v in (*n.input, *n.output)} | {i.name for i in graph.initializer} | {i.name for i in graph.input}
    for old, new in zip(current, names):
        if old == new:
            continue
        if new in taken:
            _rename_value(graph, new, _unique(f"{new}_inner", taken))
        _rename_value(graph, old, new)
        taken.add(new)


def _unique(base: str, taken: set[str]) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        node.output[:] = [new if v == old else v for v in node.output]
    for coll in (graph.output, graph.value_info, graph.input):
        for v in coll:
            if v.name == old:
                v.name = new


def check_and_infer(path: Path) -> onnx.ModelProto:
    """``onnx.checker`` on the file, then shape inference; errors name the file."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
        return onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=False)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{path.name} failed the ONNX checker: {str(exc).splitlines()[0]}") from exc
