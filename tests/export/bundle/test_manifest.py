import datetime as dt
import hashlib
import json
from importlib import metadata

from compress.core.versions import library_versions
from compress.ops.cpu_features import cpu_info, cpu_isa
from export.bundle.manifest import (
    MANIFEST_NAME,
    file_entries,
    sha256_file,
    write_manifest,
)


def test_sha256_file_equals_hashlib_across_chunk_boundaries(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 1000 + b"tail"
    path.write_bytes(data)
    assert sha256_file(path, chunk=4096) == hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_write_manifest_lists_every_file_but_itself_with_hash_and_size(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "extra.txt").write_text("hello")
    manifest = write_manifest(tmp_path, recipe=[{"type": "X"}], model={"format": "pt2"},
                              inputs=[{"name": "x", "shape": ["batch", 3], "dtype": "float32"}], outputs=["y"],
                              extra={"task": "generic"})
    on_disk = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert on_disk == manifest
    assert set(manifest["files"]) == {"model.onnx", "sub/extra.txt"}
    assert manifest["files"]["model.onnx"] == {"sha256": hashlib.sha256(b"onnx bytes").hexdigest(), "bytes": 10}
    assert manifest["task"] == "generic" and manifest["outputs"] == ["y"]
    assert manifest["built_on"] == {"cpu": cpu_info()["model"], "isa": cpu_isa()}  # the speeds in its report belong to this CPU class
    created = dt.datetime.fromisoformat(manifest["created"])
    assert created.tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60


def test_library_versions_match_installed_distributions():
    versions = library_versions()
    for name in ("torch", "onnx", "onnxruntime", "numpy"):
        assert versions[name] == metadata.version(name)
    assert versions["python"].count(".") == 2


def test_file_entries_is_empty_for_a_dir_with_only_a_manifest(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{}")
    assert file_entries(tmp_path) == {}
