"""The C++ runner (export/aoti/cpp/run_package.cpp) built against the installed torch runs an INT8
AOTInductor package with no Python, compress's kernels loaded from their library, and answers as
the package does from Python."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from compress.ops import kernels
from export.aoti.cpp_loader import build_cpp_loader
from export.aoti.package import AotiModule, build_aoti_package, load_aoti_package
from tests.export.aoti.int8_mlp import NEEDS_AOTI, int8_mlp_program

pytestmark = NEEDS_AOTI


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    program = int8_mlp_program(48, 64, 8, seed=2)
    directory = tmp_path_factory.mktemp("cpp")
    torch.export.save(program, str(directory / "model.int8.pt2"))
    meta = build_aoti_package(directory / "model.int8.pt2", directory, "cpu", [(torch.randn(3, 48),), (torch.randn(5, 48),)])
    return directory / meta["file"]


def test_the_cpp_runner_answers_as_the_package_does_from_python(package, tmp_path):
    binary = build_cpp_loader(tmp_path / "bin")
    x = np.random.default_rng(3).standard_normal((7, 48)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    done = subprocess.run([str(binary), str(package), kernels.status().library, str(tmp_path / "out"), f"{tmp_path / 'x.bin'}:float32:7x48"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "output 0 [7, 8]" in done.stdout
    got = np.fromfile(tmp_path / "out0.bin", dtype=np.float32).reshape(7, 8)
    with torch.inference_mode():
        want = AotiModule(load_aoti_package(package))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_the_cpp_runner_says_which_library_it_could_not_load(package, tmp_path):
    binary = build_cpp_loader(tmp_path / "bin")
    done = subprocess.run([str(binary), str(package), str(tmp_path / "missing.so"), str(tmp_path / "out"), "x.bin:float32:1x48"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot load the kernels library" in done.stderr and "missing.so" in done.stderr
