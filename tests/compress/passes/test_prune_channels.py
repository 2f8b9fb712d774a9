"""Channel pruning: the pruned model is smaller and computes exactly what the original computes
when the layers reading the removed channels ignore them; channels are chosen by importance."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bench.models.digits_cnn import digits_split, train_digits_cnn
from compress.core.errors import ConfigError, InputError
from compress.core.registry import config_from_json
from compress.passes.prune_channels import ChannelPruneConfig, prune_channels_


@pytest.fixture(scope="module")
def digits():
    data = digits_split()
    return data, train_digits_cnn(data, epochs=3)


def _x(data, n=64, split="x_test"):
    return torch.from_numpy(data[split][:n])


def _top(score: torch.Tensor, keep: int) -> list[int]:
    return sorted(torch.argsort(score, descending=True, stable=True)[:keep].tolist())


def _l1(conv: nn.Module) -> torch.Tensor:
    return conv.weight.detach().abs().flatten(1).sum(1)


def _removed(channels: int, kept: list[int]) -> list[int]:
    return sorted(set(range(channels)) - set(kept))


def _columns(channels: list[int], spatial: int) -> list[int]:
    """The Linear input features of these channels after a flatten of H*W = ``spatial``."""
    return [c * spatial + j for c in channels for j in range(spatial)]


@torch.no_grad()
def _ignoring(model: nn.Module, reads: dict[str, list[int]]) -> nn.Module:
    """A copy of ``model`` whose layers give zero weight to the input features listed for them:
    what the pruned model must compute exactly."""
    ref = copy.deepcopy(model)
    for path, features in reads.items():
        ref.get_submodule(path).weight[:, features] = 0
    return ref


def _assert_same_outputs(pruned: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        got, want = pruned(x), reference(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: one ReLU module used twice, ``out += identity``, a 1x1 downsample."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    """Two residual adds: stem + layer1.conv2, and layer2.conv2 + layer2.downsample.0."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1, self.layer2 = BasicBlock(8, 8), BasicBlock(8, 16, stride=2)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


def test_prune_channels_keeps_highest_l1_filters_and_matches_original_when_readers_ignore_the_rest(digits):
    data, trained = digits
    model = copy.deepcopy(trained).train()  # train mode on purpose: pruning must not move BatchNorm statistics
    report = prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))
    kept1, kept2 = report["layers"]["conv1"]["kept"], report["layers"]["conv2"]["kept"]
    assert kept1 == _top(_l1(trained.conv1), 8) and kept2 == _top(_l1(trained.conv2), 16)
    assert model.training and model.bn1.training
    torch.testing.assert_close(model.conv1.weight, trained.conv1.weight[kept1])
    torch.testing.assert_close(model.bn1.running_mean, trained.bn1.running_mean[kept1])
    assert (model.conv2.in_channels, model.conv2.out_channels, model.fc.in_features) == (8, 16, 16 * 16)
    reference = _ignoring(trained, {"conv2": _removed(16, kept1), "fc": _columns(_removed(32, kept2), 16)})
    _assert_same_outputs(model.eval(), reference, _x(data))


@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_prune_channels_shrinks_parameters_by_about_the_ratio_when_ratio_is(digits, ratio):
    data, trained = digits
    model = copy.deepcopy(trained)
    report = prune_channels_(model, ChannelPruneConfig(ratio), (_x(data, 2),))
    assert report["parameters"] == {"before": _params(trained), "after": _params(model)}
    # layers pruned on both sides shrink by (1 - r)^2, the rest by (1 - r)
    assert (1 - ratio) ** 2 - 0.02 < _params(model) / _params(trained) < 1 - ratio
    assert model(_x(data)).shape == trained(_x(data)).shape


def test_prune_channels_classifies_well_above_chance_after_short_finetune(digits):
    data, trained = digits
    model = copy.deepcopy(trained)
    prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    model.train()
    for _ in range(2):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model.eval()(_x(data, None)).argmax(1).numpy() == data["y_test"]).mean()
    assert accuracy > 0.85  # chance is 0.1


