"""Hostile destinations: read-only or full disks, --out through a file, a symlinked --out, a final
rename that fails. Each gives one line naming the problem and the fix, leaves no staged or old
directory behind, and changes no input (issue 15, cases 2-5)."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from compress.core.atomic import StagedDir, atomic_path
from compress.core.errors import OutputError
from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial-" in p.name or ".old-" in p.name)


@pytest.fixture
def tiny_mount(tmp_path):
    """An 8 KiB tmpfs: too small for any model, so writing to it fills the disk."""
    where = tmp_path / "small"
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and mount privileges): {proc.stderr.strip()}")
    yield where
    subprocess.run(["umount", str(where)], capture_output=True)


def _remount_read_only(where: Path) -> None:
    proc = subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {proc.stderr.strip()}")


def test_a_full_disk_gives_one_line_and_leaves_nothing(digits_files, tiny_mount):
    source = digits_files["pt2"]
    before = _sha(source)
    result = invoke([source, "--no-int8", "--out", tiny_mount / "out", *FAST])
    assert_one_line_error(result, "no space left", "out", "write somewhere else")
    assert os.listdir(tiny_mount) == [] and _sha(source) == before


def test_a_read_only_destination_gives_one_line_and_leaves_nothing(digits_files, tiny_mount):
    _remount_read_only(tiny_mount)
    result = invoke([digits_files["pt2"], "--no-int8", "--out", tiny_mount / "out", *FAST])
    assert_one_line_error(result, "cannot write", "Read-only file system", "writable directory")
    assert os.listdir(tiny_mount) == []


def test_pack_onto_a_full_disk_gives_one_line_and_leaves_nothing(digits_run, tiny_mount):
    result = invoke(["pack", digits_run.out_dir, "-o", tiny_mount / "bundle.tar"])
    assert_one_line_error(result, "no space left", "bundle.tar")
    assert os.listdir(tiny_mount) == []


def test_out_through_a_regular_file_gives_one_line(digits_files, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a directory")
    result = invoke([digits_files["pt2"], "--no-int8", "--out", blocker / "out", *FAST])
    assert_one_line_error(result, "notes.txt", "is a file, not a directory")
    assert blocker.read_text() == "a file, not a directory" and os.listdir(tmp_path) == ["notes.txt"]


def test_a_symlinked_out_is_replaced_with_force_and_leaves_no_old_link(digits_files, tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (target / "keep.txt").write_text("what the link pointed at stays")
    (target / "manifest.json").write_text('{"schema": "compress.manifest/1"}')  # an earlier output, reached through the link
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    result = invoke([digits_files["pt2"], "--no-int8", "--out", link, "--force", *FAST])
    assert result.exit_code == 0, result.output
    assert link.is_dir() and not link.is_symlink() and (link / "manifest.json").is_file()
    assert (target / "keep.txt").read_text() == "what the link pointed at stays"
    assert _leftovers(tmp_path) == []


def test_a_failed_final_rename_restores_the_old_output_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("the previous output")
    real_replace = os.replace

    def refuse_the_new_output(src, dst):
        if Path(dst) == out and ".partial-" in Path(src).name:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_the_new_output)
    with pytest.raises(OutputError, match="cannot write .*out .*Read-only file system"):
        with StagedDir(out) as stage:
            (stage / "new.txt").write_text("new")
    assert sorted(os.listdir(tmp_path)) == ["out"] and os.listdir(out) == ["old.txt"]


def test_atomic_path_reports_a_full_disk_as_one_line_and_removes_its_temporary(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(OutputError, match="no space left to write .*result.json"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []
