"""End to end through the Python API: ``compress.pipeline.run.run`` on the digits CNN and on MiniLM.

The runs themselves are session fixtures in conftest.py (each is done once); these tests read
what they wrote.
"""

import hashlib
import json
import os
from importlib import metadata

import numpy as np
import onnxruntime as ort
import pytest

from compress.core.errors import InputError
from compress.core.spec import TensorSpec, parse_input_spec
from compress.load.data import tokenize
from compress.load.loaders import load_model
from compress.pipeline.options import RunOptions, default_recipe
from compress.pipeline.report import REPORT_SCHEMA
from compress.pipeline.run import run
from export.bundle.manifest import MANIFEST_SCHEMA
from tests.conftest import accuracy

ROWS = ["pytorch-fp32", "onnx-fp32", "onnx-int8"]


@pytest.fixture(params=["digits_run", "minilm_run"])
def e2e_run(request):
    return request.getfixturevalue(request.param)


def _session(result, name):
    """An ONNX Runtime session for one artifact, loaded the way the manifest says to load it."""
    runtime = result.manifest.get("runtime", {}).get(name, {}).get("onnxruntime", {})
    return ort.InferenceSession(str(result.out_dir / name), providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(runtime.get("disabled_optimizers", [])))


def test_run_writes_exactly_the_artifacts_manifest_and_report(e2e_run):
    out = e2e_run.out_dir
    assert sorted(os.listdir(out)) == ["manifest.json", "model.int8.onnx", "model.onnx", "report.json"]
    assert os.listdir(out.parent) == [out.name]  # no staging or old directory left beside it


def test_run_manifest_hashes_match_the_files(e2e_run):
    out = e2e_run.out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == e2e_run.manifest
    assert set(manifest["files"]) == {"model.onnx", "model.int8.onnx", "report.json"}
    for name, entry in manifest["files"].items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)


def test_run_manifest_records_recipe_inputs_outputs_versions_and_time(e2e_run):
    manifest = e2e_run.manifest
    assert manifest["schema"] == MANIFEST_SCHEMA
    assert manifest["recipe"] == [c.to_json() for c in default_recipe(True)]
    specs = [TensorSpec.from_json(i) for i in manifest["inputs"]]
    assert specs == [parse_input_spec(text) for text in e2e_run.report["model"]["inputs"]]
    assert all(s.shape[0] == "batch" for s in specs)
    assert manifest["outputs"] == e2e_run.report["model"]["outputs"]
    for lib in ("torch", "onnx", "onnxruntime"):
        assert manifest["versions"][lib] == metadata.version(lib)
    assert manifest["created"].endswith("+00:00")
    assert manifest["task"] == e2e_run.report["model"]["task"]
    disabled = manifest["runtime"]["model.int8.onnx"]["onnxruntime"]["disabled_optimizers"]
    assert disabled == e2e_run.report["int8"]["onnxruntime_disabled_optimizers"]


def test_run_report_has_a_row_per_artifact_with_latency_for_each_batch_size(e2e_run):
    report = json.loads((e2e_run.out_dir / "report.json").read_text())
    assert report["schema"] == REPORT_SCHEMA
    assert [r["name"] for r in report["results"]] == ROWS
    for row in report["results"]:
        assert set(row["latency"]) == {"1", "4"}
        for bs, lat in row["latency"].items():
            assert lat["batch_size"] == int(bs)
            assert lat["iterations"] >= 10
            assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
        assert row["speedup_vs_pytorch-fp32"]["1"] > 0
    assert report["settings"]["batch_sizes"] == [1, 4]
    assert report["export"]["parity"]["max_abs_error"] < 1e-4


def test_run_int8_file_is_smaller_than_fp32(e2e_run):
    out = e2e_run.out_dir
    assert (out / "model.int8.onnx").stat().st_size < 0.5 * (out / "model.onnx").stat().st_size
    sizes = {r["name"]: r["size_bytes"] for r in e2e_run.report["results"]}
    assert sizes["onnx-int8"] == (out / "model.int8.onnx").stat().st_size


def test_run_digits_int8_accepts_unexported_batch_size_and_keeps_accuracy(digits_run, digits_data):
    x, y = digits_data["x_test"][:7], digits_data["y_test"][:7]
    for name in ("model.onnx", "model.int8.onnx"):
        logits = _session(digits_run, name).run(None, {"x": x})[0]
        assert logits.shape == (7, 10)
    report = digits_run.report
    assert report["int8"]["mode"] == "static"
    assert "digits_calib.npz" in report["data"]["calibration"]
    rows = {r["name"]: r for r in report["results"]}
    reference = rows["pytorch-fp32"]["retention"]["reference_accuracy"]
    assert reference > 0.9
    assert rows["onnx-fp32"]["retention"]["accuracy"] == pytest.approx(reference, abs=0.005)
    assert rows["onnx-int8"]["retention"]["accuracy"] >= reference - 0.02
    # the guard validates on the file's first 64 samples; the report scores the rest
    assert rows["onnx-int8"]["retention"]["samples"] == len(digits_data["y_test"]) - 64
    assert report["int8"]["guard"]["validation"].endswith("first 64 for validation")


def test_run_digits_int8_accuracy_on_full_held_out_split_is_within_two_points(digits_run, digits_data, digits_cnn):
    x, y = digits_data["x_test"], digits_data["y_test"]
    ref_acc = accuracy(digits_cnn, x, y)
    int8_acc = (_session(digits_run, "model.int8.onnx").run(None, {"x": x})[0].argmax(1) == y).mean()
    assert int8_acc >= ref_acc - 0.02


