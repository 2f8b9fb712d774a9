"""Does the ONNX file compute what the PyTorch model computes? Same inputs, both runtimes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from compress.core.errors import ExportError
from compress.core.model import Model
from compress.core.spec import random_inputs
from compress.load.data import tokenize
from compress.load.text_corpus import evaluation_texts
from export.onnx.session import make_session, run_session


@dataclass(frozen=True)
class ParityResult:
    max_abs_error: float
    max_rel_error: float  # max |onnx - torch| / max |torch|, per output, worst output
    shapes_checked: list[str]

    def to_json(self) -> dict:
        return asdict(self)


def check_parity(model: Model, onnx_path: Path, input_sets: list[dict[str, np.ndarray]], atol: float, rtol: float) -> ParityResult:
    """Run both on each input set (several shapes exercise the dynamic axes); raise over tolerance."""
    session = make_session(onnx_path, spin=False)
    try:
        worst_abs = worst_rel = 0.0
        shapes = []
        for arrays in input_sets:
            expected = model.forward_numpy(arrays)
            got = run_session(session, arrays)
            shapes.append(",".join("x".join(map(str, a.shape)) for a in arrays.values()))
            if len(got) != len(expected):
                raise ExportError(f"{onnx_path.name} has {len(got)} outputs but the model returns {len(expected)}")
            for name, exp, out in zip(model.output_names, expected, got):
                if exp.shape != out.shape:
                    raise ExportError(f"{onnx_path.name}: output {name} has shape {out.shape}, PyTorch gives {exp.shape} (inputs {shapes[-1]})")
                diff = np.abs(out.astype(np.float64) - exp)
                max_abs = float(diff.max()) if diff.size else 0.0
                max_rel = max_abs / max(float(np.abs(exp).max()) if exp.size else 0.0, 1e-12)
                worst_abs, worst_rel = max(worst_abs, max_abs), max(worst_rel, max_rel)
                if not np.all(diff <= atol + rtol * np.abs(exp)):
                    raise ExportError(
                        f"{onnx_path.name} does not match PyTorch on output {name} (inputs {shapes[-1]}): max abs error "
                        f"{max_abs:.3g}, max rel error {max_rel:.3g}, over atol={atol} rtol={rtol}; check for ops whose "
                        "export differs, or loosen the tolerance if this is expected"
                    )
        return ParityResult(worst_abs, worst_rel, shapes)
    finally:
        del session


def parity_inputs(model: Model) -> list[dict]:
    """Two shapes, so the check also proves the dynamic axes work."""
    sets = []
    for batch, seq, seed in ((2, 16, 11), (3, 24, 12)):
        if model.tokenizer is not None:
            sets.append(tokenize(model, list(evaluation_texts()[seed:seed + batch]), seq))
        else:
            sets.append(random_inputs(model.inputs, {"batch": batch, "sequence": seq}, seed=seed))
    return sets
