"""export.bundle.runtime.load: verify, then run the engine made for this machine or fall back to ONNX
Runtime with one warning; outputs equal a direct ONNX Runtime run of the same file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress.core.errors import InputError
from export.bundle.pack import pack
from export.bundle.runtime import BundleFallbackWarning, engine_mismatch, load, pick_engine
from export.bundle.verify import BundleError
from export.onnx.session import make_session, run_session
from tests.export.bundle.bundle_fixture import members, write_tar


@pytest.fixture(scope="module")
def bundle(digits_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("runtime") / "digits.tar"
    pack(digits_run.out_dir, out)
    return out


@pytest.fixture(scope="module")
def minilm_bundle(minilm_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("runtime") / "minilm.tar"
    pack(minilm_run.out_dir, out)
    return out


def test_load_falls_back_to_onnx_runtime_cpu_with_one_warning_and_matches_a_direct_run(bundle, digits_run, digits_data):
    with pytest.warns(BundleFallbackWarning, match="no engine or compiled package runs here \\(the bundle has no TensorRT engine\\)") as caught:
        model = load(bundle, threads=1)
    assert len(caught) == 1 and model.backend == "onnxruntime-cpu" and model.file == "model.int8.onnx"
    x = digits_data["x_test"][:16]
    got = model(x)
    manifest = json.loads((digits_run.out_dir / "manifest.json").read_text())
    disabled = manifest["runtime"].get("model.int8.onnx", {}).get("onnxruntime", {}).get("disabled_optimizers", ())
    direct = run_session(make_session(digits_run.out_dir / "model.int8.onnx", 1, disabled_optimizers=disabled), {model.input_names[0]: x})
    assert len(got) == len(direct) and all(np.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(got, direct))
    assert got[0].shape == (16, 10)


def test_load_takes_inputs_by_name_for_a_multi_input_model(minilm_bundle, minilm_model):
    with pytest.warns(BundleFallbackWarning):
        model = load(minilm_bundle, threads=1)
    assert model.input_names == minilm_model.input_names
    enc = minilm_model.tokenizer(["a bundle answers a request", "another one"], padding="max_length", max_length=32,
                                 truncation=True, return_tensors="np")
    inputs = {name: enc[name] for name in model.input_names}
    by_name = model(**inputs)
    by_position = model(*[inputs[n] for n in model.input_names])
    assert np.array_equal(by_name[0], by_position[0]) and by_name[0].shape == (2, 384)
    reference = minilm_model.forward_numpy(inputs)[0]
    cos = (reference * by_name[0]).sum(-1) / np.linalg.norm(reference, axis=-1) / np.linalg.norm(by_name[0], axis=-1)
    assert cos.min() > 0.97  # the INT8 graph, still the same embeddings


def test_model_names_its_inputs_when_called_wrongly(bundle):
    with pytest.warns(BundleFallbackWarning):
        model = load(bundle)
    with pytest.raises(InputError, match="the model's inputs are .*; unknown: pixels"):
        model(pixels=np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(InputError, match="takes 1 inputs"):
        model(np.zeros(1), np.zeros(1))


def test_load_refuses_a_tampered_bundle(bundle, tmp_path):
    files = members(bundle)
    files["model.int8.onnx"] = files["model.int8.onnx"][:-1] + bytes([files["model.int8.onnx"][-1] ^ 1])
    with pytest.raises(BundleError, match="model.int8.onnx does not match its sha256"):
        load(write_tar(tmp_path / "t.tar", files))


def test_load_runs_an_unpacked_bundle_directory(bundle, tmp_path, digits_data):
    from export.bundle.verify import extract_verified

    extract_verified(bundle, tmp_path / "unpacked")
    with pytest.warns(BundleFallbackWarning):
        model = load(tmp_path / "unpacked")
    assert model(digits_data["x_test"][:2])[0].shape == (2, 10)


LOCAL = {"compute_capability": "8.6", "tensorrt_version": "10.3.0.26"}


@pytest.mark.parametrize("target,fragment", [
    ({"compute_capability": "8.6", "tensorrt_version": "10.3.0.26"}, None),
    ({"compute_capability": "9.0", "tensorrt_version": "10.3.0.26"}, "built for compute capability 9.0, this GPU has 8.6"),
    ({"compute_capability": "8.6", "tensorrt_version": "10.9.0.34"}, "Version tag does not match"),
    ({"compute_capability": "8.6", "tensorrt_version": "10.3.0.30"}, "Version tag does not match"),  # even the build number
    ({"compute_capability": "9.0", "tensorrt_version": "10.3.0.26", "hardware_compatibility": "ampere_plus"}, None),
    ({"compute_capability": "8.6", "tensorrt_version": "10.1.0.27", "version_compatible": True}, None),
    ({"compute_capability": "8.6", "tensorrt_version": "10.5.0.18", "version_compatible": True}, "needs that version or later"),
    ({"compute_capability": "8.6", "tensorrt_version": "9.3.0.1", "version_compatible": True}, None),  # older major, VC
])
def test_engine_mismatch_follows_tensorrt_compatibility_rules(target, fragment):
    why = engine_mismatch(target, LOCAL)
    assert why is None if fragment is None else fragment in why


def test_pick_engine_says_why_when_the_bundle_has_engines_but_none_runs_here():
    manifest = {"files": {"m.sm90.trt10.9.plan": {"kind": "engine", "precision": "int8",
                                                   "target": {"compute_capability": "9.0", "tensorrt_version": "10.9.0"}}}}
    engine, reason = pick_engine(manifest)
    assert engine is None and reason  # here: TensorRT or a GPU is missing; on a GPU: the mismatch, named
