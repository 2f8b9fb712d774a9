import numpy as np
import pytest

from compress.core.errors import ExportError
from compress.core.model import Model
from compress.core.spec import parse_input_spec
from export.onnx.parity import check_parity
from tests.conftest import DIGITS_SPEC


def test_check_parity_passes_with_small_error_when_onnx_matches(digits_onnx, digits_ts_model, digits_data):
    sets = [{"x": digits_data["x_test"][:2]}, {"x": digits_data["x_test"][10:13]}]
    result = check_parity(digits_ts_model, digits_onnx, sets, atol=1e-4, rtol=1e-3)
    assert result.max_abs_error < 1e-4
    assert 0 <= result.max_rel_error < 1e-4
    assert result.shapes_checked == ["2x1x8x8", "3x1x8x8"]
    assert result.to_json()["shapes_checked"] == ["2x1x8x8", "3x1x8x8"]


def test_check_parity_raises_export_error_when_onnx_is_of_another_model(digits_onnx, digits_ts_model, other_digits_cnn,
                                                                        digits_data, tmp_path):
    other = Model(other_digits_cnn, (parse_input_spec(DIGITS_SPEC),), "classification", tmp_path / "other.pt", "pickle")
    x = {"x": digits_data["x_test"][:4]}
    # Same input spec, but the two models differ on these inputs well beyond the tolerance.
    assert np.abs(other.forward_numpy(x)[0] - digits_ts_model.forward_numpy(x)[0]).max() > 0.1
    with pytest.raises(ExportError, match="does not match PyTorch on output output"):
        check_parity(other, digits_onnx, [x], atol=1e-4, rtol=1e-3)


def test_check_parity_reports_the_max_abs_error_it_measured(digits_onnx, digits_ts_model, digits_data):
    import onnxruntime as ort

    x = digits_data["x_test"][:6]
    got = ort.InferenceSession(str(digits_onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    expected = digits_ts_model.forward_numpy({"x": x})[0]
    want_abs = float(np.abs(got.astype(np.float64) - expected).max())
    result = check_parity(digits_ts_model, digits_onnx, [{"x": x}], atol=1.0, rtol=0.0)
    assert result.max_abs_error == pytest.approx(want_abs, rel=1e-6, abs=1e-12)
    assert result.max_rel_error == pytest.approx(want_abs / np.abs(expected).max(), rel=1e-6, abs=1e-12)
