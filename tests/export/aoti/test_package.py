"""AOTInductor packages of INT8 programs: compiled for this CPU with our ops inside, checked against
the program, named and described for what they are bound to, and refused where they do not match."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from compress.core.errors import InputError
from export.aoti.package import (
    aoti_file_name,
    build_aoti_package,
    load_aoti_package,
    read_aoti_metadata,
    sidecar_path,
)
from tests.export.aoti.int8_mlp import NEEDS_AOTI, int8_mlp_program

pytestmark = NEEDS_AOTI


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    program = int8_mlp_program(40, 64, 24)
    directory = tmp_path_factory.mktemp("aoti")
    source = directory / "model.int8.pt2"
    torch.export.save(program, str(source))
    meta = build_aoti_package(source, directory, "cpu", [(torch.randn(3, 40),), (torch.randn(17, 40),)])
    return directory, meta, program


def test_the_package_is_named_and_described_for_this_cpu_and_torch(package):
    directory, meta, _ = package
    assert meta["file"] == aoti_file_name("model.int8", "cpu") and (directory / meta["file"]).exists()
    assert meta["file"].startswith("model.int8.aoti.cpu-") and meta["file"].endswith(f".torch{'.'.join(torch.__version__.split('.')[:2])}.pt2")
    assert read_aoti_metadata(directory / meta["file"]) == meta and meta["shapes_checked"] == 2 and meta["min_cosine"] >= 0.99


def test_the_loaded_package_answers_as_the_program_at_a_new_batch_size(package):
    directory, meta, program = package
    compiled = load_aoti_package(directory / meta["file"])
    x = torch.randn(29, 40)
    with torch.inference_mode():
        got, want = compiled(x), program.module()(x)
    got = got[0] if isinstance(got, (list, tuple)) else got
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_a_package_for_another_torch_or_cpu_is_refused_with_the_fix(package, tmp_path):
    directory, meta, _ = package
    copy = tmp_path / meta["file"]
    shutil.copy(directory / meta["file"], copy)
    for change, message in (({"torch_version": "2.11.0+cu130"}, "compiled with torch 2.11.0"),
                            ({"device_tag": "cpu-amx"}, "compiled for cpu-amx")):
        sidecar_path(copy).write_text(json.dumps({**meta, **change}))
        with pytest.raises(InputError, match=f"cannot run here: {message}.*rebuild it on this machine"):
            load_aoti_package(copy)
    sidecar_path(copy).unlink()
    with pytest.raises(InputError, match="is missing: the package's device and torch version are unknown"):
        load_aoti_package(copy)


def test_a_damaged_package_is_refused_in_one_line_with_the_fix(package, tmp_path):
    directory, meta, _ = package
    damaged = tmp_path / meta["file"]
    damaged.write_bytes((directory / meta["file"]).read_bytes()[:4096])  # truncated in the copy
    sidecar_path(damaged).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="cannot be loaded .*rebuild it \\(compress build-engine --aoti model.int8.pt2\\)"):
        load_aoti_package(damaged)
