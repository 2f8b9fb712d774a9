import numpy as np
import torch

from bench.backends.base import run_all, time_batches
from bench.backends.onnxruntime import OrtBackend
from bench.backends.torch_eager import TorchEagerBackend


def test_torch_backend_sets_threads_while_open_and_restores_them(digits_ts_model, digits_data):
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 1
    with TorchEagerBackend(digits_ts_model, "cpu", "fp32", wanted) as backend:
        assert torch.get_num_threads() == wanted
        out = backend.run({"x": digits_data["x_test"][:3]})
    assert torch.get_num_threads() == before
    assert out[0].shape == (3, 10)


def test_run_all_concatenates_first_output_of_every_batch_and_matches_torch(digits_onnx, digits_ts_model, digits_data):
    batches = [{"x": digits_data["x_test"][i:min(i + 4, 10)]} for i in range(0, 10, 4)]  # 4, 4, 2
    with OrtBackend(digits_onnx, threads=1) as ort_backend:
        got = run_all(ort_backend, batches)
        lat = time_batches(ort_backend, {2: [{"x": digits_data["x_test"][:2]}]}, min_seconds=0.01)
    expected = digits_ts_model.forward_numpy({"x": digits_data["x_test"][:10]})[0]
    assert got.shape == (10, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert lat[2].batch_size == 2 and lat[2].iterations >= 10
