"""Checking ONNX files we write, and giving their outputs the names the user will see."""

from __future__ import annotations

from pathlib import Path

import onnx

from compress.core.errors import ExportError


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


def check_and_infer(path: Path, name: str | None = None) -> onnx.ModelProto:
    """``onnx.checker`` on the file, then shape inference; errors name the file (or ``name``)."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
        return onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=False)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{name or path.name} failed the ONNX checker: {str(exc).splitlines()[0]}") from exc
