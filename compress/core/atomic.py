"""Atomic writes: a file or a directory appears whole under its final name, or not at all.

Everything is written under a temporary name beside its destination (same filesystem, so the
final rename is atomic) and renamed into place only when complete; a failure or an interrupt
removes the temporary. Every writer of this toolkit goes through these three.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(out) as tmp:`` write the file ``tmp``; on success it becomes ``out``.

    ``tmp`` keeps ``out``'s suffix (``torch.export.save`` and ONNX tools look at it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a reader never sees half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


class StagedDir:
    """``with StagedDir(out) as tmp:`` write into the directory ``tmp``; on success it becomes ``out``
    (replacing an existing ``out`` only then)."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
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
