"""`compress MODEL --int8 --backend torch --target aoti`: the INT8 program compiled with
AOTInductor for this CPU, checked against the program, measured as its own row and listed in the
manifest; and the flag refused where there is no PyTorch INT8 program to compile."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from compress.cli.main import main
from compress.ops import kernels

FAST = ["--batch", "1", "--eval-samples", "8", "--seq-len", "16"]


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="AOTInductor compiles C++: no C++ compiler")
@pytest.mark.skipif(kernels.status().backend != "extension", reason=f"the compiled kernels are not loaded: {kernels.status().reason}")
def test_cli_compiles_measures_and_ships_an_aoti_package(tiny_bert, tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(main, [str(tiny_bert), "--int8", "--backend", "torch", "--target", "aoti", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads((out / "report.json").read_text())
    rows = {r["name"]: r for r in report["results"]}
    assert {"pytorch-int8-kernels", "pytorch-int8-aoti"} <= set(rows)
    aoti = report["aoti"]
    assert aoti["file"].startswith("model.int8.aoti.cpu-") and aoti["min_cosine"] >= 0.99
    # the same answers as the program it was compiled from: its retention matches the program's
    assert rows["pytorch-int8-aoti"]["retention"] and rows["pytorch-int8-aoti"]["file"] == aoti["file"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {aoti["file"], aoti["file"] + ".json", "model.int8.pt2"} <= set(manifest["files"])


def test_cli_refuses_target_aoti_without_the_pytorch_int8_program(tiny_bert, tmp_path):
    result = CliRunner().invoke(main, [str(tiny_bert), "--int8", "--target", "aoti", "--out", str(tmp_path / "o"), *FAST])
    assert result.exit_code == 1 and "--target aoti compiles the PyTorch INT8 program" in result.stderr
    assert not (tmp_path / "o").exists()