def test_prune_channels_keeps_identical_channels_ranked_by_summed_l1_when_convs_feed_a_residual_add(digits):
    data, _ = digits
    torch.manual_seed(0)
    original = TinyResNet()
    with torch.no_grad():  # real BatchNorm statistics, so slicing them matters
        original(_x(data, 256, "x_train"))
    original.eval()
    model = copy.deepcopy(original)
    report = prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))
    kept = {path: layer["kept"] for path, layer in report["layers"].items()}
    assert sorted(map(sorted, report["groups"])) == [["layer1.conv2", "stem.0"], ["layer2.conv2", "layer2.downsample.0"]]
    assert kept["stem.0"] == kept["layer1.conv2"] == _top(_l1(original.stem[0]) + _l1(original.layer1.conv2), 4)
    assert kept["layer2.conv2"] == kept["layer2.downsample.0"] == _top(
        _l1(original.layer2.conv2) + _l1(original.layer2.downsample[0]), 8)
    assert kept["layer1.conv1"] == _top(_l1(original.layer1.conv1), 4) and report["skipped"] == {}
    assert model.layer2.bn2.num_features == model.layer2.downsample[1].num_features == 8
    removed = {path: _removed(len(original.get_submodule(path).weight), k) for path, k in kept.items()}
    reference = _ignoring(original, {
        "layer1.conv1": removed["stem.0"], "layer2.conv1": removed["stem.0"], "layer2.downsample.0": removed["stem.0"],
        "layer1.conv2": removed["layer1.conv1"], "layer2.conv2": removed["layer2.conv1"], "fc": removed["layer2.conv2"]})
    _assert_same_outputs(model, reference, _x(data))
    assert report["parameters"]["after"] < 0.35 * report["parameters"]["before"]


class CatCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.left, self.right = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(1, 10, 3, padding=1)
        self.mix, self.fc = nn.Conv2d(16, 8, 3, padding=1), nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = torch.cat([F.relu(self.left(x)), F.relu(self.right(x))], dim=1)
        return self.fc(torch.flatten(F.avg_pool2d(self.mix(h), 2), 1))


def test_prune_channels_slices_each_part_of_a_cat_at_its_offset(digits):
    data, _ = digits
    torch.manual_seed(0)
    original = CatCNN().eval()
    model = copy.deepcopy(original)
    layers = prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))["layers"]
    assert {k: (v["before"], v["after"]) for k, v in layers.items()} == {"left": (6, 3), "right": (10, 5), "mix": (8, 4)}
    assert model.mix.in_channels == 8
    mix_reads = _removed(6, layers["left"]["kept"]) + [6 + c for c in _removed(10, layers["right"]["kept"])]
    reference = _ignoring(original, {"mix": mix_reads, "fc": _columns(_removed(8, layers["mix"]["kept"]), 16)})
    _assert_same_outputs(model, reference, _x(data))


class DepthwiseCNN(nn.Module):
    def __init__(self, groups: int = 8):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=groups)
        self.pw, self.fc = nn.Conv2d(8, 8, 1), nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = F.relu(self.dw(F.relu(self.bn(self.conv(x)))))
        return self.fc(F.max_pool2d(self.pw(h), 2).flatten(1))


def test_prune_channels_prunes_depthwise_conv_together_with_its_producer(digits):
    data, _ = digits
    torch.manual_seed(0)
    original = DepthwiseCNN().eval()
    model = copy.deepcopy(original)
    layers = prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))["layers"]
    assert layers["dw"] == layers["conv"] and layers["dw"]["after"] == 4
    assert (model.dw.in_channels, model.dw.out_channels, model.dw.groups, model.dw.weight.shape[0]) == (4, 4, 4, 4)
    reference = _ignoring(original, {"pw": _removed(8, layers["conv"]["kept"]),
                                     "fc": _columns(_removed(8, layers["pw"]["kept"]), 16)})
    _assert_same_outputs(model, reference, _x(data))


def test_prune_channels_skips_with_reason_when_a_conv_feeds_a_grouped_conv(digits):
    data, _ = digits
    torch.manual_seed(0)
    model = DepthwiseCNN(groups=2).eval()
    before = copy.deepcopy(model)
    report = prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))
    assert "grouped convolution dw (groups=2)" in report["skipped"]["conv"]
    assert report["skipped"]["dw"].startswith("grouped convolution (groups=2)")
    assert model.conv.out_channels == 8 and model.pw.out_channels == 4  # pw does not depend on the grouped conv's input
    assert report["parameters"]["after"] < report["parameters"]["before"]
    assert model(_x(data)).shape == before(_x(data)).shape


