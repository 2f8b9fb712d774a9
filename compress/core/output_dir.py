"""Where a run's output directory goes, and whether it may go there.

An existing output is replaced only with ``force`` (and only at the end, through
``compress.core.atomic.StagedDir``), and only when ``compress`` wrote it (its manifest.json
says so) or it is empty, unless ``force_any`` says to replace any directory; the user's model is
never written over or inside.
"""

from __future__ import annotations

import json
from pathlib import Path

from compress.core.errors import OutputError

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "compress.manifest/1"


def default_output_dir(model_path: Path) -> Path:
    return model_path.parent / f"{model_path.name}.compressed"


def written_by_compress(directory: Path) -> bool:
    """Whether ``directory`` holds a manifest that ``compress`` wrote (``schema: compress.manifest/...``)."""
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("schema", "")).startswith("compress.manifest/")


def check_output_dir(out_dir: Path, model_path: Path, force: bool, force_any: bool = False) -> None:
    out, src = out_dir.resolve(), model_path.resolve()
    if out == src or src in out.parents:
        raise OutputError(f"output {out_dir} is inside the input model {model_path}; choose an --out outside it")
    if out in src.parents:
        raise OutputError(f"output {out_dir} contains the input model {model_path}; replacing it would delete the model; choose another --out")
    if out.exists() and not force:
        raise OutputError(f"output {out_dir} already exists; pass --force to replace it or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out_dir} exists and is a file; choose another --out")
    if out.exists() and not force_any and any(out.iterdir()) and not written_by_compress(out):
        raise OutputError(f"output {out_dir} was not written by compress (it has no compress {MANIFEST_NAME}), so --force "
                          "will not delete it; choose another --out, or add --force-any to replace it and everything in it")


