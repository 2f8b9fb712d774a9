"""Recipes are data: ``--print-recipe`` shows what flags build, ``--recipe`` runs a JSON recipe or an
earlier output's manifest.json, and replaying a manifest reproduces the directory it describes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress.core.registry import config_from_json
from export.int8.ort_quantize import OnnxInt8Config
from export.onnx.export import OnnxExportConfig
from export.onnx.session import make_session, run_session
from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke
from tests.conftest import DIGITS_SPEC

TOLERANCE = OnnxExportConfig()  # the parity tolerance the export itself is held to


def _digits_run(digits_files, out, *extra):
    return invoke([digits_files["pt2"], "--calib", digits_files["calib"], "--eval", digits_files["eval"], "--out", out, *FAST, *extra])


def _assert_reproduces(first, second, inputs):
    """The same files; the deterministic ones byte-identical, the rest computing the same within the parity tolerance."""
    one, two = json.loads((first / "manifest.json").read_text()), json.loads((second / "manifest.json").read_text())
    assert sorted(one["files"]) == sorted(two["files"])
    assert one["recipe"] == two["recipe"] and one["settings"] == two["settings"] and one["data_files"] == two["data_files"]
    for name, entry in one["files"].items():
        if not name.endswith(".onnx") or entry["sha256"] == two["files"][name]["sha256"]:
            continue
        a, b = make_session(first / name), make_session(second / name)
        for batch in inputs:
            for x, y in zip(run_session(a, batch), run_session(b, batch)):
                np.testing.assert_allclose(y, x, atol=TOLERANCE.atol, rtol=TOLERANCE.rtol, err_msg=name)
    return one, two


def test_replaying_a_manifest_reproduces_the_directory_byte_for_byte_where_deterministic(digits_files, digits_data, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert _digits_run(digits_files, first, "--int8-mode", "static").exit_code == 0
    result = invoke(["run", "--recipe", first / "manifest.json", digits_files["pt2"], "--out", second, "--quiet"])
    assert result.exit_code == 0, result.output
    one, two = _assert_reproduces(first, second, [{"x": digits_data["x_test"][:8]}])
    report_one, report_two = (json.loads((d / "report.json").read_text()) for d in (first, second))
    # the export and the static quantizer, calibrated on the same recorded file, are deterministic;
    # which graph variant is kept is timed (a variant must be 3% faster than the plain graph, so on
    # a tiny CNN both runs nearly always keep the same one): the bytes match where the choice does
    assert one["files"]["model.onnx"]["sha256"] == two["files"]["model.onnx"]["sha256"]
    int8_one, int8_two = report_one["int8"], report_two["int8"]
    assert int8_one.get("variant_validation_drop") == int8_two.get("variant_validation_drop")  # the same candidates, scored alike
    if int8_one.get("variant") == int8_two.get("variant"):
        assert one["files"]["model.int8.onnx"]["sha256"] == two["files"]["model.int8.onnx"]["sha256"]
        assert [r["retention"] for r in report_one["results"]] == [r["retention"] for r in report_two["results"]]


def test_replaying_a_transformer_run_reproduces_its_files_within_tolerance(minilm_run, minilm_model, minilm_path, tmp_path):
    from compress.load.data import builtin_text

    replay = tmp_path / "replay"
    result = invoke(["run", "--recipe", minilm_run.out_dir / "manifest.json", minilm_path, "--out", replay, "--quiet"])
    assert result.exit_code == 0, result.output
    settings = json.loads((replay / "manifest.json").read_text())["settings"]
    assert settings == {"threads": 1, "sequence_length": 64, "batch_sizes": [1, 4], "search_budget": 600.0,
                        "eval_samples": 32}  # the recorded run's, not the defaults (128 samples)
    _assert_reproduces(minilm_run.out_dir, replay, builtin_text(minilm_model, "evaluation", 8, 4, 64).batches)


def test_print_recipe_prints_the_recipe_the_flags_build_and_runs_nothing(digits_files, tmp_path):
    out = tmp_path / "out"
    result = _digits_run(digits_files, out, "--prune", "sparsity=0.5", "--calib-method", "entropy", "--print-recipe")
    assert result.exit_code == 0, result.output
    steps = [config_from_json(step) for step in json.loads(result.stdout)]
    assert [type(s).__name__ for s in steps] == ["MagnitudePruneConfig", "OnnxExportConfig", "Int8StaticConfig"]
    assert steps[2].method == "entropy" and steps[0].sparsity == 0.5
    assert not out.exists()
    (tmp_path / "recipe.json").write_text(result.stdout)  # what it prints is a recipe file --recipe runs
    again = invoke(["run", "--recipe", tmp_path / "recipe.json", digits_files["pt2"], "--print-recipe"])
    assert json.loads(again.stdout) == json.loads(result.stdout)


@pytest.mark.parametrize("recipe, fragments", [
    ([OnnxInt8Config().to_json(), OnnxExportConfig().to_json()], ["step 1 (OnnxInt8Config, ONNX INT8)", "needs an FP32 ONNX file"]),
    ([OnnxExportConfig().to_json(), {"type": "QuantumConfig", "version": 1, "data": {}}], ["step 2", "unknown step 'QuantumConfig'"]),
    ([OnnxExportConfig().to_json(), OnnxExportConfig().to_json()], ["both write model.onnx"]),
    ({"steps": []}, ["holds no recipe"]),
])
def test_a_recipe_file_that_cannot_run_is_refused_before_any_work(digits_files, tmp_path, recipe, fragments):
    path, out = tmp_path / "recipe.json", tmp_path / "out"
    path.write_text(json.dumps(recipe))
    result = invoke(["run", "--recipe", path, digits_files["pt2"], "--out", out, "--quiet"])
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_recipe_refuses_flags_that_build_a_recipe(digits_files, tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps([OnnxExportConfig().to_json()]))
    result = invoke([digits_files["torchscript"], "--input", DIGITS_SPEC, "--recipe", path, "--prune", "sparsity=0.5",
                     "--no-int8", "--out", tmp_path / "out"])
    assert_one_line_error(result, "--recipe gives the steps", "--prune", "--int8")


def test_recipe_refuses_a_missing_or_broken_file(digits_files, tmp_path):
    assert_one_line_error(invoke([digits_files["pt2"], "--recipe", tmp_path / "nope.json"]), "nope.json does not exist")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    assert_one_line_error(invoke([digits_files["pt2"], "--recipe", broken]), "broken.json is not readable JSON")
