"""The runner's TensorRT step (``--int8 --target tensorrt``): build the engine from
model.int8.qdq.onnx where TensorRT and a GPU exist; elsewhere say exactly what is missing and
how to build it on the target, where the QDQ file (always written) is all it needs."""

from __future__ import annotations

from pathlib import Path

from export.tensorrt import TensorRTEngineConfig, build_engine
from export.trt_available import tensorrt_missing_reason


def tensorrt_step(stage: Path, qdq_path: Path, specs, config: TensorRTEngineConfig, progress) -> dict:
    command = f"compress build-engine {qdq_path.name}" + (f" --shapes {config.shapes}" if config.shapes else "")
    missing = tensorrt_missing_reason()
    if missing:
        progress.say(f"  no engine built here ({missing}); on the target machine run: {command}")
        return {"built": False, "reason": missing, "build_on_target": command}
    meta = build_engine(qdq_path, stage, specs, config)
    progress.say(f"  {meta['file']}: " + ", ".join(f"{k} {v}" for k, v in sorted(meta["layer_precisions"].items())))
    if meta.get("warning"):
        progress.say(f"  warning: {meta['warning']}")
    return {"built": True, **meta}
