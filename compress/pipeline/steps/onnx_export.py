"""``OnnxExportConfig``: the model as ``model.onnx``, checked against PyTorch on two input shapes.
An ONNX input is copied as it is: it is its own reference."""

from __future__ import annotations

import shutil

from compress.core.registry import register_handler
from compress.pipeline.state import RunState
from export.onnx.export import OnnxExportConfig, export_verified


@register_handler(OnnxExportConfig)
def onnx_export_step(config: OnnxExportConfig, state: RunState) -> None:
    path = state.stage / config.outputs()["onnx"]
    if state.original.is_onnx:
        shutil.copyfile(state.original.source, path)
        state.report["export"] = {"skipped": "the input is already ONNX; it is the reference"}
    else:
        with state.progress.step(f"Exporting ONNX (opset {config.opset}) and checking parity"):
            parity = export_verified(state.model, path, config)
            state.report["export"] = {"opset": config.opset, "parity": parity.to_json()}
            state.progress.say(f"  parity: max abs error {parity.max_abs_error:.2e}, max rel error {parity.max_rel_error:.2e}")
    state.files["onnx"] = path
