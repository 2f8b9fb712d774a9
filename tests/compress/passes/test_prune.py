"""``prune_`` routes each config to its pass and works on the Model the pipeline holds."""

import numpy as np
import pytest
import torch

from bench.models.digits_cnn import DigitsCNN
from compress.core.errors import InputError
from compress.core.model import Model
from compress.core.sparsity import check_n_m
from compress.core.spec import parse_input_spec
from compress.passes.prune import prune_
from compress.passes.prune_channels import ChannelPruneConfig
from compress.passes.prune_unstructured import SemiStructuredConfig
from tests.conftest import DIGITS_SPEC


def _digits_model() -> Model:
    torch.manual_seed(0)
    return Model(DigitsCNN().eval(), (parse_input_spec(DIGITS_SPEC),), "classification", "digits.pt", "pytorch")


def _loop(model: Model):
    batches = [{"x": np.random.default_rng(i).random((8, 1, 8, 8), dtype=np.float32)} for i in range(2)]

    def forward_loop(run):
        for b in batches:
            run(b)
    return forward_loop, batches


@pytest.mark.parametrize("importance", ["l1", "taylor"])
def test_prune_channels_through_prune_halves_convs_and_keeps_output_shape(importance):
    model = _digits_model()
    loop, batches = _loop(model)
    report = prune_(model, ChannelPruneConfig(ratio=0.5, importance=importance), loop)
    assert report["kind"] == "channels"
    assert (model.module.conv1.out_channels, model.module.conv2.out_channels) == (8, 16)
    assert model.module.fc.in_features == 16 * 4 * 4
    assert model.forward_numpy(batches[0])[0].shape == (8, 10)


def test_prune_semi_structured_through_prune_leaves_every_layer_two_of_four():
    model = _digits_model()
    report = prune_(model, SemiStructuredConfig())
    assert report["kind"] == "2:4"
    assert check_n_m(model.module.fc.weight) and check_n_m(model.module.conv2.weight)


def test_prune_refuses_onnx_models_with_the_fix():
    model = Model(None, (parse_input_spec(DIGITS_SPEC),), "classification", "m.onnx", "onnx")
    with pytest.raises(InputError, match="PyTorch form"):
        prune_(model, SemiStructuredConfig())


def test_prune_channels_needs_a_batch_to_trace():
    with pytest.raises(InputError, match="--calib"):
        prune_(_digits_model(), ChannelPruneConfig(ratio=0.5))
