"""The zoo end to end at its small scale: the same code paths as `python -m bench.zoo`, on fewer samples."""

import json
import os

import pytest

pytest.importorskip("rapidocr_onnxruntime", reason="the zoo's packages are not installed (pip install -e '.[zoo]')")


def test_detector_through_the_default_command_and_the_suite(tmp_path):
    from bench.zoo.__main__ import main

    assert main(["--scale", "small", "--only", "ppocrv4-det", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "zoo_cpu.json").read_text())
    (model,) = data["models"]
    artifacts = {r["artifact"] for r in model["rows"]}
    assert {"original", "model.onnx", "model.int8.onnx", "peer:ort-quantize-static"} <= artifacts
    assert model["compress"]["exit_code"] in (0, 3) and model["compress"]["guard"]["metric"] == "bench.zoo.ocr:line_f1"
    ours = next(r for r in model["rows"] if r["artifact"] == "model.int8.onnx")
    assert ours["vs_ort_fp32"]["1"] > 0 and 0 <= ours["value"] <= 1 and ours["size_mb"] < 2.5  # FP32 is 4.7 MB
    assert model["verdict"]["checks"]["exit code honest"] is True
    text = (tmp_path / "zoo_cpu.md").read_text()
    assert "| ppocrv4-det |" in text and data["environment"]["isa"] in text
    assert (tmp_path / "plots" / "zoo_cpu.png").stat().st_size > 10_000


def test_fine_tuned_classifier_is_trained_once_and_cached(tmp_path, monkeypatch):
    from bench.zoo.fine_tune import fine_tuned_classifier
    from bench.zoo.scale import Scale

    monkeypatch.setenv("COMPRESS_ZOO_CACHE", str(tmp_path))
    tiny = Scale("tiny", calib=4, validation=4, eval=8, train=32, epochs=1, batch_sizes=(1,), min_seconds=0.1, search_budget="10s")
    said = []
    path = fine_tuned_classifier(tiny, said.append)
    assert (path / "config.json").is_file() and json.loads((path / "config.json").read_text())["id2label"]["2"] == "positive"
    stamp = os.stat(path / "config.json").st_mtime_ns
    assert fine_tuned_classifier(tiny, said.append) == path and os.stat(path / "config.json").st_mtime_ns == stamp
    assert len(said) == 1  # trained the first time only
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging directory left
