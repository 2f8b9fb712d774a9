"""Int8Linear against float nn.Linear, on every device present."""

from __future__ import annotations

import pytest
import torch

from compress.ops.int8_linear import Int8Linear

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _linear(k=96, n=40, bias=True, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(k, n, bias=bias)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_follows_the_float_layer_within_int8_rounding(device, bias):
    linear = _linear(bias=bias).to(device)
    int8 = Int8Linear.from_float(linear)
    x = torch.randn(3, 5, 96, device=device)
    want, got = linear(x), int8(x)
    assert got.shape == want.shape and got.dtype == x.dtype
    rel = ((got - want).abs().max() / want.abs().max()).item()
    assert 0 < rel < 0.03


def test_int8_linear_stores_weights_as_int8_per_output_channel():
    linear = _linear()
    int8 = Int8Linear.from_float(linear)
    assert int8.int8_weight().dtype == torch.int8 and int8.int8_weight().shape == (40, 96) and int8.w_scale.shape == (40,)
    torch.testing.assert_close(int8.w_scale, linear.weight.abs().amax(dim=1) / 127)
    # dequantized weights are within half a step of the float ones, row by row
    step = int8.w_scale[:, None]
    assert ((int8.int8_weight().float() * step - linear.weight).abs() <= step / 2 + 1e-7).all()


def test_int8_linear_with_fused_gelu_matches_linear_then_gelu():
    linear = _linear()
    fused = Int8Linear.from_float(linear, activation="gelu")
    plain = Int8Linear.from_float(linear)
    x = torch.randn(7, 96)
    torch.testing.assert_close(fused(x), torch.nn.functional.gelu(plain(x)), rtol=1e-5, atol=1e-5)


def test_int8_linear_state_dict_round_trips_into_a_fresh_module():
    int8 = Int8Linear.from_float(_linear(), activation="gelu")
    fresh = Int8Linear(96, 40, bias=True, activation="gelu")
    fresh.load_state_dict(int8.state_dict())
    x = torch.randn(4, 96)
    assert torch.equal(fresh(x), int8(x))


def test_int8_linear_takes_bfloat16_input_on_cpu_and_returns_its_dtype():
    int8 = Int8Linear.from_float(_linear())
    x = torch.randn(2, 96)
    got = int8(x.bfloat16())
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), int8(x.bfloat16().float()), rtol=1e-2, atol=1e-2)


def test_int8_linear_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match="activation 'relu' is not one of"):
        Int8Linear(4, 4, activation="relu")
