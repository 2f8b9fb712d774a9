"""Atomic writes: a file or a directory appears whole under its final name, or not at all.

Everything is written under a temporary name beside its destination (same filesystem, so the
final rename is atomic) and renamed into place only when complete; a failure or an interrupt
removes the temporary. Every writer of this toolkit goes through these three.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from compress.core.errors import OutputError

# Raised while writing, these can only be about the destination (a full or read-only disk): one line
# naming it and the fix. Other errors of the caller's code pass through as they are.
_FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(out) as tmp:`` write the file ``tmp``; on success it becomes ``out``.

    ``tmp`` keeps ``out``'s suffix (``torch.export.save`` and ONNX tools look at it).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(destination_problem(path, exc)) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.errno not in _FULL_OR_READ_ONLY:
                raise
            raise OutputError(destination_problem(path, exc)) from exc
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes it private
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(destination_problem(path, exc)) from exc
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
        try:
            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.partial-", dir=self.out_dir.parent))
        except OSError as exc:
            raise OutputError(destination_problem(self.out_dir, exc)) from exc
        return self.path

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:  # an error, Ctrl-C or SIGTERM: nothing of this run stays
            if isinstance(exc, OSError) and exc.errno in _FULL_OR_READ_ONLY:
                shutil.rmtree(self.path, ignore_errors=True)
                raise OutputError(destination_problem(self.out_dir, exc)) from exc
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        old = None
        try:
            self.path.chmod(0o755)  # mkdtemp makes it private
            if self.out_dir.exists() or self.out_dir.is_symlink():
                old = self.out_dir.parent / f".{self.out_dir.name}.old-{os.getpid()}"
                os.replace(self.out_dir, old)
            os.replace(self.path, self.out_dir)
        except OSError as exc:
            if old is not None and not self.out_dir.exists():
                os.replace(old, self.out_dir)  # the previous output goes back where it was
            shutil.rmtree(self.path, ignore_errors=True)
            raise OutputError(destination_problem(self.out_dir, exc)) from exc
        if old is not None:
            remove_path(old)
        return False


def full_or_read_only(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself or one it wraps) that can only be about the destination, a
    full or read-only disk: a writer that wraps errors lets this one reach the one-line report."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in _FULL_OR_READ_ONLY:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def remove_path(path: Path) -> None:
    """Delete a file, a symlink (not what it points to) or a directory tree."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def destination_problem(path: Path, exc: OSError) -> str:
    """One line: what is wrong with the place ``path`` is written to, and what to do."""
    reason = exc.strerror or str(exc)
    blocking = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        return f"cannot write {path}: {blocking} is a file, not a directory; choose another destination"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left to write {path} ({reason}); free some space or write somewhere else"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {path} ({reason}); choose a destination in a writable directory"
    return f"cannot write {path} ({reason}); choose another destination"
