"""compress pack: what goes into a bundle and what its manifest says."""

from __future__ import annotations

import json
import shutil

import pytest

from compress.core.errors import InputError, OutputError
from export.bundle.manifest import sha256_file
from export.bundle.pack import BUNDLE_SCHEMA, pack
from tests.export.bundle.bundle_fixture import members


@pytest.fixture(scope="module")
def digits_bundle(digits_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "digits.tar"
    return pack(digits_run.out_dir, out), out


def test_pack_ships_the_models_and_report_with_a_manifest_for_the_target(digits_bundle, digits_run):
    manifest, out = digits_bundle
    source = json.loads((digits_run.out_dir / "manifest.json").read_text())
    assert manifest["schema"] == BUNDLE_SCHEMA
    assert sorted(manifest["files"]) == ["model.int8.onnx", "model.onnx", "report.json"]
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(digits_run.out_dir / name) and entry["bytes"] == (digits_run.out_dir / name).stat().st_size
    assert manifest["files"]["model.int8.onnx"]["precision"] == "int8" and manifest["files"]["model.onnx"]["kind"] == "onnx"
    assert manifest["inputs"] == source["inputs"] and manifest["outputs"] == source["outputs"] and manifest["recipe"] == source["recipe"]
    assert manifest["packed_with"]["onnxruntime"] and manifest["built_with"] == source["versions"]
    int8 = next(r for r in manifest["results"] if r["file"] == "model.int8.onnx")
    assert int8["retention"] is not None and int8["latency_ms"]["1"]["p50_ms"] > 0
    stored = members(out)
    assert json.loads(stored["manifest.json"]) == manifest and set(stored) == {"manifest.json", *manifest["files"]}


def test_pack_twice_gives_the_same_bytes(digits_bundle, digits_run, tmp_path):
    _, first = digits_bundle
    again = tmp_path / "again.tar"
    pack(digits_run.out_dir, again)
    assert again.read_bytes() == first.read_bytes()


def test_pack_refuses_to_replace_a_bundle_without_force(digits_run, tmp_path):
    out = tmp_path / "b.tar"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists; pass --force"):
        pack(digits_run.out_dir, out)
    assert out.read_bytes() == b"precious"
    with pytest.raises(OutputError, match="not a compress bundle.*--force-any"):
        pack(digits_run.out_dir, out, force=True)  # a file compress did not write is not replaced by --force alone
    assert out.read_bytes() == b"precious"
    pack(digits_run.out_dir, out, force=True, force_any=True)
    assert out.read_bytes() != b"precious" and not list(tmp_path.glob(".b.tar.partial-*"))
    first = out.read_bytes()
    pack(digits_run.out_dir, out, force=True)  # a bundle is replaced by --force
    assert out.read_bytes() == first and not list(tmp_path.glob(".b.tar.partial-*"))


def test_pack_refuses_a_directory_changed_after_compress_wrote_it(digits_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(digits_run.out_dir, copy)
    data = bytearray((copy / "model.int8.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "model.int8.onnx").write_bytes(bytes(data))
    with pytest.raises(InputError, match="model.int8.onnx changed after compress wrote it"):
        pack(copy, tmp_path / "b.tar")
    assert not (tmp_path / "b.tar").exists()


def test_pack_ships_engines_with_their_target_metadata(digits_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(digits_run.out_dir, copy)
    plan = copy / "model.int8.sm90.trt10.9.plan"
    plan.write_bytes(b"engine bytes as TensorRT serialized them")
    meta = {"schema": "compress.engine/1", "file": plan.name, "compute_capability": "9.0", "gpu": "NVIDIA H100",
            "tensorrt_version": "10.9.0.34", "version_compatible": False, "hardware_compatibility": "none",
            "profiles": {"x": {"min": [1, 1, 8, 8], "opt": [8, 1, 8, 8], "max": [32, 1, 8, 8]}},
            "layer_precisions": {"INT8": 5, "FP32": 2}}
    (copy / (plan.name + ".json")).write_text(json.dumps(meta))
    manifest = pack(copy, tmp_path / "b.tar")
    entry = manifest["files"][plan.name]
    assert entry["kind"] == "engine" and entry["precision"] == "int8"
    assert entry["target"]["compute_capability"] == "9.0" and entry["target"]["tensorrt_version"] == "10.9.0.34"
    assert entry["layer_precisions"] == {"INT8": 5, "FP32": 2}
    assert manifest["files"][plan.name + ".json"]["kind"] == "engine-metadata"


def test_pack_refuses_an_engine_without_its_metadata(digits_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(digits_run.out_dir, copy)
    (copy / "model.int8.sm90.trt10.9.plan").write_bytes(b"x")
    with pytest.raises(InputError, match="has no model.int8.sm90.trt10.9.plan.json"):
        pack(copy, tmp_path / "b.tar")


def test_pack_refuses_a_directory_that_compress_did_not_write(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(InputError, match="has no manifest.json; pack a directory written by `compress MODEL"):
        pack(tmp_path, tmp_path.parent / "x.tar")
