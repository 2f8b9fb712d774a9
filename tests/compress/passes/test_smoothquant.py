"""SmoothQuant: the smoothed model answers the same in float, and its Linear inputs get flatter."""

import numpy as np
import pytest
import torch
from torch import nn

from compress.core.errors import ConfigError
from compress.core.model import Model, clone_model
from compress.core.spec import parse_input_spec
from compress.passes.linear_inputs import linear_groups
from compress.passes.smoothquant import ScaledInputLinear, SmoothQuantConfig, smooth_quant_


class PreNormBlock(nn.Module):
    """LayerNorm feeding only two Linears (foldable), then GELU feeding a Linear (explicit scale)."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.up, self.gate = nn.Linear(16, 32), nn.Linear(16, 32)
        self.act = nn.GELU()
        self.down = nn.Linear(32, 16)

    def forward(self, x):
        h = self.norm(x)
        return self.down(self.act(self.up(h))) + self.gate(h).sum(-1, keepdim=True)


def _outlier_batches(n=4):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        x = rng.normal(size=(8, 16)).astype(np.float32)
        x[:, 3] *= 30  # one outlier channel, as transformers have
        out.append({"x": x})
    return out


def _model(module):
    return Model(module.eval(), (parse_input_spec("x:1x16:float32"),), "generic", source=None, format="test")


def test_smoothquant_folds_into_a_layernorm_that_feeds_only_linears_and_keeps_outputs():
    torch.manual_seed(0)
    model = _model(PreNormBlock())
    batches = _outlier_batches()
    before = [model.forward_numpy(b)[0] for b in batches]
    norm_weight = model.module.norm.weight.detach().clone()
    report = smooth_quant_(model, SmoothQuantConfig(0.5), lambda run: [run(b) for b in batches], batches[0])
    kinds = {tuple(g["layers"]): g["scale_in"] for g in report["groups"]}
    assert kinds[("gate", "up")] == "norm"  # folded: no extra op at run time
    assert kinds[("down",)] == "explicit multiply"
    assert isinstance(model.module.down, ScaledInputLinear) and isinstance(model.module.up, nn.Linear)
    assert not torch.equal(model.module.norm.weight, norm_weight)
    for b, ref in zip(batches, before):
        np.testing.assert_allclose(model.forward_numpy(b)[0], ref, rtol=1e-4, atol=1e-4)


def test_smoothquant_does_not_fold_into_a_layernorm_that_also_feeds_the_residual(minilm_model):
    from compress.load.data import builtin_text

    model = clone_model(minilm_model)
    batches = builtin_text(model, "calibration", 8, 4, 32).batches
    reference = [model.forward_numpy(b)[0] for b in batches]
    report = smooth_quant_(model, SmoothQuantConfig(0.85), lambda run: [run(b) for b in batches], batches[0])
    assert len(report["groups"]) == 18  # per layer: Q/K/V together, the FFN input, the FFN output
    assert all(g["scale_in"] == "explicit multiply" for g in report["groups"])  # post-LN BERT: LN output is also the residual
    for b, ref in zip(batches, reference):
        np.testing.assert_allclose(model.forward_numpy(b)[0], ref, atol=2e-5)
    assert minilm_model.module is not model.module


def test_smoothquant_flattens_the_outlier_channel():
    torch.manual_seed(0)
    model = _model(PreNormBlock())
    batches = [{"x": np.abs(b["x"])} for b in _outlier_batches()]
    seen = {}
    hook = model.module.up.register_forward_pre_hook(lambda m, a: seen.setdefault("before", a[0].abs().amax(0)))
    model.forward_numpy(batches[0])
    hook.remove()
    smooth_quant_(model, SmoothQuantConfig(0.8), lambda run: [run(b) for b in batches], batches[0])
    hook = model.module.up.register_forward_pre_hook(lambda m, a: seen.setdefault("after", a[0].abs().amax(0)))
    model.forward_numpy(batches[0])
    hook.remove()
    ratio = lambda t: float(t.max() / t.median())
    assert ratio(seen["after"]) < ratio(seen["before"]) / 2


def test_linear_groups_finds_shared_inputs():
    groups = linear_groups(PreNormBlock().eval(), (torch.randn(2, 16),))
    assert {(g.linears, g.feeder_kind, g.foldable) for g in groups} == {(("gate", "up"), "layernorm", True), (("down",), "activation", False)}


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_smoothquant_config_rejects_alpha_outside_zero_one(alpha):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        SmoothQuantConfig(alpha)
