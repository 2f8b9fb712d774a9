"""``--force`` replaces only what compress wrote: an output directory with compress's manifest, or
a bundle that ``compress pack`` wrote; anything else needs ``--force-any`` as well (issue 15, case 6)."""

from __future__ import annotations

import json
import os

import pytest

from compress.core.errors import OutputError
from compress.core.output_dir import check_output_dir, written_by_compress
from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


@pytest.fixture
def notes_dir(tmp_path):
    """A user's own folder, which compress never wrote."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("my notes")
    return folder


def test_force_refuses_a_directory_compress_did_not_write_and_keeps_it(digits_files, notes_dir):
    result = invoke([digits_files["pt2"], "--no-int8", "--out", notes_dir, "--force", *FAST])
    assert_one_line_error(result, "not written by compress", "--force-any", "another --out")
    assert os.listdir(notes_dir) == ["todo.txt"] and (notes_dir / "todo.txt").read_text() == "my notes"
    assert sorted(os.listdir(notes_dir.parent)) == ["notes"]


def test_force_with_force_any_replaces_a_foreign_directory(digits_files, notes_dir):
    result = invoke([digits_files["pt2"], "--no-int8", "--out", notes_dir, "--force", "--force-any", *FAST])
    assert result.exit_code == 0, result.output
    assert "todo.txt" not in os.listdir(notes_dir) and written_by_compress(notes_dir)
    assert sorted(os.listdir(notes_dir.parent)) == ["notes"]


def test_force_any_alone_is_refused(digits_files, notes_dir):
    result = invoke([digits_files["pt2"], "--no-int8", "--out", notes_dir, "--force-any", *FAST])
    assert_one_line_error(result, "--force --force-any")
    assert os.listdir(notes_dir) == ["todo.txt"]


def test_force_replaces_an_earlier_compress_output(digits_files, tmp_path):
    out = tmp_path / "out"
    first = invoke([digits_files["pt2"], "--no-int8", "--out", out, *FAST])
    assert first.exit_code == 0, first.output
    again = invoke([digits_files["pt2"], "--no-int8", "--out", out, "--force", *FAST])
    assert again.exit_code == 0, again.output
    assert written_by_compress(out) and sorted(os.listdir(tmp_path)) == ["out"]


def test_a_manifest_from_another_tool_does_not_count(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"schema": "someone-else/2", "files": {}}))
    assert not written_by_compress(folder)
    (folder / "manifest.json").write_text("not json")
    assert not written_by_compress(folder)
    with pytest.raises(OutputError, match="not written by compress"):
        check_output_dir(folder, tmp_path / "m.pt", force=True)
    check_output_dir(folder, tmp_path / "m.pt", force=True, force_any=True)  # the second flag allows it


def test_an_empty_directory_is_replaced_with_force_alone(tmp_path):
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", tmp_path / "m.pt", force=True)  # nothing in it can be lost


def test_pack_force_refuses_a_file_that_is_not_a_bundle(digits_run, tmp_path):
    from click.testing import CliRunner

    from compress.cli.main import main

    target = tmp_path / "thesis.tar"
    target.write_bytes(b"a user's file")
    result = CliRunner().invoke(main, ["pack", str(digits_run.out_dir), "-o", str(target), "--force"])
    assert result.exit_code == 1 and "not a compress bundle" in result.stderr and "--force-any" in result.stderr
    assert result.stderr.count("\n") == 1 and isinstance(result.exception, SystemExit)  # a clean exit, no traceback
    assert target.read_bytes() == b"a user's file" and sorted(os.listdir(tmp_path)) == ["thesis.tar"]
