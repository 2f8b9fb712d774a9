"""``Int8DynamicConfig`` (``--int8 --backend torch``): swap the Linear layers of a copy of the model
for ``Int8Linear`` (compress's INT8 kernels), save it as ``model.int8.pt2``, load that file back
and measure it like every other artifact (before any ONNX Runtime session of a later step)."""

from __future__ import annotations

from pathlib import Path

from compress.core.model import clone_model
from compress.core.registry import register_handler
from compress.load.loaders import load_model
from compress.ops import kernels
from compress.ops.cpu_features import cpu_isa
from compress.passes.int8_kernels import Int8DynamicConfig, quantize_linear_layers_
from compress.pipeline.measure import measure_torch
from compress.pipeline.state import RunState
from export.onnx.parity import parity_inputs
from export.pt2.program import export_program


@register_handler(Int8DynamicConfig)
def int8_kernels_step(config: Int8DynamicConfig, state: RunState) -> None:
    model = state.model
    path = state.stage / config.outputs()["pt2-int8"]
    with state.progress.step("Quantizing to INT8 in PyTorch (compress kernels)"):
        quantized = clone_model(model)
        summary = quantize_linear_layers_(quantized.module, config)
        check = export_program(model, quantized.module, parity_inputs(model), path)
    loaded = load_model(path, None, task=model.task)  # measure the file that ships, not the module in memory
    measure_torch(state, "pytorch-int8-kernels", loaded, backend="torch-kernels", precision="int8", file=path)
    status = kernels.status()
    section = {"config": config.to_json(), "describe": config.describe(), **summary, "export": check,
               "kernels": {"backend": status.backend, "reason": status.reason, "cpu_isa": cpu_isa(),
                           "library": Path(status.library).name if status.library else None}}
    state.report["int8"] = section
    state.files["pt2-int8"] = path
    state.progress.say(f"  {section['quantized_layers']} Linear layers INT8 ({len(section['fused_gelu'])} with GELU fused); "
                       f"kernels: {status.backend} ({section['kernels']['cpu_isa']})" + (f"; {status.reason}" if status.reason else ""))
