import numpy as np
import torch

from bench.backends.base import time_batches
from bench.backends.torch_eager import TorchEagerBackend, dynamic_int8, serialized_bytes


def test_torch_eager_bf16_answers_close_to_fp32_and_leaves_the_model_unchanged(digits_ts_model, digits_data):
    batch = {"x": digits_data["x_test"][:64]}
    before = {k: v.clone() for k, v in digits_ts_model.module.state_dict().items()}
    with TorchEagerBackend(digits_ts_model, "cpu", "fp32", threads=1) as fp32:
        ref = fp32.run(batch)[0]
    with TorchEagerBackend(digits_ts_model, "cpu", "bf16", threads=1) as bf16:
        out = bf16.run(batch)[0]
        lat = time_batches(bf16, {8: [{"x": digits_data["x_test"][:8]}]}, min_seconds=0.01)[8]
    assert out.dtype == np.float32 and (out.argmax(1) == ref.argmax(1)).mean() > 0.95
    assert 0 < np.abs(out - ref).max() < 0.5  # bf16 really ran (not bit-identical) and stayed close
    assert lat.batch_size == 8 and lat.p50_ms > 0
    assert all(torch.equal(before[k], v) for k, v in digits_ts_model.module.state_dict().items())


def test_dynamic_int8_quantizes_linears_and_is_smaller(minilm_model):
    q = dynamic_int8(minilm_model.module)
    assert serialized_bytes(q) < serialized_bytes(minilm_model.module) / 1.4
    assert any("quantized" in type(m).__module__ for m in q.modules())
