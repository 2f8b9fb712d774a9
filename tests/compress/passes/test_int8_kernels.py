"""Int8DynamicConfig / quantize_: Linear layers become Int8Linear in place, GELU fused where it
follows, on the bundled MiniLM scored on held-out text."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from compress.core.errors import ConfigError, QuantizationError
from compress.core.registry import config_from_json
from compress.load.data import default_data
from compress.ops.int8_linear import Int8Linear
from compress.passes.int8_kernels import Int8DynamicConfig
from compress.pipeline.quantize_api import quantize_


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(scope="module")
def quantized_minilm(minilm_model):
    module = copy.deepcopy(minilm_model.module)
    assert quantize_(module, Int8DynamicConfig(backend="kernels")) is module
    return module


def test_quantize_swaps_every_linear_of_minilm_and_fuses_the_intermediate_gelu(quantized_minilm):
    int8 = {name: m for name, m in quantized_minilm.named_modules() if isinstance(m, Int8Linear)}
    assert len(int8) == 36 + 1  # 6 layers x (q, k, v, out, intermediate, output) + the pooler
    assert not any(type(m) is torch.nn.Linear for m in quantized_minilm.modules())
    gelu = sorted(name for name, m in int8.items() if m.activation == "gelu")
    assert len(gelu) == 6 and all(name.endswith("intermediate.dense") for name in gelu)
    for name in gelu:  # the activation module it replaced is now a no-op
        parent = quantized_minilm.get_submodule(name.rsplit(".", 1)[0])
        assert isinstance(parent.intermediate_act_fn, torch.nn.Identity)


def test_quantized_minilm_keeps_its_embeddings_on_held_out_text(minilm_model, quantized_minilm):
    data = default_data(minilm_model, "evaluation", 64, 16, 128)
    ref = np.concatenate([minilm_model.forward_numpy(b)[0] for b in data.batches])
    got = np.concatenate([minilm_model.forward_numpy(b, quantized_minilm)[0] for b in data.batches])
    cos = _cosines(ref, got)
    assert cos.mean() > 0.99 and cos.min() > 0.98
    assert not np.allclose(ref, got)  # it really runs INT8


def test_quantize_leaves_excluded_layers_in_float(minilm_model):
    module = copy.deepcopy(minilm_model.module)
    from compress.passes.int8_kernels import quantize_linear_layers_

    summary = quantize_linear_layers_(module, Int8DynamicConfig(exclude=("encoder.pooler", "encoder.encoder.layer.5")))
    kept = [n for n, m in module.named_modules() if type(m) is torch.nn.Linear]
    assert sorted(kept) == sorted(summary["float_layers"]) and len(kept) == 7
    assert summary["quantized_layers"] == 30


def test_quantize_names_the_layers_when_an_exclude_matches_nothing(minilm_model):
    with pytest.raises(QuantizationError, match="exclude names \\['classifier'\\] match no Linear layer"):
        quantize_(copy.deepcopy(minilm_model.module), Int8DynamicConfig(exclude=("classifier",)))


def test_quantize_fuses_gelu_in_a_sequential():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8), torch.nn.GELU(approximate="tanh"))
    x = torch.randn(5, 32)
    want = mlp(x)
    quantize_(mlp, Int8DynamicConfig())
    assert mlp[0].activation == "gelu" and isinstance(mlp[1], torch.nn.Identity)
    assert mlp[2].activation == "none" and isinstance(mlp[3], torch.nn.GELU)  # the tanh form is not the kernel's GELU
    assert ((mlp(x) - want).abs().max() / want.abs().max()).item() < 0.05


def test_quantize_refuses_a_module_without_linear_layers():
    with pytest.raises(QuantizationError, match="no nn.Linear layer"):
        quantize_(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), Int8DynamicConfig())


def test_config_validates_and_round_trips_through_json():
    with pytest.raises(ConfigError, match="backend 'onnx' is unknown; use 'kernels'"):
        Int8DynamicConfig(backend="onnx")
    with pytest.raises(ConfigError, match="tuple of module paths"):
        Int8DynamicConfig(exclude="classifier")
    cfg = Int8DynamicConfig(exclude=("encoder.pooler",), fuse_gelu=False)
    assert config_from_json(cfg.to_json()) == cfg


def test_quantize_static_api_still_requires_data_and_an_output():
    from compress.pipeline.static_int8.config import Int8StaticConfig

    with pytest.raises(ConfigError, match="static INT8 needs calibration data and an output directory"):
        quantize_(torch.nn.Linear(2, 2), Int8StaticConfig())
