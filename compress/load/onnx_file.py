"""ONNX files as input models: their input specs, read from the graph; export is skipped and the
FP32 ONNX itself is the reference."""

from __future__ import annotations

from pathlib import Path

import onnx

from compress.core.errors import InputError
from compress.core.model import Model
from compress.core.spec import TensorSpec, check_against_file

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
        check_against_file(input_specs, specs, path)
    outputs = tuple(o.name for o in proto.graph.output)
    if task == "generic" and len(proto.graph.output) == 1:
        dims = proto.graph.output[0].type.tensor_type.shape.dim
        if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value > 1:
            task = "classification"
    return Model(None, specs, task, path, "onnx", outputs)


CHARSET_KEYS = ("character", "charset", "characters", "vocab")  # where OCR exporters (PaddleOCR, RapidOCR) keep the dictionary


def charset_from_metadata(path: Path) -> list[str] | None:
    """The recogniser's characters from the ONNX file's metadata (one per line), if it carries them."""
    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    text = next((props[k] for k in CHARSET_KEYS if k in props), None)
    return text.splitlines() if text else None
