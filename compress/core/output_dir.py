"""Where a run's output directory goes, and whether it may go there.

An existing output is replaced only with ``force`` (and only at the end, through
``compress.core.atomic.StagedDir``); the user's model is never written over or inside.
"""

from __future__ import annotations

from pathlib import Path

from compress.core.errors import OutputError


def default_output_dir(model_path: Path) -> Path:
    return model_path.parent / f"{model_path.name}.compressed"


def check_output_dir(out_dir: Path, model_path: Path, force: bool) -> None:
    out, src = out_dir.resolve(), model_path.resolve()
    if out == src or src in out.parents:
        raise OutputError(f"output {out_dir} is inside the input model {model_path}; choose an --out outside it")
    if out in src.parents:
        raise OutputError(f"output {out_dir} contains the input model {model_path}; replacing it would delete the model; choose another --out")
    if out.exists() and not force:
        raise OutputError(f"output {out_dir} already exists; pass --force to replace it or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out_dir} exists and is a file; choose another --out")


