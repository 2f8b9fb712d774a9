import numpy as np
import pytest
import torch

from compress.core.errors import CompressError, InputError
from compress.core.spec import TensorSpec, make_static, parse_input_spec, random_inputs, to_torch


def test_parse_input_spec_makes_first_axis_dynamic_batch_by_default():
    spec = parse_input_spec("x:1x3x224x224:float32")
    assert spec == TensorSpec("x", ("batch", 3, 224, 224), "float32")
    assert spec.dynamic_axes == {0: "batch"}


def test_parse_input_spec_keeps_every_axis_fixed_when_dynamic_batch_false():
    spec = parse_input_spec("x:1x3x224x224:float32", dynamic_batch=False)
    assert spec.shape == (1, 3, 224, 224)
    assert spec.dynamic_axes == {}


def test_parse_input_spec_keeps_named_axes_dynamic():
    spec = parse_input_spec("input_ids:batchxsequence:int64")
    assert spec.shape == ("batch", "sequence")
    assert spec.dynamic_axes == {0: "batch", 1: "sequence"}
    assert spec.dtype == "int64"


@pytest.mark.parametrize("alias, dtype", [("fp16", "float16"), ("long", "int64"), ("double", "float64"), ("float", "float32")])
def test_parse_input_spec_resolves_dtype_aliases(alias, dtype):
    assert parse_input_spec(f"x:2x4:{alias}").dtype == dtype


def test_parse_input_spec_defaults_dtype_to_float32_when_omitted():
    spec = parse_input_spec("x:2x4")
    assert spec.dtype == "float32" and spec.shape == ("batch", 4)


def test_tensor_spec_str_round_trips_through_parse_input_spec():
    spec = parse_input_spec("pixel_values:1x3x32x32:float16")
    assert parse_input_spec(str(spec)) == spec


@pytest.mark.parametrize("text", [
    "x",                    # no shape
    ":1x3:float32",         # no name
    "1x:1x3:float32",       # name is not an identifier
    "x:1x3:float32:extra",  # too many parts
    "x:0x3:float32",        # zero size
    "x:1x-3:float32",       # negative size
    "x:1xx3:float32",       # empty dimension
    "x::float32",           # empty shape
    "x:1x3:float33",        # unknown dtype
    "x:1x3.5:float32",      # fractional size
])
def test_parse_input_spec_raises_input_error_when_spec_is_malformed(text):
    with pytest.raises(InputError):
        parse_input_spec(text)


def test_parse_input_spec_raises_input_error_when_size_is_a_non_ascii_digit():
    # "²".isdigit() is True but int("²") raises ValueError: the CLI would show a traceback.
    with pytest.raises(InputError):
        parse_input_spec("x:²x3:float32")


def test_tensor_spec_raises_input_error_when_dtype_unknown():
    with pytest.raises(InputError, match="complex64"):
        TensorSpec("x", (1, 2), "complex64")
    assert issubclass(InputError, CompressError)


def test_concrete_shape_fills_batch_with_2_and_other_axes_with_8_by_default():
    spec = TensorSpec("ids", ("batch", "sequence", 4), "int64")
    assert spec.concrete_shape() == (2, 8, 4)
    assert spec.concrete_shape({"batch": 5, "sequence": 13}) == (5, 13, 4)
    assert make_static(spec, {"batch": 3}).shape == (3, 8, 4)


def test_tensor_spec_json_round_trip_returns_equal_spec():
    spec = TensorSpec("ids", ("batch", "sequence"), "int64")
    assert TensorSpec.from_json(spec.to_json()) == spec
    assert spec.to_json() == {"name": "ids", "shape": ["batch", "sequence"], "dtype": "int64"}


def test_random_inputs_follow_spec_shapes_and_dtypes_and_are_seeded():
    specs = (TensorSpec("x", ("batch", 3), "float32"), TensorSpec("ids", ("batch", "sequence"), "int64"),
             TensorSpec("mask", ("batch", "sequence"), "bool"))
    a = random_inputs(specs, {"batch": 4, "sequence": 6}, seed=3)
    b = random_inputs(specs, {"batch": 4, "sequence": 6}, seed=3)
    c = random_inputs(specs, {"batch": 4, "sequence": 6}, seed=4)
    assert a["x"].shape == (4, 3) and a["x"].dtype == np.float32
    assert a["ids"].shape == (4, 6) and a["ids"].dtype == np.int64
    assert a["mask"].dtype == np.bool_ and a["mask"].all()
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.array_equal(a["x"], c["x"])


def test_to_torch_converts_to_the_spec_dtype():
    specs = (TensorSpec("x", ("batch", 2), "float16"), TensorSpec("ids", ("batch",), "int64"))
    tensors = to_torch({"x": np.ones((2, 2), np.float32), "ids": np.array([1, 2], np.int32)}, specs)
    assert tensors["x"].dtype == torch.float16
    assert tensors["ids"].dtype == torch.int64
    assert tensors["ids"].tolist() == [1, 2]
