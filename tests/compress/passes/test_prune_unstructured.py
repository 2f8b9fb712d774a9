"""Magnitude and n:m pruning: exactly the smallest weights become zero, in the promised pattern,
and the model keeps plain weights that still classify."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bench.models.digits_cnn import digits_split, train_digits_cnn
from compress.core.errors import ConfigError
from compress.core.sparsity import check_n_m
from compress.passes.prune_unstructured import (
    MagnitudePruneConfig,
    SemiStructuredConfig,
    magnitude_prune_,
    prunable_layers,
    semi_structured_,
)

WEIGHTS = ("conv1", "conv2", "fc")  # the DigitsCNN's Linear and Conv layers


@pytest.fixture(scope="module")
def digits():
    data = digits_split()
    return data, train_digits_cnn(data, epochs=3)


def _accuracy(model: nn.Module, data) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(data["x_test"])).argmax(1).numpy() == data["y_test"]).mean())


def _untouched_except_weights(model: nn.Module, original: nn.Module) -> bool:
    """Biases, BatchNorm parameters and statistics are never pruned; the state_dict keeps its keys
    (no parametrization is left behind)."""
    new, old = model.state_dict(), original.state_dict()
    assert list(new) == list(old)
    return all(torch.equal(new[k], old[k]) for k in old if k not in {f"{w}.weight" for w in WEIGHTS})


def _n_m_reference(weight: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep the n largest |w| of every m input channels at each kernel position, by sorting in numpy."""
    w = np.moveaxis(weight, 1, -1) if weight.ndim > 2 else weight
    groups = np.abs(w).reshape(-1, m)
    keep = np.zeros_like(groups, dtype=bool)
    np.put_along_axis(keep, np.argsort(-groups, axis=1, kind="stable")[:, :n], True, axis=1)
    out = np.where(keep.reshape(w.shape), w, 0)
    return np.moveaxis(out, -1, 1) if weight.ndim > 2 else out


def test_magnitude_prune_zeroes_the_smallest_weights_of_each_layer_when_scope_is_layer(digits):
    data, trained = digits
    model = copy.deepcopy(trained)
    report = magnitude_prune_(model, MagnitudePruneConfig(0.5, scope="layer"))
    for path in WEIGHTS:
        before, after = trained.get_submodule(path).weight.detach(), model.get_submodule(path).weight.detach()
        zeroed = after == 0
        exact = round(0.5 * before.numel()) / before.numel()
        assert report["layers"][path] == {"pattern": "unstructured", "sparsity": exact}
        assert before[zeroed].abs().max() <= before[~zeroed].abs().min()
        assert torch.equal(after[~zeroed], before[~zeroed])
    assert _untouched_except_weights(model, trained)
    assert "no speed" in report["note"] and _accuracy(model, data) > 0.8


def test_magnitude_prune_uses_one_threshold_over_all_layers_when_scope_is_global(digits):
    data, trained = digits
    model = copy.deepcopy(trained)
    report = magnitude_prune_(model, MagnitudePruneConfig(0.7))
    before = torch.cat([trained.get_submodule(p).weight.detach().flatten() for p in WEIGHTS])
    after = torch.cat([model.get_submodule(p).weight.detach().flatten() for p in WEIGHTS])
    assert int((after == 0).sum()) == round(0.7 * before.numel()) and report["sparsity"] == pytest.approx(0.7, abs=1e-3)
    assert before[after == 0].abs().max() <= before[after != 0].abs().min()
    per_layer = [report["layers"][p]["sparsity"] for p in WEIGHTS]
    assert max(per_layer) - min(per_layer) > 0.05  # a global threshold prunes layers unevenly
    assert _untouched_except_weights(model, trained)


def test_semi_structured_gives_exactly_half_zeros_in_the_2_4_pattern_on_every_prunable_layer(digits):
    data, trained = digits
    model = copy.deepcopy(trained)
    report = semi_structured_(model, SemiStructuredConfig())
    assert set(report["layers"]) == {"conv2", "fc"}
    assert report["skipped"] == {"conv1": "input dimension 1 is not a multiple of 4"}
    for path in ("conv2", "fc"):
        weight = model.get_submodule(path).weight.detach()
        assert report["layers"][path] == {"pattern": "2:4", "sparsity": 0.5}
        assert check_n_m(weight, 2, 4) and check_n_m(weight.numpy(), 2, 4)
        expected = _n_m_reference(trained.get_submodule(path).weight.detach().numpy(), 2, 4)
        np.testing.assert_array_equal(weight.numpy(), expected)
    assert not check_n_m(trained.conv2.weight.detach(), 2, 4)  # a dense weight does not pass
    assert "cuSPARSELt" in report["note"] and "CPUs gain no speed" in report["note"]
    assert _untouched_except_weights(model, trained) and _accuracy(model, data) > 0.5


def test_semi_structured_keeps_one_of_four_when_n_is_1():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Conv1d(8, 4, 1))
    report = semi_structured_(model, SemiStructuredConfig(n=1, m=4))
    assert {p: r["sparsity"] for p, r in report["layers"].items()} == {"0": 0.75, "2": 0.75}
    assert check_n_m(model[0].weight, 1, 4) and check_n_m(model[2].weight, 1, 4)
    assert not check_n_m(model[0].weight, 1, 8)  # each group of 8 holds two kept weights
    assert "not a pattern GPUs accelerate" in report["note"]


def test_prunable_layers_leaves_out_embeddings_norms_and_weights_tied_to_an_embedding():
    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.norm, self.proj = nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 8)
            self.head = nn.Linear(8, 10, bias=False)
            self.head.weight = self.embed.weight

    layers, skipped = prunable_layers(TiedLM())
    assert list(layers) == ["proj"] and skipped == {"head": "weight is tied to an embedding"}


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsity": 1.0}, r"in \[0, 1\)"),
    ({"sparsity": -0.2}, r"in \[0, 1\)"),
    ({"sparsity": 0.5, "scope": "row"}, "one of global, layer"),
])
def test_magnitude_prune_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MagnitudePruneConfig(**kwargs)


@pytest.mark.parametrize("n, m", [(4, 4), (0, 4), (3, 2)])
def test_semi_structured_config_rejects_n_when_not_below_m(n, m):
    with pytest.raises(ConfigError, match="1 <= n < m"):
        SemiStructuredConfig(n=n, m=m)
