"""compress verify: a damaged, truncated, altered or unsafe bundle is refused, naming the file."""

from __future__ import annotations

import tarfile

import pytest

from export.bundle.pack import pack
from export.bundle.verify import BundleError, extract_verified, verify
from tests.export.bundle.bundle_fixture import members, write_tar


@pytest.fixture(scope="module")
def bundle(digits_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "digits.tar"
    pack(digits_run.out_dir, out)
    return out


def test_verify_accepts_an_intact_bundle_and_returns_its_manifest(bundle):
    assert sorted(verify(bundle)["files"]) == ["model.int8.onnx", "model.onnx", "report.json"]


def test_verify_names_a_tampered_file(bundle, tmp_path):
    files = members(bundle)
    data = bytearray(files["model.onnx"])
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    files["model.onnx"] = bytes(data)
    with pytest.raises(BundleError, match="model.onnx does not match its sha256 in the manifest"):
        verify(write_tar(tmp_path / "t.tar", files))
    with pytest.raises(BundleError, match="model.onnx does not match"):  # unpacking leaves nothing behind
        extract_verified(tmp_path / "t.tar", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_verify_detects_a_truncated_copy(bundle, tmp_path):
    cut = tmp_path / "cut.tar"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    with pytest.raises(BundleError, match="truncated"):
        verify(cut)


def test_verify_names_a_file_missing_from_the_bundle(bundle, tmp_path):
    files = members(bundle)
    del files["model.int8.onnx"]
    with pytest.raises(BundleError, match="model.int8.onnx listed in the manifest but missing"):
        verify(write_tar(tmp_path / "m.tar", files))


def test_verify_names_a_file_the_manifest_does_not_list(bundle, tmp_path):
    files = {**members(bundle), "run_me.py": b"import os"}
    with pytest.raises(BundleError, match="run_me.py is not listed in the manifest"):
        verify(write_tar(tmp_path / "u.tar", files))


@pytest.mark.parametrize("name", ["../evil.onnx", "/tmp/evil.onnx", "sub/../../evil.onnx"])
def test_unpacking_refuses_path_traversal_and_writes_nothing_outside(bundle, tmp_path, name):
    files = {**members(bundle), name: b"payload"}
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(BundleError, match="not a plain file name"):
        extract_verified(write_tar(tmp_path / "p.tar", files), dest)
    assert not (tmp_path / "dest" / "evil.onnx").exists() and not (tmp_path / "evil.onnx").exists()


def test_unpacking_refuses_links(bundle, tmp_path):
    link = tarfile.TarInfo("model.onnx.link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(BundleError, match="is a link or special file"):
        verify(write_tar(tmp_path / "l.tar", members(bundle), [link]))


def test_verify_checks_an_unpacked_directory_too(bundle, tmp_path):
    dest = tmp_path / "unpacked"
    extract_verified(bundle, dest)
    assert verify(dest)["files"] and sorted(p.name for p in dest.iterdir()) == ["manifest.json", *sorted(verify(bundle)["files"])]
    (dest / "report.json").write_text("{}")
    with pytest.raises(BundleError, match="report.json is .* bytes, the manifest says"):
        verify(dest)


def test_verify_refuses_what_is_not_a_bundle(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleError, match="not a readable bundle"):
        verify(tmp_path / "x.tar")
