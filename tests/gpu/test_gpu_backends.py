"""GPU backends against their CPU counterparts. They run where a GPU (and the runtime) is present
and skip with the reason the suite itself reports anywhere else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.backends.base import time_batches
from bench.backends.onnxruntime import OrtBackend
from bench.backends.registry import unavailable_reason


def _skip_unless(backend: str):
    reason = unavailable_reason(backend)
    return pytest.mark.skipif(reason is not None, reason=f"{backend}: {reason}")


@_skip_unless("torch-cuda-fp16")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_cuda_matches_cpu_fp32(digits_ts_model, digits_data, precision):
    from bench.backends.torch_eager import TorchEagerBackend

    batch = {"x": digits_data["x_test"][:64]}
    with TorchEagerBackend(digits_ts_model, "cpu", "fp32", 1) as cpu:
        ref = cpu.run(batch)[0]
    with TorchEagerBackend(digits_ts_model, "cuda", precision, 1) as gpu:
        out = gpu.run(batch)[0]
        lat = time_batches(gpu, {64: [batch]}, min_seconds=0.05)[64]
        assert gpu.gpu_peak_bytes() > 0
    assert (out.argmax(1) == ref.argmax(1)).mean() > 0.97 and lat.p50_ms > 0


@_skip_unless("ort-cuda")
def test_ort_cuda_matches_ort_cpu(digits_onnx, digits_data):
    from bench.backends.ort_gpu import OrtProviderBackend

    batch = {"x": digits_data["x_test"][:32]}
    with OrtBackend(digits_onnx, 1) as cpu:
        ref = cpu.run(batch)[0]
    with OrtProviderBackend(digits_onnx, "cuda", 1) as gpu:
        out = gpu.run(batch)[0]
        assert time_batches(gpu, {32: [batch]}, min_seconds=0.05)[32].p50_ms > 0
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-3)


@_skip_unless("trt")
def test_trt_engine_matches_ort_cpu(digits_onnx, digits_data, tmp_path):
    import tensorrt as trt

    from bench.backends.tensorrt import TrtEngineBackend

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(digits_onnx.read_bytes()), parser.get_error(0)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 1, 8, 8), (32, 1, 8, 8), (64, 1, 8, 8))
    config.add_optimization_profile(profile)
    engine = tmp_path / "digits.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, config)))
    batch = {"x": digits_data["x_test"][:32]}
    with OrtBackend(digits_onnx, 1) as cpu:
        ref = cpu.run(batch)[0]
    with TrtEngineBackend(engine) as backend:
        out = backend.run(batch)[0]
        assert backend.gpu_peak_bytes() > 0
    np.testing.assert_allclose(out, ref, atol=1e-3, rtol=1e-3)


def test_gpu_backends_name_what_is_missing_when_they_cannot_run():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the reasons are for machines without one")
    for backend in ("torch-cuda-fp32", "ort-cuda", "ort-trt", "trt"):
        assert unavailable_reason(backend), backend
