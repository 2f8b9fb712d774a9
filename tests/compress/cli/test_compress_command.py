"""The ``compress`` command: bad input gives one ``error:`` line, exit code 1 and writes nothing;
one full run on the digits CNN goes through the CLI itself."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from compress.cli.main import main
from tests.conftest import DIGITS_SPEC

FAST = ["--batch", "1,4", "--threads", "1", "--quiet"]


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"escaped as {result.exception!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def workdir(tmp_path):
    """An empty directory that receives --out; a failed run must leave it empty."""
    d = tmp_path / "work"
    d.mkdir()
    return d


def _case_args(case, digits_files, wiggle_file, tmp_path):
    if case == "missing file":
        return [tmp_path / "nope.pt", "--input", DIGITS_SPEC], ["nope.pt", "does not exist"]
    if case == "unknown format":
        junk = tmp_path / "junk.pt"
        junk.write_bytes(b"JUNK" + np.random.default_rng(1).bytes(2048))
        return [junk, "--input", DIGITS_SPEC], ["unknown model format"]
    if case == "truncated torchscript":
        data = digits_files["torchscript"].read_bytes()
        cut = tmp_path / "cut.ts"
        cut.write_bytes(data[: len(data) // 2])
        return [cut, "--input", DIGITS_SPEC], ["cut.ts", "truncated"]
    if case == "state_dict only":
        return [digits_files["state_dict"], "--input", DIGITS_SPEC, "--trust-pickle"], ["state_dict"]
    if case == "pickle without trust":
        return [digits_files["pickle"], "--input", DIGITS_SPEC], ["--trust-pickle"]
    if case == "spec does not fit":
        return [digits_files["torchscript"], "--input", "x:1x3x8x8:float32"], ["x:batchx3x8x8:float32"]
    if case == "torchscript without spec":
        return [digits_files["torchscript"]], ["--input"]
    if case == "malformed spec":
        return [digits_files["torchscript"], "--input", "x:1xx8:float32"], ["--input"]
    if case == "bad batch list":
        return [digits_files["pt2"], "--batch", "0,4"], ["--batch"]
    if case == "static without input":
        return [digits_files["pt2"], "--static"], ["--static", "--input"]
    if case == "unsupported operator":
        return [wiggle_file, "--trust-pickle", "--input", "x:1x4:float32"], ["wiggle"]
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "missing file", "unknown format", "truncated torchscript", "state_dict only", "pickle without trust",
    "spec does not fit", "torchscript without spec", "malformed spec", "bad batch list", "static without input",
    "unsupported operator",
])
def test_cli_prints_one_error_line_and_writes_nothing_when_input_bad(case, digits_files, wiggle_file, tmp_path, workdir):
    args, fragments = _case_args(case, digits_files, wiggle_file, tmp_path)
    out = workdir / "out"
    result = invoke([*args, "--out", out, "--threads", "1", "--quiet", *([] if "--batch" in args else ["--batch", "1,4"])])
    assert_one_line_error(result, *fragments)
    assert os.listdir(workdir) == []


def test_cli_refuses_existing_output_without_force_and_leaves_it_alone(digits_files, workdir):
    out = workdir / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke([digits_files["pt2"], "--out", out, *FAST])
    assert_one_line_error(result, "--force")
    assert os.listdir(workdir) == ["out"]
    assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_cli_refuses_out_inside_the_input_model_directory(minilm_path, tmp_path):
    model_dir = tmp_path / "minilm"
    model_dir.mkdir()
    for entry in minilm_path.iterdir():  # a private view of the bundled model, so nothing can touch the original
        (model_dir / entry.name).symlink_to(entry)
    before = sorted(os.listdir(model_dir))
    result = invoke([model_dir, "--out", model_dir / "compressed", *FAST])
    assert_one_line_error(result, "inside the input model")
    assert sorted(os.listdir(model_dir)) == before


def test_cli_refuses_npz_eval_with_wrong_label_count_with_one_error_line(digits_files, digits_data, tmp_path, workdir):
    bad = tmp_path / "eval_bad_labels.npz"
    np.savez(bad, x=digits_data["x_test"][:20], labels=digits_data["y_test"][:15])
    result = invoke([digits_files["torchscript"], "--input", DIGITS_SPEC, "--eval", bad, "--out", workdir / "out", *FAST])
    assert_one_line_error(result, "eval_bad_labels.npz")
    assert os.listdir(workdir) == []


def test_cli_debug_shows_the_traceback(digits_files, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "compress", str(digits_files["state_dict"]), "--input", DIGITS_SPEC,
         "--out", str(tmp_path / "out"), "--quiet", "--debug"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "compress.core.errors.InputError" in proc.stderr and "state_dict" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_without_debug_in_a_real_process_prints_only_the_error_line(digits_files, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "compress", str(digits_files["state_dict"]), "--input", DIGITS_SPEC,
         "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_cli_full_run_replaces_existing_output_with_force(digits_files, digits_data, workdir):
    out = workdir / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    (out / "manifest.json").write_text(json.dumps({"schema": "compress.manifest/1"}))  # an earlier compress output
    result = invoke([digits_files["torchscript"], "--input", DIGITS_SPEC, "--out", out, "--force",
                     "--eval", digits_files["eval"], "--calib", digits_files["calib"], *FAST])
    assert result.exit_code == 0, (result.output, result.exception)
    assert os.listdir(workdir) == ["out"]
    assert sorted(os.listdir(out)) == ["manifest.json", "model.int8.onnx", "model.onnx", "report.json"]
    report = json.loads((out / "report.json").read_text())
    rows = {r["name"]: r for r in report["results"]}
    assert list(rows) == ["pytorch-fp32", "onnx-fp32", "onnx-int8"]
    assert report["model"]["format"] == "torchscript" and report["model"]["task"] == "classification"
    assert report["int8"]["mode"] == "static"
    reference = rows["pytorch-fp32"]["retention"]["reference_accuracy"]
    assert reference > 0.9
    assert rows["onnx-int8"]["retention"]["accuracy"] >= reference - 0.02
    assert rows["onnx-int8"]["retention"]["samples"] == 128  # the CLI's default --eval sample count
    # stdout: which machine and CPU kernels timed it, the table, then where it wrote
    lines = result.stdout.splitlines()
    assert lines[0].startswith("timed on ") and f"CPU kernels: {report['environment']['isa']}" in lines[0]
    assert lines[1].startswith("artifact")
    assert [ln.split()[0] for ln in lines[3:6]] == ["pytorch-fp32", "onnx-fp32", "onnx-int8"]
    assert lines[-1].startswith(f"wrote {out}/")
    assert "model.int8.onnx" in lines[-1]
    # the INT8 file takes a batch size that was never used
    import onnxruntime as ort

    logits = ort.InferenceSession(str(out / "model.int8.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": digits_data["x_test"][:5]})[0]
    assert logits.shape == (5, 10)
    assert (out / "model.int8.onnx").stat().st_size < (out / "model.onnx").stat().st_size


def test_cli_static_fixes_every_axis_and_times_only_the_spec_batch_size(digits_files, workdir):
    import onnx

    out = workdir / "out"
    result = invoke([digits_files["torchscript"], "--input", "x:3x1x8x8:float32", "--static", "--out", out, "--json", *FAST])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(result.stdout)
    assert report["settings"]["batch_sizes"] == [3]  # --batch 1,4 cannot run on a batch-3 static model
    assert report["model"]["inputs"] == ["x:3x1x8x8:float32"]
    assert all(set(r["latency"]) == {"3"} for r in report["results"])
    for name in ("model.onnx", "model.int8.onnx"):
        dims = [d.dim_value or d.dim_param for d in onnx.load(str(out / name)).graph.input[0].type.tensor_type.shape.dim]
        assert dims == [3, 1, 8, 8], name


def test_cli_json_flag_prints_the_report(digits_files, workdir):
    out = workdir / "out"
    result = invoke([digits_files["pt2"], "--out", out, "--no-int8", "--json", "--batch", "2", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "report.json").read_text())
    assert [r["name"] for r in printed["results"]] == ["pytorch-fp32", "onnx-fp32"]
    assert sorted(os.listdir(out)) == ["manifest.json", "model.onnx", "report.json"]


def test_cli_help_lists_the_run_options():
    result = invoke(["run", "--help"])
    assert result.exit_code == 0
    for flag in ("--input", "--trust-pickle", "--force", "--calib", "--eval", "--int8-mode", "--debug"):
        assert flag in result.output


def test_cli_writes_beside_the_model_when_out_not_given(digits_files, tmp_path):
    model = tmp_path / "digits.pt2"
    model.write_bytes(digits_files["pt2"].read_bytes())
    result = invoke([model, "--no-int8", "--batch", "1", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert sorted(os.listdir(tmp_path)) == ["digits.pt2", "digits.pt2.compressed"]
    assert sorted(os.listdir(tmp_path / "digits.pt2.compressed")) == ["manifest.json", "model.onnx", "report.json"]


def test_target_aoti_without_the_pytorch_int8_program_is_refused_before_any_work(tiny_bert, tmp_path):
    result = invoke([tiny_bert, "--int8", "--target", "aoti", "--out", tmp_path / "o", *FAST])
    assert_one_line_error(result, "--target aoti compiles the PyTorch INT8 program with AOTInductor; use it with --int8 --backend torch")
    assert not (tmp_path / "o").exists()
