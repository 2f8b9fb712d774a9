import numpy as np
import pytest
import torch

from compress.core.errors import InputError, UnsafeLoadError
from compress.core.spec import TensorSpec, parse_input_spec
from compress.load.loaders import detect_format, load_model
from tests.conftest import DIGITS_SPEC


def _reference_logits(cnn, x):
    with torch.no_grad():
        return cnn(torch.from_numpy(x)).numpy()


def test_load_model_reads_torchscript_with_input_spec_and_detects_classification(digits_files, digits_cnn, digits_data):
    model = load_model(digits_files["torchscript"], (parse_input_spec(DIGITS_SPEC),))
    assert model.format == "torchscript"
    assert model.task == "classification"
    assert model.inputs == (TensorSpec("x", ("batch", 1, 8, 8), "float32"),)
    assert model.output_names == ("output",)
    x = digits_data["x_test"][:5]
    np.testing.assert_allclose(model.forward_numpy({"x": x})[0], _reference_logits(digits_cnn, x), atol=1e-5)


def test_load_model_requires_input_spec_when_torchscript(digits_files):
    with pytest.raises(InputError, match="--input"):
        load_model(digits_files["torchscript"])


def test_load_model_reads_spec_from_pt2_with_dynamic_batch(digits_files, digits_cnn, digits_data):
    model = load_model(digits_files["pt2"])
    assert model.format == "pt2"
    assert model.inputs == (TensorSpec("x", ("batch", 1, 8, 8), "float32"),)
    assert model.inputs[0].dynamic_axes == {0: "batch"}
    assert model.task == "classification"
    x = digits_data["x_test"][:7]  # a batch size the program was not exported with
    np.testing.assert_allclose(model.forward_numpy({"x": x})[0], _reference_logits(digits_cnn, x), atol=1e-5)


def test_load_model_keeps_explicit_task_when_pt2(digits_files):
    model = load_model(digits_files["pt2"], task="embedding")
    assert model.task == "embedding"


def test_load_model_refuses_pt2_when_input_names_differ(digits_files):
    with pytest.raises(InputError, match=r"\['pixels'\] are not inputs of"):
        load_model(digits_files["pt2"], (parse_input_spec("pixels:1x1x8x8:float32"),))


def test_load_model_refuses_an_input_spec_that_disagrees_with_the_file(digits_files, digits_onnx):
    for path in (digits_files["pt2"], digits_onnx):
        for text in ("x:1x1x8x8:int64", "x:1x3x8x8:float32", "x:1x8x8:float32"):
            with pytest.raises(InputError, match=r"disagrees with .*records x:"):
                load_model(path, (parse_input_spec(text),))
        model = load_model(path, (parse_input_spec("x:1x1x8x8"),))  # agrees; an omitted dtype is the file's
        assert [str(s) for s in model.inputs] == ["x:batchx1x8x8:float32"]


def test_load_model_loads_pickled_module_when_trusted(digits_files, digits_cnn, digits_data):
    model = load_model(digits_files["pickle"], (parse_input_spec(DIGITS_SPEC),), trust_pickle=True)
    assert model.format == "pickle"
    assert model.task == "classification"
    assert not model.module.training
    x = digits_data["x_test"][:3]
    np.testing.assert_allclose(model.forward_numpy({"x": x})[0], _reference_logits(digits_cnn, x), atol=1e-6)


def test_load_model_refuses_pickle_when_not_trusted(digits_files):
    with pytest.raises(UnsafeLoadError, match="--trust-pickle"):
        load_model(digits_files["pickle"], (parse_input_spec(DIGITS_SPEC),))


def test_load_model_refuses_state_dict_even_when_trusted(digits_files):
    for trust in (False, True):
        with pytest.raises(InputError, match="state_dict"):
            load_model(digits_files["state_dict"], (parse_input_spec(DIGITS_SPEC),), trust_pickle=trust)


def test_load_model_reads_spec_from_onnx_graph(digits_onnx):
    model = load_model(digits_onnx)
    assert model.format == "onnx" and model.is_onnx and model.module is None
    assert model.inputs == (TensorSpec("x", ("batch", 1, 8, 8), "float32"),)
    assert model.task == "classification"  # one [batch, 10] output
    assert model.output_names == ("output",)


def test_load_model_refuses_onnx_when_input_name_unknown(digits_onnx):
    with pytest.raises(InputError, match="not inputs"):
        load_model(digits_onnx, (parse_input_spec("pixels:1x1x8x8:float32"),))


def test_load_model_raises_input_error_when_spec_does_not_fit_model(digits_files):
    with pytest.raises(InputError, match="x:batchx3x8x8:float32"):
        load_model(digits_files["torchscript"], (parse_input_spec("x:1x3x8x8:float32"),))


def test_load_model_raises_input_error_when_task_unknown(digits_files):
    with pytest.raises(InputError, match="unknown task"):
        load_model(digits_files["pt2"], task="segmentation")


def test_detect_format_tells_formats_apart_by_content_not_extension(digits_files, tmp_path):
    # Same bytes, misleading names: the zip members decide.
    for kind in ("torchscript", "pt2", "pickle"):
        renamed = tmp_path / f"{kind}.bin"
        renamed.write_bytes(digits_files[kind].read_bytes())
        assert detect_format(renamed) == kind
    assert detect_format(digits_files["state_dict"]) == "pickle"


def test_detect_format_raises_input_error_when_file_missing(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        detect_format(tmp_path / "nope.pt")


def test_detect_format_raises_input_error_when_file_empty(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        detect_format(empty)


def test_detect_format_raises_input_error_when_bytes_unknown(tmp_path):
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"NOTAMODEL" + np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match="unknown model format"):
        detect_format(junk)


def test_detect_format_raises_input_error_when_directory_has_no_config(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        detect_format(tmp_path)


def test_load_model_raises_input_error_when_torchscript_truncated(digits_files, tmp_path):
    data = digits_files["torchscript"].read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_model(cut, (parse_input_spec(DIGITS_SPEC),))


def test_load_model_raises_input_error_when_onnx_file_is_not_onnx(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(InputError, match="not a valid ONNX model"):
        load_model(fake)


def test_load_model_raises_input_error_when_pickle_holds_no_module(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(InputError, match="holds a Tensor, not a model"):
        load_model(path, (parse_input_spec(DIGITS_SPEC),))


def test_load_model_loads_legacy_non_zip_pickle_when_trusted(digits_cnn, digits_data, tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(digits_cnn, path, _use_new_zipfile_serialization=False)  # the pre-1.6 format
    assert path.read_bytes()[:1] == b"\x80"
    model = load_model(path, (parse_input_spec(DIGITS_SPEC),), trust_pickle=True)
    assert model.format == "pickle"
    x = digits_data["x_test"][:3]
    np.testing.assert_allclose(model.forward_numpy({"x": x})[0], _reference_logits(digits_cnn, x), atol=1e-6)


def test_load_model_raises_input_error_when_trusted_legacy_pickle_truncated(digits_cnn, tmp_path):
    whole = tmp_path / "legacy.pt"
    torch.save(digits_cnn, whole, _use_new_zipfile_serialization=False)
    cut = tmp_path / "legacy_cut.pt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError, match="legacy_cut.pt"):
        load_model(cut, (parse_input_spec(DIGITS_SPEC),), trust_pickle=True)