class OutputAndViewCNN(nn.Module):
    """c2 is reshaped (not a flatten into a Linear: not followed), c3 is a model output: only c1 can be pruned."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1), nn.Conv2d(8, 2, 1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        h = F.relu(self.c1(x))
        return self.fc(self.c2(h).reshape(-1, 4 * 8 * 8)), self.c3(h)


def test_prune_channels_skips_convs_that_feed_the_model_output_or_a_reshape(digits):
    data, _ = digits
    torch.manual_seed(0)
    model = OutputAndViewCNN().eval()
    shapes = [t.shape for t in model(_x(data))]
    report = prune_channels_(model, ChannelPruneConfig(0.5), (_x(data, 2),))
    assert list(report["layers"]) == ["c1"] and model.c1.out_channels == 4
    assert "Tensor.reshape" in report["skipped"]["c2"] and report["skipped"]["c3"] == "feeds the model output"
    assert [t.shape for t in model(_x(data))] == shapes


class NarrowCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.narrow, self.wide, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 8, 3, padding=1), nn.Linear(8 * 64, 10)

    def forward(self, x):
        return self.fc(self.wide(F.relu(self.narrow(x))).flatten(1))


def test_prune_channels_raises_config_error_naming_the_layer_when_ratio_would_empty_it(digits):
    data, _ = digits
    model = NarrowCNN()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ConfigError, match=r"all 2 output channels of narrow.*ratio below 0\.75"):
        prune_channels_(model, ChannelPruneConfig(0.8), (_x(data, 2),))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing changed


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, math.nan])
def test_channel_prune_config_rejects_ratio_when_outside_0_to_1(ratio):
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\).*e\.g\. 0\.3"):
        ChannelPruneConfig(ratio)


def test_channel_prune_config_rejects_unknown_importance_and_round_trips_json():
    with pytest.raises(ConfigError, match="one of l1, taylor"):
        ChannelPruneConfig(0.3, importance="random")
    config = ChannelPruneConfig(0.3, importance="taylor")
    assert config_from_json(config.to_json()) == config


def _reference_taylor(model: nn.Module, batches, loss_fn) -> dict[str, torch.Tensor]:
    """sum over batches of |w * dL/dw| per output filter, by plain autograd on a copy."""
    model = copy.deepcopy(model).eval()
    scores = {"conv1": 0, "conv2": 0}
    for x, y in batches:
        model.zero_grad()
        loss_fn(model(x), y).backward()
        for path in scores:
            conv = model.get_submodule(path)
            scores[path] = scores[path] + (conv.weight * conv.weight.grad).abs().flatten(1).sum(1).detach()
    return scores


@pytest.mark.parametrize("with_targets", [False, True])
def test_prune_channels_keeps_highest_taylor_filters_when_importance_is_taylor(digits, with_targets):
    data, trained = digits
    x, y = torch.from_numpy(data["x_train"][:192]), torch.from_numpy(data["y_train"][:192])
    batches = list(zip(x.split(64), y.split(64)))
    loss_fn = (lambda out, target: F.cross_entropy(out, target)) if with_targets else None
    model = copy.deepcopy(trained)
    model.zero_grad(set_to_none=True)
    report = prune_channels_(model, ChannelPruneConfig(0.5, "taylor"), (x[:2],),
                             forward_loop=lambda run: [run(bx, target=by) for bx, by in batches], loss_fn=loss_fn)
    scores = _reference_taylor(trained, batches, loss_fn or (lambda out, _: out.pow(2).sum()))
    assert report["layers"]["conv1"]["kept"] == _top(scores["conv1"], 8)
    assert report["layers"]["conv2"]["kept"] == _top(scores["conv2"], 16)
    by_l1 = [_top(_l1(trained.conv1), 8), _top(_l1(trained.conv2), 16)]
    assert [report["layers"][p]["kept"] for p in ("conv1", "conv2")] != by_l1  # the importance really changed
    assert all(p.grad is None for p in model.parameters())  # the caller's gradients are left alone


def test_prune_channels_raises_input_error_when_taylor_has_no_forward_loop(digits):
    data, trained = digits
    with pytest.raises(InputError, match="forward_loop"):
        prune_channels_(copy.deepcopy(trained), ChannelPruneConfig(0.5, "taylor"), (_x(data, 2),))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else self.conv(-x)


def test_prune_channels_raises_input_error_when_the_model_cannot_be_traced(digits):
    data, _ = digits
    with pytest.raises(InputError, match="cannot be traced"):
        prune_channels_(Branchy(), ChannelPruneConfig(0.5), (_x(data, 2),))
