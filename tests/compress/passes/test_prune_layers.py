"""Whole-layer removal: the student is the teacher minus the removed layers (same answers as
running the kept layers alone), it saves and loads back, and distillation pairs each student
layer with the teacher layer it came from."""

import copy

import numpy as np
import pytest
import torch

from compress.core.errors import ConfigError
from compress.core.model import Model, clone_model
from compress.passes.distill_losses import default_hidden_pairs
from compress.passes.prune_layers import (
    LayerPruneConfig,
    kept_layers,
    prune_layers_,
    transformer_layers,
)
from tests.compress.passes.test_prune_heads import _batches, _tiny


def test_kept_layers_are_evenly_spaced_from_the_last_down():
    assert kept_layers(6, 3) == [1, 3, 5]  # every other layer, DistilBERT-style
    assert kept_layers(12, 8) == [2, 5, 8, 11]  # TinyBERT's uniform 4-of-12
    assert kept_layers(6, 2) == [1, 2, 4, 5]
    assert kept_layers(3, 0) == [0, 1, 2]
    with pytest.raises(ConfigError, match="remove at most 5"):
        kept_layers(6, 6)


@pytest.mark.parametrize("family", ["bert", "distilbert", "gpt2"])
def test_removing_a_layer_equals_running_the_kept_layers(family, tmp_path):
    model = _tiny(family, tmp_path)
    reference = Model(copy.deepcopy(model.module), model.inputs, model.task, model.source, model.format)
    name, layers = transformer_layers(reference.module)
    report = prune_layers_(model, LayerPruneConfig(layers=1))
    assert report["kept"] == [1] and report["parameters_after"] < report["parameters_before"]
    # the reference with layer 0 replaced by the identity: what the pruned model must compute
    parent, _, attr = name.rpartition(".")
    setattr(reference.module.get_submodule(parent) if parent else reference.module, attr, torch.nn.ModuleList([layers[1]]))
    for batch in _batches(model, 2):
        np.testing.assert_allclose(model.forward_numpy(batch)[0], reference.forward_numpy(batch)[0], atol=1e-6)
    config = model.hf_model.config
    assert getattr(config, {"bert": "num_hidden_layers", "distilbert": "n_layers", "gpt2": "n_layer"}[family]) == 1


def test_a_layer_pruned_model_with_pruned_heads_saves_and_loads_back(tmp_path):
    from compress.load.hf_pruned import save_hf_dir
    from compress.load.loaders import load_model
    from compress.passes.prune_heads import HeadPruneConfig, prune_heads_

    model = _tiny("bert", tmp_path)
    prune_heads_(model, HeadPruneConfig(heads=0.5, importance="magnitude"))
    removed_in_layer_1 = model.hf_model.config.pruned_heads["1"]
    prune_layers_(model, LayerPruneConfig(layers=1))
    assert model.hf_model.config.pruned_heads == {"0": removed_in_layer_1}  # renumbered to the kept layer
    save_hf_dir(model, tmp_path / "saved")
    again = load_model(tmp_path / "saved", model.inputs)
    batch = _batches(model, 1)[0]
    np.testing.assert_allclose(again.forward_numpy(batch)[0], model.forward_numpy(batch)[0], atol=1e-6)


def test_distillation_pairs_student_layers_with_the_teacher_layers_they_came_from(tmp_path):
    teacher = _tiny("bert", tmp_path)
    student = clone_model(teacher)
    prune_layers_(student, LayerPruneConfig(layers=1))
    pairs, note = default_hidden_pairs(teacher, student)
    assert note is None and [(t.rsplit(".", 1)[1], s.rsplit(".", 1)[1]) for t, s in pairs] == [("1", "0")]


def test_layer_prune_config_refuses_nothing_to_remove():
    with pytest.raises(ConfigError, match="removes nothing"):
        LayerPruneConfig(layers=0)
