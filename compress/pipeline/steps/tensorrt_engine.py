"""``TensorRTEngineConfig`` (``--int8 --target tensorrt``): build the engine from
model.int8.qdq.onnx where TensorRT and a GPU exist; elsewhere say exactly what is missing and
how to build it on the target, where the QDQ file (always written) is all it needs."""

from __future__ import annotations

from compress.core.registry import register_handler
from compress.pipeline.state import RunState
from export.tensorrt.available import tensorrt_missing_reason
from export.tensorrt.engine import TensorRTEngineConfig, build_engine


@register_handler(TensorRTEngineConfig)
def tensorrt_engine_step(config: TensorRTEngineConfig, state: RunState) -> None:
    qdq_path, say = state.files["onnx-qdq"], state.progress.say
    with state.progress.step("Building the TensorRT engine"):
        command = f"compress build-engine {qdq_path.name}" + (f" --shapes {config.shapes}" if config.shapes else "")
        missing = tensorrt_missing_reason()
        if missing:
            say(f"  no engine built here ({missing}); on the target machine run: {command}")
            state.report["tensorrt"] = {"built": False, "reason": missing, "build_on_target": command}
            return
        meta = build_engine(qdq_path, state.stage, state.original.inputs, config)
        say(f"  {meta['file']}: " + ", ".join(f"{k} {v}" for k, v in sorted(meta["layer_precisions"].items())))
        if meta.get("warning"):
            say(f"  warning: {meta['warning']}")
        state.report["tensorrt"] = {"built": True, **meta}
        state.files["engine"] = state.stage / meta["file"]
