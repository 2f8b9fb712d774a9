"""``OnnxExportConfig``: the model as ``model.onnx``, checked against PyTorch on two input shapes.
An ONNX input is normalized (``export.onnx.normalize``) and checked to compute what the
original computes on the evaluation inputs: the original stays the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.core.errors import ExportError
from compress.core.registry import register_handler
from compress.pipeline.state import RunState
from export.onnx.export import OnnxExportConfig, export_verified
from export.onnx.normalize import normalize_onnx
from export.onnx.session import make_session, run_session

NORMALIZED_TOLERANCE = 1e-4  # relative to the output's scale: rewriting constants and opsets changes no arithmetic


@register_handler(OnnxExportConfig)
def onnx_export_step(config: OnnxExportConfig, state: RunState) -> None:
    path = state.stage / config.outputs()["onnx"]
    if state.original.is_onnx:
        with state.progress.step("Normalizing the ONNX input"):
            state.report["export"] = normalize_checked(state.original.source, path, state.data.evaluation.batches[0], state.options.threads)
            if state.report["export"]["normalized"]["notes"]:
                state.progress.say("  " + "; ".join(state.report["export"]["normalized"]["notes"]))
    else:
        with state.progress.step(f"Exporting ONNX (opset {config.opset}) and checking parity"):
            parity = export_verified(state.model, path, config)
            state.report["export"] = {"opset": config.opset, "parity": parity.to_json()}
            state.progress.say(f"  parity: max abs error {parity.max_abs_error:.2e}, max rel error {parity.max_rel_error:.2e}")
    state.files["onnx"] = path


def normalize_checked(source: Path, out: Path, batch: dict, threads: int) -> dict:
    """``out``: ``source`` normalized, refused if its outputs differ from the original's on ``batch``."""
    normalized = normalize_onnx(source, out)
    before = run_session(make_session(source, threads, spin=False), batch)
    after = run_session(make_session(out, threads, spin=False), batch)
    worst = 0.0
    for a, b in zip(before, after):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            raise ExportError(f"normalizing {source} changed an output's shape {list(a.shape)} -> {list(b.shape)}; please report it")
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12)) if a.size else 0.0)
    if worst > NORMALIZED_TOLERANCE:
        raise ExportError(f"normalizing {source} changed its outputs (relative error {worst:.2e}); please report it")
    return {"source": "the input is already ONNX; normalized, and it stays the reference",
            "normalized": {**normalized.to_json(), "max_rel_error": worst}}
