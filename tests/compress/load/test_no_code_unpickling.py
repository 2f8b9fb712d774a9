"""A torch.export archive whose pickled member would run code is refused without --trust-pickle,
and nothing from it runs (issue 15, case 1: torch falls back to weights_only=False on its own)."""

from __future__ import annotations

import io
import pathlib
import zipfile

import pytest
import torch

from compress.core.errors import UnsafeLoadError
from compress.load.loaders import load_model
from tests.compress.cli.test_compress_command import assert_one_line_error, invoke


class _TouchOnLoad:
    """Unpickling this calls Path.touch(marker): code from the file, as an attacker would plant it."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _with_member_replaced(src: pathlib.Path, dst: pathlib.Path, suffix: str, payload: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        names = [n for n in zin.namelist() if n.endswith(suffix)]
        assert names, f"no member ends with {suffix}: {zin.namelist()}"
        for item in zin.infolist():
            zout.writestr(item, payload if item.filename in names else zin.read(item.filename))


@pytest.fixture
def hostile_pt2(digits_files, tmp_path):
    marker = tmp_path / "code-ran"
    buffer = io.BytesIO()
    torch.save(_TouchOnLoad(marker), buffer)
    path = tmp_path / "hostile.pt2"
    _with_member_replaced(digits_files["pt2"], path, "sample_inputs/model.pt", buffer.getvalue())
    return path, marker


def test_load_model_refuses_a_pt2_whose_pickle_runs_code_and_runs_none_of_it(hostile_pt2):
    path, marker = hostile_pt2
    with pytest.raises(UnsafeLoadError, match="--trust-pickle"):
        load_model(path)
    assert not marker.exists()


def test_cli_refuses_the_hostile_pt2_in_one_line_and_runs_none_of_it(hostile_pt2, tmp_path):
    path, marker = hostile_pt2
    before = path.read_bytes()
    result = invoke([path, "--out", tmp_path / "out", "--quiet"])
    assert_one_line_error(result, "hostile.pt2", "would run code", "--trust-pickle")
    assert not marker.exists() and not (tmp_path / "out").exists() and path.read_bytes() == before


def test_load_model_still_loads_the_plain_pt2_files_compress_and_torch_write(digits_files):
    model = load_model(digits_files["pt2"])
    assert model.format == "pt2" and model.input_names == ["x"]
