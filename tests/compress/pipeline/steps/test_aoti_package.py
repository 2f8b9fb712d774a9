"""`compress MODEL --int8 --backend torch --target aoti` end to end: the INT8 program compiled with
AOTInductor for this CPU, checked against the program, measured as its own row, listed in the
manifest; then measured again by `compress bench run`, packed, verified and loaded from the bundle
(opt-in, since it is compiled code)."""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from compress.cli.main import main
from export.bundle.pack import pack
from export.bundle.runtime import BundleFallbackWarning, load, pick_aoti_package
from export.bundle.verify import verify
from tests.export.aoti.int8_mlp import NEEDS_AOTI

FAST = ["--batch", "1", "--eval-samples", "8", "--seq-len", "16"]


@pytest.fixture(scope="module")
def aoti_run(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("aoti_run") / "o"
    result = CliRunner().invoke(main, [str(tiny_bert), "--int8", "--backend", "torch", "--target", "aoti", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output + result.stderr
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def aoti_bundle(aoti_run, tmp_path_factory):
    out, _ = aoti_run
    bundle = tmp_path_factory.mktemp("aoti_bundle") / "model.tar"
    return bundle, pack(out, bundle)


def _enc(tiny_bert, n=3):
    from compress.load.loaders import load_model

    model = load_model(tiny_bert)
    enc = model.tokenizer([f"request number {i} to the bundle" for i in range(n)], padding="max_length", max_length=16,
                                    truncation=True, return_tensors="np")
    return {name: enc[name] for name in model.input_names}


pytestmark = NEEDS_AOTI


def test_cli_compiles_measures_and_lists_an_aoti_package(aoti_run):
    out, report = aoti_run
    rows = {r["name"]: r for r in report["results"]}
    assert {"pytorch-int8-kernels", "pytorch-int8-aoti"} <= set(rows)
    aoti = report["aoti"]["cpu"]
    assert aoti["file"].startswith("model.int8.aoti.cpu-") and aoti["min_cosine"] >= 0.99
    assert {s["name"] for s in aoti["inputs"]} == {"input_ids", "token_type_ids", "attention_mask"}
    # the same answers as the program it was compiled from: its retention matches the program's
    assert rows["pytorch-int8-aoti"]["retention"] and rows["pytorch-int8-aoti"]["file"] == aoti["file"]
    assert rows["pytorch-int8-aoti"]["backend"] == "torch-aoti-cpu"
    manifest = json.loads((out / "manifest.json").read_text())
    assert {aoti["file"], aoti["file"] + ".json", "model.int8.pt2"} <= set(manifest["files"])


def test_bench_run_measures_the_package_on_its_own_backend(aoti_run, tmp_path):
    out, report = aoti_run
    result = CliRunner().invoke(main, ["bench", "run", str(out), "--backends", "kernels,aoti", "--no-peers", "--batch", "1",
                                       "--samples", "8", "--seq-len", "16", "--min-seconds", "0.05", "--quiet",
                                       "--json", str(tmp_path / "b.json")], catch_exceptions=False)
    # the aoti family names torch-aoti-cuda too: one member running is enough; the other is listed with its reason
    assert result.exit_code == 0, result.output + result.stderr
    job = json.loads((tmp_path / "b.json").read_text())["runs"][0]["jobs"][0]
    rows = {(r["artifact"], r["backend"]): r for r in job["results"]}
    package = report["aoti"]["cpu"]["file"]
    assert (package, "torch-aoti-cpu") in rows and ("model.int8.pt2", "torch-kernels") in rows
    assert not any(backend == "torch-aoti-cpu" and artifact != package for artifact, backend in rows)
    # the package and the program it came from answer alike (INT8 rounding apart)
    package_err = rows[(package, "torch-aoti-cpu")]["retention"]["mean_relative_error"]
    program_err = rows[("model.int8.pt2", "torch-kernels")]["retention"]["mean_relative_error"]
    assert package_err < 0.05 and abs(package_err - program_err) < 0.5 * program_err + 1e-4
    if not torch.cuda.is_available():
        assert any(s["backend"] == "torch-aoti-cuda" and "no CUDA device" in s["reason"] for s in job["skipped"])


def test_bench_run_skips_a_package_for_another_torch_and_says_why(aoti_run, tmp_path):
    out, report = aoti_run
    name = report["aoti"]["cpu"]["file"]
    copy = tmp_path / "o"
    shutil.copytree(out, copy)
    sidecar = copy / (name + ".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "torch_version": "2.11.0+cu130"}))
    result = CliRunner().invoke(main, ["bench", "run", str(copy), "--backends", "torch-aoti-cpu", "--no-peers", "--batch", "1",
                                       "--samples", "8", "--seq-len", "16", "--min-seconds", "0.05", "--quiet",
                                       "--json", str(tmp_path / "b.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    job = json.loads((tmp_path / "b.json").read_text())["runs"][0]["jobs"][0]
    assert [r["backend"] for r in job["results"]] == ["torch-cpu-fp32"]  # the reference only
    assert {"artifact": name, "backend": "torch-aoti-cpu",
            "reason": f"cannot run here: compiled with torch 2.11.0+cu130, this is torch {torch.__version__}"} in job["skipped"]


def test_pack_ships_the_package_with_what_it_needs_and_verify_checks_it(aoti_run, aoti_bundle):
    _, report = aoti_run
    bundle, manifest = aoti_bundle
    name = report["aoti"]["cpu"]["file"]
    entry = manifest["files"][name]
    assert entry["kind"] == "aoti-package" and manifest["files"][name + ".json"]["kind"] == "aoti-metadata"
    assert entry["target"]["device"] == "cpu" and entry["target"]["device_tag"] == report["aoti"]["cpu"]["device_tag"]
    assert entry["target"]["torch_version"] == report["aoti"]["cpu"]["torch_version"] and entry["compress_ops"]
    assert verify(bundle)["files"][name]["sha256"] == entry["sha256"]


def test_load_runs_the_package_only_when_allowed_and_it_answers_as_onnx_runtime_does(aoti_bundle, tiny_bert):
    bundle, manifest = aoti_bundle
    with pytest.warns(BundleFallbackWarning, match="matches this machine but is compiled code from the bundle; pass allow_compiled_packages=True"):
        fallback = load(bundle, threads=1)
    assert fallback.backend == "onnxruntime-cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error", BundleFallbackWarning)
        model = load(bundle, threads=1, allow_compiled_packages=True)
    assert model.backend == "torch-aoti-cpu" and manifest["files"][model.file]["kind"] == "aoti-package"
    inputs = _enc(tiny_bert)
    got, want = model(**inputs)[0], fallback(**inputs)[0]
    assert got.shape == want.shape
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert cos.min() > 0.98  # two INT8 schemes of one model, the same embeddings


def test_a_package_for_another_torch_or_cpu_is_not_picked_and_the_reason_is_named(aoti_bundle):
    _, manifest = aoti_bundle
    name = next(n for n, e in manifest["files"].items() if e["kind"] == "aoti-package")
    assert pick_aoti_package(manifest, allowed=True) == (name, None)
    for change, why in (({"torch_version": "2.11.0+cu130"}, f"compiled with torch 2.11.0+cu130, this is torch {torch.__version__}"),
                        ({"device_tag": "cpu-amx"}, "compiled for cpu-amx, this machine is cpu-")):
        altered = copy.deepcopy(manifest)
        altered["files"][name]["target"].update(change)
        package, reason = pick_aoti_package(altered, allowed=True)
        assert package is None and reason.startswith(f"{name}: {why}")


def test_the_cuda_route_requantizes_traces_and_compiles_with_the_programs_config(tiny_bert, tmp_path):
    """The CUDA package's route (quantize the model again on the device with the program's INT8
    config, trace there, compile), run on the CPU: all but the device is the code a GPU machine runs."""
    from compress.load.loaders import load_model
    from compress.passes.int8_kernels import Int8DynamicConfig
    from compress.pipeline.steps.aoti_package import requantized_package
    from export.aoti.package import describe_inputs, load_aoti_model

    model = load_model(tiny_bert)
    describes = describe_inputs(model)
    state = SimpleNamespace(model=model, stage=tmp_path / "all", report={"int8": {"config": Int8DynamicConfig().to_json()}})
    state.stage.mkdir()
    meta = requantized_package(state, "model.int8", describes, "cpu")
    assert meta["min_cosine"] >= 0.99 and meta["source_program"] == "model.int8.pt2 (quantized again on the CPU)"
    assert "compress.int8_linear_packed.default" in meta["compress_ops"]
    package = load_aoti_model(state.stage / meta["file"])
    arrays = _enc(tiny_bert)
    with torch.inference_mode():
        got, want = (m.forward_numpy(arrays)[0] for m in (package, model))
    got, want = got.reshape(len(got), -1), want.reshape(len(want), -1)
    assert ((got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)).min() > 0.98  # INT8 of the float model
    # the program's config is the one applied: all Linear layers but one excluded there, one INT8 GEMM here
    linears = [name for name, m in model.module.named_modules() if type(m) is torch.nn.Linear]
    assert meta["compress_ops"]["compress.int8_linear_packed.default"] == len(linears)
    config = Int8DynamicConfig(exclude=tuple(linears[1:]))
    state = SimpleNamespace(model=model, stage=tmp_path / "one", report={"int8": {"config": config.to_json()}})
    state.stage.mkdir()
    assert requantized_package(state, "model.int8", describes, "cpu")["compress_ops"]["compress.int8_linear_packed.default"] == 1
