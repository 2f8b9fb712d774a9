"""The output directory is built beside its destination and renamed into place at the end.

So a failed run leaves nothing half-written, an existing output is replaced only with
``force``, and the user's model is never written over or inside.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from compress.errors import OutputError


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


class StagedDir:
    """``with StagedDir(out) as tmp:`` write into ``tmp``; on success it becomes ``out``."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.partial-", dir=self.out_dir.parent))
        return self.path

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        self.path.chmod(0o755)  # mkdtemp makes it private
        old = None
        if self.out_dir.exists():
            old = self.out_dir.parent / f".{self.out_dir.name}.old-{os.getpid()}"
            os.replace(self.out_dir, old)
        os.replace(self.path, self.out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False
