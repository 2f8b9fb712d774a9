"""The peers measured beside every job: what a user would otherwise reach for.

FP32 PyTorch is the reference itself. Beside it: PyTorch dynamic INT8, ONNX Runtime FP32 (the
parity-checked export of the original) and ONNX Runtime `quantize_dynamic` with its default
arguments (what Optimum's ORT quantizer runs). A peer that cannot be built is a note, not an error.
"""

from __future__ import annotations

from pathlib import Path

from bench.suite.artifacts import Artifact, Job
from compress.core.errors import CompressError
from compress.core.model import Model
from export.onnx.export import export_verified


def peer_artifacts(job: Job, model: Model, work: Path) -> tuple[list[Artifact], list[tuple[str, str]]]:
    ref, peers, notes = job.reference, [], []
    fp32_onnx = None
    if ref.kind == "torch":
        peers.append(Artifact("peer:pytorch-dynamic-int8", ref.path, "torch", "peer", "int8", "dynamic-int8"))
        existing = next((a for a in job.artifacts if a.name == "model.onnx"), None)
        if existing is not None and not job.model_passes:
            fp32_onnx = existing.path  # the directory's model.onnx is the original's parity-checked export
        else:
            try:
                export_verified(model, work / "peer-onnx-fp32.onnx")
                fp32_onnx = work / "peer-onnx-fp32.onnx"
                peers.append(Artifact("peer:onnx-fp32", fp32_onnx, "onnx", "peer"))
            except CompressError as exc:
                notes.append(("peer:onnx-fp32", f"the original does not export to ONNX: {exc}"))
    elif ref.kind == "onnx":
        fp32_onnx = ref.path
    else:
        notes.append(("peers", "an engine has no PyTorch or ONNX form to build peers from"))
    if fp32_onnx is not None:
        try:
            peers.append(Artifact("peer:ort-quantize-dynamic", _ort_dynamic_defaults(fp32_onnx, work / "peer-ort-quantize-dynamic.onnx"),
                                  "onnx", "peer", "int8"))
        except Exception as exc:  # ORT's quantizer raises assorted types on graphs it cannot handle
            notes.append(("peer:ort-quantize-dynamic", f"onnxruntime.quantization.quantize_dynamic failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))
    return peers, notes


def _ort_dynamic_defaults(fp32_onnx: Path, out: Path) -> Path:
    from onnxruntime.quantization import quantize_dynamic

    from export.int8.ort_quantize import quiet_ort

    with quiet_ort():
        quantize_dynamic(fp32_onnx, out)  # default arguments, exactly as users run it
    return out
