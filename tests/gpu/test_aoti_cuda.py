"""AOTInductor CUDA packages: an INT8 model quantized on the GPU (w_q unpacked for the CUDA kernels),
compiled for this GPU, checked against the program, loaded and measured on torch-aoti-cuda; and
`--target aoti` on a GPU machine building both packages. Skip without a CUDA device and kernels."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from compress.ops import kernels

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
if not kernels.has_cuda_kernels():
    pytest.skip(f"the CUDA kernels are not built: {kernels.status().reason}", allow_module_level=True)
if shutil.which("g++") is None and shutil.which("c++") is None:
    pytest.skip("AOTInductor compiles C++ host code: no C++ compiler", allow_module_level=True)


@pytest.fixture(scope="module")
def cuda_package(tmp_path_factory):
    from compress.ops.int8_linear import Int8Linear
    from export.aoti.package import compile_aoti_package

    torch.manual_seed(0)
    float_model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 32)).cuda().eval()
    int8 = torch.nn.Sequential(Int8Linear.from_float(float_model[0], activation="gelu"), Int8Linear.from_float(float_model[2])).eval()
    assert not int8[0].packed  # CUDA modules keep w_q for the CUDA kernels
    program = torch.export.export(int8, (torch.randn(4, 64, device="cuda"),), dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},))
    directory = tmp_path_factory.mktemp("aoti_cuda")
    meta = compile_aoti_package(program, "model.int8", "in memory", directory, "cuda", [(torch.randn(4, 64),), (torch.randn(33, 64),)])
    return directory / meta["file"], meta, program


def test_the_cuda_package_is_named_for_this_gpu_and_answers_as_the_program(cuda_package):
    from export.aoti.package import AotiModule, load_aoti_package

    path, meta, program = cuda_package
    major, minor = torch.cuda.get_device_capability()
    assert path.name == f"model.int8.aoti.sm{major}{minor}.torch{'.'.join(torch.__version__.split('.')[:2])}.pt2"
    assert meta["device"] == "cuda" and meta["gpu"] == torch.cuda.get_device_name() and meta["min_cosine"] >= 0.99
    x = torch.randn(57, 64, device="cuda")
    with torch.inference_mode():
        torch.testing.assert_close(AotiModule(load_aoti_package(path))(x), program.module()(x), rtol=1e-3, atol=1e-3)


def test_the_cuda_package_is_measured_on_torch_aoti_cuda(cuda_package):
    import numpy as np

    from bench.backends.base import time_batches
    from bench.backends.torch_aoti import TorchAotiBackend
    from compress.core.model import Model
    from compress.core.spec import TensorSpec
    from export.aoti.package import AotiModule, load_aoti_package

    path, _, program = cuda_package
    model = Model(AotiModule(load_aoti_package(path)), (TensorSpec("x", ("batch", 64), "float32"),), "generic", path, "aoti")
    batch = {"x": np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)}
    with TorchAotiBackend(model, "cuda", 1) as backend:
        out = backend.run(batch)[0]
        latency = time_batches(backend, {16: [batch]}, min_seconds=0.05)[16]
    with torch.inference_mode():
        want = program.module()(torch.from_numpy(batch["x"]).cuda()).cpu().numpy()
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-3)
    assert latency.p50_ms > 0 and backend.gpu_peak_bytes() > 0


def test_target_aoti_on_a_gpu_machine_builds_the_cpu_and_the_cuda_package(tiny_bert, tmp_path):
    from compress.cli.main import main

    out = tmp_path / "o"
    result = CliRunner().invoke(main, [str(tiny_bert), "--int8", "--backend", "torch", "--target", "aoti", "--out", str(out),
                                       "--batch", "1", "--eval-samples", "8", "--seq-len", "16"])
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["aoti"]) == {"cpu", "cuda"} and report["aoti"]["cuda"]["min_cosine"] >= 0.99
    rows = {r["name"]: r for r in report["results"]}
    assert rows["pytorch-int8-aoti-cuda"]["backend"] == "torch-aoti-cuda" and rows["pytorch-int8-aoti-cuda"]["retention"]