def test_run_minilm_int8_keeps_mean_cosine_and_dynamic_axes(minilm_run, minilm_model):
    rows = {r["name"]: r for r in minilm_run.report["results"]}
    assert rows["onnx-fp32"]["retention"]["mean_cosine"] >= 0.9999
    assert rows["onnx-int8"]["retention"]["metric"] == "cosine"
    assert rows["onnx-int8"]["retention"]["mean_cosine"] >= 0.98
    assert minilm_run.report["int8"]["mode"] == "dynamic"
    # batch 3 and sequence 20: neither was used at export or in the report's runs
    texts = ["ONNX Runtime runs the quantized graph.", "Sentence embeddings compare meaning.", "Short one."]
    feed = tokenize(minilm_model, texts, seq_len=20)
    expected = minilm_model.forward_numpy(feed)[0]
    for name, min_cos in (("model.onnx", 0.9999), ("model.int8.onnx", 0.95)):
        got = _session(minilm_run, name).run(None, feed)[0]
        assert got.shape == (3, 384)
        cos = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
        assert cos.min() >= min_cos, name


def test_run_uses_fp32_onnx_as_reference_when_input_is_onnx(tmp_path, digits_onnx, digits_files):
    model = load_model(digits_onnx)
    out = tmp_path / "out"
    result = run(model, default_recipe(True), RunOptions(out_dir=out, calib=digits_files["calib"], eval=digits_files["eval"],
                                                          batch_sizes=(2,), min_seconds=0.01, eval_samples=64, threads=1))
    rows = {r["name"]: r for r in result.report["results"]}
    assert list(rows) == ["onnx-fp32", "onnx-int8"]
    assert not result.report["export"]["normalized"]["constants_to_initializers"]  # a torch export needs no rewriting
    assert result.report["export"]["normalized"]["max_rel_error"] < 1e-6
    assert rows["onnx-fp32"]["retention"]["top1_agreement"] == 1.0
    assert rows["onnx-int8"]["retention"]["accuracy"] >= rows["onnx-int8"]["retention"]["reference_accuracy"] - 0.02


def test_run_refuses_same_file_for_eval_and_calib_and_writes_nothing(tmp_path, digits_ts_model, digits_files):
    out = tmp_path / "out"
    options = RunOptions(out_dir=out, calib=digits_files["eval"], eval=digits_files["eval"], batch_sizes=(1,), min_seconds=0.01)
    with pytest.raises(InputError, match="same file"):
        run(digits_ts_model, default_recipe(True), options)
    assert os.listdir(tmp_path) == []


def test_run_walks_the_recipe_in_order_and_measures_each_stage(digits_files, digits_spec, tmp_path):
    from compress.passes.prune_unstructured import MagnitudePruneConfig
    from export.int8.ort_quantize import OnnxInt8Config
    from export.onnx.export import OnnxExportConfig

    model = load_model(digits_files["pickle"], digits_spec, trust_pickle=True)
    options = RunOptions(out_dir=tmp_path / "out", calib=digits_files["calib"], eval=digits_files["eval"], batch_sizes=(1,),
                         min_seconds=0.05, eval_samples=128, threads=1)
    result = run(model, [MagnitudePruneConfig(sparsity=0.5, scope="layer"), OnnxExportConfig(), OnnxInt8Config(mode="static")], options)
    assert [r["name"] for r in result.report["results"]] == ["pytorch-fp32", "pytorch-pruned", "onnx-fp32", "onnx-int8"]
    import onnx
    from onnx import numpy_helper

    weights = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "out" / "model.onnx")).graph.initializer if t.dims and len(t.dims) >= 2]
    assert weights and all(np.mean(w == 0) >= 0.49 for w in weights)  # the export is of the pruned model: pruning ran first
    assert [s["step"] for s in result.report["model_passes"]["stages"]] == ["MagnitudePruneConfig"]
    assert model.module is not None and all(np.mean(p.detach().numpy() == 0) < 0.1 for p in model.module.parameters() if p.ndim >= 2)


def test_run_applies_smoothquant_given_as_a_step_of_its_own_without_changing_the_answers(tmp_path):
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    from compress.passes.smoothquant import SmoothQuantConfig
    from compress.pipeline.static_int8.config import Int8StaticConfig
    from export.onnx.export import OnnxExportConfig

    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig(vocab_size=500, dim=64, hidden_dim=128, n_layers=2, n_heads=4, max_position_embeddings=64)).save_pretrained(tmp_path / "m")
    model = load_model(tmp_path / "m", (parse_input_spec("input_ids:1x32:int64"),))
    options = RunOptions(out_dir=tmp_path / "out", batch_sizes=(2,), seq_len=32, threads=1, min_seconds=0.05, eval_samples=16)
    recipe = [SmoothQuantConfig(alpha=0.5), OnnxExportConfig(), Int8StaticConfig(smoothquant_alpha=None, calibration_samples=32)]
    result = run(model, recipe, options)
    stage = result.report["model_passes"]["stages"][0]
    assert stage["step"] == "SmoothQuantConfig" and stage["alpha"] == 0.5 and len(stage["groups"]) >= 4
    rows = {r["name"]: r for r in result.report["results"]}
    assert rows["pytorch-smoothed"]["retention"]["mean_relative_error"] < 1e-4  # smoothing is exact in float
    assert "not_saved" in result.report["model_passes"] and not (tmp_path / "out" / "model").exists()
    assert result.report["int8"]["smoothquant"] is None  # the step did it; the INT8 step was told not to again
