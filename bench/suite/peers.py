"""The peers measured beside every job: what a user would otherwise reach for.

FP32 PyTorch is the reference itself. Beside it: PyTorch dynamic INT8, ONNX Runtime FP32 (the
parity-checked export of the original), ONNX Runtime `quantize_dynamic` with its default
arguments (what Optimum's ORT quantizer runs) and, given calibration data, `quantize_static` with
its defaults (QDQ, per-tensor INT8 weights, MinMax ranges). A peer that cannot be built is a note,
not an error.
"""

from __future__ import annotations

from pathlib import Path

from bench.suite.artifacts import Artifact, Job
from compress.core.errors import CompressError
from compress.core.model import Model
from export.onnx.export import export_verified


def peer_artifacts(job: Job, model: Model, work: Path, calibration: list[dict] | None = None) -> tuple[list[Artifact], list[tuple[str, str]]]:
    """``calibration``: batches (input name -> array) for the `quantize_static` peer; without them it is not built."""
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
        notes.append(("peers", "an engine or a compiled package has no PyTorch or ONNX form to build peers from"))
    if fp32_onnx is not None:
        try:
            peers.append(Artifact("peer:ort-quantize-dynamic", _ort_dynamic_defaults(fp32_onnx, work / "peer-ort-quantize-dynamic.onnx"),
                                  "onnx", "peer", "int8"))
        except Exception as exc:  # ORT's quantizer raises assorted types on graphs it cannot handle
            notes.append(("peer:ort-quantize-dynamic", f"onnxruntime.quantization.quantize_dynamic failed: {_first_line(exc)}"))
        if calibration:
            try:
                peers.append(Artifact("peer:ort-quantize-static", _ort_static_defaults(fp32_onnx, work / "peer-ort-quantize-static.onnx", calibration),
                                      "onnx", "peer", "int8"))
            except Exception as exc:
                notes.append(("peer:ort-quantize-static", f"onnxruntime.quantization.quantize_static failed: {_first_line(exc)}"))
        else:
            notes.append(("peer:ort-quantize-static", "no calibration data: give bench run --calib, or compress --calib"))
    return peers, notes


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _ort_dynamic_defaults(fp32_onnx: Path, out: Path) -> Path:
    from onnxruntime.quantization import quantize_dynamic

    from export.int8.ort_quantize import quiet_ort

    with quiet_ort():
        quantize_dynamic(fp32_onnx, out)  # default arguments, exactly as users run it
    return out


def _ort_static_defaults(fp32_onnx: Path, out: Path, calibration: list[dict]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    from export.int8.ort_quantize import quiet_ort

    class Batches(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(calibration)

        def get_next(self):
            return next(self._batches, None)

    with quiet_ort():
        quantize_static(fp32_onnx, out, Batches())  # default arguments: QDQ, QInt8, per-tensor, MinMax
    return out
