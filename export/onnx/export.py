"""PyTorch → ONNX (opset ≥ 17) with dynamic axes, checked and shape-inferred.

``torch.export``-based export for modules and ExportedPrograms; TorchScript archives can
only go through the TorchScript exporter, so they take it.
"""

from __future__ import annotations

import inspect
import io
import logging
import re
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import ClassVar

import onnx
import torch

from compress.core.atomic import atomic_path, full_or_read_only
from compress.core.errors import ConfigError, ExportError
from compress.core.model import Model
from compress.core.registry import ONNX_EXPORT, StepConfig, StepKind, register_config
from export.onnx.checks import check_and_infer, rename_outputs
from export.onnx.parity import ParityResult, check_parity, parity_inputs

FILE_NAME = "model.onnx"
_TWO_GB = 2**31 - 2**27  # protobuf's limit, with headroom for the graph itself


@register_config
class OnnxExportConfig(StepConfig):
    """Export to ONNX and verify against PyTorch on the same inputs."""

    kind: ClassVar[StepKind] = ONNX_EXPORT

    opset: int = 18
    dynamic: bool = True  # keep the spec's named axes dynamic (batch, and sequence for text)
    atol: float = 1e-4
    rtol: float = 1e-3

    def outputs(self) -> dict[str, str | None]:
        return {"onnx": FILE_NAME}

    def __post_init__(self):
        if self.opset < 17:
            raise ConfigError(f"opset {self.opset} is too old; use 17 or newer")
        if self.atol < 0 or self.rtol < 0:
            raise ConfigError("atol and rtol must be >= 0")


def export_onnx(model: Model, example: dict, out_path: Path, config: OnnxExportConfig) -> onnx.ModelProto:
    """Write ``out_path`` (atomically) and return the checked, shape-inferred graph."""
    args = model.torch_args(example)
    large = sum(p.numel() * p.element_size() for p in model.module.parameters()) > _TWO_GB
    with atomic_path(out_path) as tmp:
        with model.export_view() as module, _quiet_exporter():
            try:
                if isinstance(module, torch.jit.ScriptModule):
                    _export_torchscript(module, args, model, tmp, config)
                else:
                    _export_dynamo(module, args, model, tmp, config, large)
            except ExportError:
                raise
            except Exception as exc:  # the exporters raise many unrelated types
                disk = full_or_read_only(exc)
                if disk is not None:
                    raise OSError(disk.errno, disk.strerror) from None  # the destination's fault: atomic_path reports it
                raise ExportError(_explain(exc)) from exc
        proto = onnx.load(str(tmp))
        rename_outputs(proto, model.output_names)
        _name_dynamic_axes(proto, model, config.dynamic)
        for leftover in tmp.parent.glob(tmp.name + "*.data"):  # the exporter's external data, named after tmp
            leftover.unlink()
        onnx.save(proto, str(tmp), save_as_external_data=large, location=out_path.name + ".data" if large else None)
        checked = check_and_infer(tmp, out_path.name)
    return checked


def export_verified(model: Model, out_path: Path, config: OnnxExportConfig | None = None,
                    input_sets: list[dict] | None = None) -> ParityResult:
    """Export ``model`` to ``out_path`` and check the file against PyTorch on two input shapes
    (``parity_inputs``); over tolerance it raises ExportError and the file is removed."""
    config = config or OnnxExportConfig()
    input_sets = input_sets or parity_inputs(model)
    export_onnx(model, input_sets[0], out_path, config)
    try:
        return check_parity(model, out_path, input_sets, config.atol, config.rtol)
    except ExportError:
        out_path.unlink(missing_ok=True)
        raise


def dynamic_shapes_for(module, model: Model):
    """``torch.export``'s dynamic_shapes for the spec's named axes."""
    dynamic_shapes = tuple({axis: torch.export.Dim.DYNAMIC for axis in spec.dynamic_axes} or None for spec in model.inputs)
    kinds = [p.kind for p in inspect.signature(module.forward).parameters.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:  # forward(*tensors): one entry for the whole tuple
        dynamic_shapes = (dynamic_shapes,)
    return dynamic_shapes


def _export_dynamo(module, args, model: Model, out_path: Path, config: OnnxExportConfig, large: bool) -> None:
    dynamic_shapes = dynamic_shapes_for(module, model) if config.dynamic else None
    torch.onnx.export(
        module, args, str(out_path), input_names=model.input_names, opset_version=config.opset,
        dynamo=True, dynamic_shapes=dynamic_shapes, external_data=large, verbose=False,
    )


def _export_torchscript(module, args, model: Model, out_path: Path, config: OnnxExportConfig) -> None:
    dynamic_axes = {s.name: s.dynamic_axes for s in model.inputs if s.dynamic_axes} if config.dynamic else None
    if dynamic_axes:
        dynamic_axes.update({name: {0: "batch"} for name in model.output_names})
    torch.onnx.export(
        module, args, str(out_path), input_names=model.input_names, output_names=list(model.output_names),
        opset_version=config.opset, dynamo=False, dynamic_axes=dynamic_axes,
    )


def _name_dynamic_axes(proto: onnx.ModelProto, model: Model, dynamic: bool) -> None:
    """Replace the exporter's symbol names (s0, s77...) with the spec's axis names everywhere."""
    rename = {}
    specs = {s.name: s for s in model.inputs}
    for value in proto.graph.input:
        spec = specs.get(value.name)
        if spec is None:
            continue
        for dim, want in zip(value.type.tensor_type.shape.dim, spec.shape):
            if dim.dim_param and isinstance(want, str):
                rename[dim.dim_param] = want
    for coll in (proto.graph.input, proto.graph.output, proto.graph.value_info):
        for value in coll:
            for dim in value.type.tensor_type.shape.dim:
                if dim.dim_param in rename:
                    dim.dim_param = rename[dim.dim_param]


_UNSUPPORTED = (
    re.compile(r"OpOverload\(op='([\w.]+)'"),
    re.compile(r"operator '([\w:.]+)'"),
    re.compile(r"Unsupported FX nodes: \{'call_function': \[([^\]]+)\]"),
)


def _explain(exc: Exception) -> str:
    text = "\n".join(str(e) for e in _chain(exc))
    for pattern in _UNSUPPORTED:
        match = pattern.search(text)
        if match:
            op = match.group(1).replace("::", ".").strip("'\" ")
            return (f"the ONNX exporter cannot handle operator {op}; register an ONNX translation for it "
                    "(torch.onnx.export custom_translation_table) or replace it in the model")
    root = list(_chain(exc))[-1]  # the exporters wrap the real reason in generic "step 1/3" errors
    lines = [ln.strip() for ln in str(root).splitlines() if ln.strip() and not ln.startswith("-")]
    return f"ONNX export failed: {lines[0] if lines else type(root).__name__}"


def _chain(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


class _quiet_exporter:
    """The exporter prints its progress and warns about torchvision; our progress lines say it once."""

    def __enter__(self):
        self._stdout = redirect_stdout(io.StringIO())
        self._stdout.__enter__()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._level = logging.getLogger("torch.onnx").level
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc_info):
        logging.getLogger("torch.onnx").setLevel(self._level)
        self._warnings.__exit__(*exc_info)
        return self._stdout.__exit__(*exc_info)
