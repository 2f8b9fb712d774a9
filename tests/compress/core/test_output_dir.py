import os

import pytest

from compress.core.atomic import StagedDir
from compress.core.errors import OutputError
from compress.core.output_dir import check_output_dir, default_output_dir


def test_staged_dir_leaves_nothing_when_body_raises(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with StagedDir(out) as stage:
            (stage / "model.onnx").write_bytes(b"partial")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_staged_dir_keeps_existing_dir_untouched_when_body_raises(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(ValueError):
        with StagedDir(out) as stage:
            (stage / "new.txt").write_text("new")
            raise ValueError
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(out) == ["old.txt"] and (out / "old.txt").read_text() == "keep me"


def test_staged_dir_writes_into_a_hidden_sibling_then_renames_on_success(tmp_path):
    out = tmp_path / "out"
    with StagedDir(out) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".out.partial-")
        assert not out.exists()
        (stage / "a.txt").write_text("A")
    assert os.listdir(tmp_path) == ["out"]
    assert (out / "a.txt").read_text() == "A"
    assert (out.stat().st_mode & 0o777) == 0o755


def test_staged_dir_replaces_existing_dir_on_success(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with StagedDir(out) as stage:
        (stage / "fresh.txt").write_text("new")
    assert os.listdir(tmp_path) == ["out"]  # neither the stage nor the old copy remain
    assert os.listdir(out) == ["fresh.txt"]


def test_check_output_dir_refuses_existing_dir_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    model = tmp_path / "m.pt"
    with pytest.raises(OutputError, match="--force"):
        check_output_dir(out, model, force=False)
    check_output_dir(out, model, force=True)  # allowed with force


def test_check_output_dir_refuses_existing_file_even_with_force(tmp_path):
    out = tmp_path / "out"
    out.write_text("a file")
    with pytest.raises(OutputError, match="is a file"):
        check_output_dir(out, tmp_path / "m.pt", force=True)


def test_check_output_dir_refuses_out_inside_or_equal_to_model_dir(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for out in (model_dir / "out", model_dir / "a" / "b", model_dir):
        with pytest.raises(OutputError, match="inside the input model"):
            check_output_dir(out, model_dir, force=True)


def test_check_output_dir_refuses_out_that_contains_the_model(tmp_path):
    model = tmp_path / "models" / "m.pt"
    model.parent.mkdir()
    model.write_bytes(b"x")
    with pytest.raises(OutputError, match="contains the input model"):
        check_output_dir(tmp_path / "models", model, force=True)


def test_default_output_dir_is_a_sibling_named_after_the_model(tmp_path):
    assert default_output_dir(tmp_path / "digits.pt2") == tmp_path / "digits.pt2.compressed"
