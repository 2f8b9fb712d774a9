"""Calibration on the exported graph: one streaming observer per tensor, fed batch by batch."""

import numpy as np
import pytest

from compress.core.errors import QuantizationError
from compress.core.forward_loop import forward_loop_over
from export.int8.calibrate import calibrate_onnx
from export.int8.qdq import weighted_nodes


def test_calibrate_onnx_sees_every_batch_and_matches_the_inputs_range(digits_onnx, digits_data):
    import onnx

    tensors = sorted({n.activation for n in weighted_nodes(onnx.load(str(digits_onnx)))})
    x = digits_data["x_train"][:96]
    batches = [{"x": x[i:i + 32]} for i in range(0, 96, 32)]
    observers = calibrate_onnx(digits_onnx, tensors, forward_loop_over(batches), threads=1)
    first = observers["x"]  # the first Conv reads the graph input itself
    assert first.count == x.size
    assert first.min == pytest.approx(float(x.min())) and first.max == pytest.approx(float(x.max()))
    assert all(o.count > 0 for o in observers.values())


def test_forward_loop_over_stops_at_the_sample_limit():
    seen = []
    forward_loop_over([{"x": np.zeros((4, 2))} for _ in range(5)], limit=10)(lambda b: seen.append(len(b["x"])))
    assert seen == [4, 4, 2]


def test_calibrate_onnx_refuses_a_loop_that_runs_nothing(digits_onnx):
    with pytest.raises(QuantizationError, match="no batches"):
        calibrate_onnx(digits_onnx, ["x"], forward_loop_over([]), threads=1)


def test_calibrate_onnx_names_the_tensor_when_a_batch_holds_nan(digits_onnx, digits_data):
    bad = digits_data["x_train"][:4].copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(QuantizationError, match="batch 1: tensor x"):
        calibrate_onnx(digits_onnx, ["x"], forward_loop_over([{"x": bad}]), threads=1)
