import json
import shutil

import pytest

from bench.suite.artifacts import discover
from compress.core.errors import BenchError


def test_discover_lists_every_artifact_of_an_output_dir_with_the_original_first(digits_run):
    job = discover(digits_run.out_dir)
    assert job.reference.name == "original" and str(job.reference.path) == digits_run.manifest["model"]["source"]
    names = [a.name for a in job.artifacts]
    assert names[0] == "original" and {"model.onnx", "model.int8.onnx"} <= set(names)
    assert job.task == "classification" and job.inputs and not job.model_passes
    assert job.eval_file is not None and job.eval_file.name == "digits_eval.npz"  # the file `compress` evaluated on


def test_discover_carries_the_runtime_settings_of_the_manifest(minilm_run):
    int8 = next(a for a in discover(minilm_run.out_dir).artifacts if a.name == "model.int8.onnx")
    assert int8.precision == "int8" and int8.role == "ours"
    assert list(int8.disabled_optimizers) == minilm_run.manifest["runtime"]["model.int8.onnx"]["onnxruntime"]["disabled_optimizers"]


def test_discover_errors_when_the_recorded_original_is_gone(digits_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(digits_run.out_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model"]["source"] = str(tmp_path / "moved-away.pt")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchError, match="is not there; restore it"):
        discover(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(BenchError, match="manifest.json is corrupt"):
        discover(copy)


def test_discover_errors_on_a_directory_with_nothing_measurable(tmp_path):
    with pytest.raises(BenchError, match="nothing measurable"):
        discover(tmp_path)


def test_discover_tells_a_model_pass_from_the_kind_a_recipe_records_or_an_older_manifests_report(digits_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(digits_run.out_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    prune = {"type": "MagnitudePruneConfig", "version": 1, "kind": "model pass", "data": {"sparsity": 0.5, "scope": "global"}}
    manifest["recipe"] = [prune, *manifest["recipe"]]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert discover(copy).model_passes
    for step in manifest["recipe"]:  # as a manifest written before recipes recorded kinds
        del step["kind"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert not discover(copy).model_passes  # its report has no model_passes section: no pass ran
    report = json.loads((copy / "report.json").read_text())
    (copy / "report.json").write_text(json.dumps({**report, "model_passes": {"stages": []}}))
    assert discover(copy).model_passes
