"""Distillation losses against the math written out in numpy, and the hidden states they compare."""

from pathlib import Path

import numpy as np
import pytest
import torch

from compress.core.errors import InputError
from compress.core.model import Model
from compress.core.spec import TensorSpec
from compress.load.hf_dir import SentenceEmbedder, TaskHead
from compress.passes.distill_losses import HiddenCapture, cosine_loss, default_hidden_pairs, kl_loss, mse_loss, output_loss


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _bert(layers=2, embedding=True):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=16)).eval()
    names = ["input_ids", "attention_mask"]
    module = SentenceEmbedder(bert, names, "mean", True) if embedding else TaskHead(bert, names, "last_hidden_state")
    specs = tuple(TensorSpec(n, ("batch", "sequence"), "int64") for n in names)
    return Model(module, specs, "embedding" if embedding else "generic", Path("bert"), "hf", hf_model=bert)


def test_kl_loss_matches_temperature_scaled_kl_of_softened_distributions():
    rng = np.random.default_rng(0)
    student, teacher, t = rng.normal(size=(4, 5)) * 3, rng.normal(size=(4, 5)) * 3, 3.0
    log_s, log_t = _log_softmax(student / t), _log_softmax(teacher / t)
    expected = (np.exp(log_t) * (log_t - log_s)).sum(-1).mean() * t ** 2
    got = kl_loss(torch.tensor(student), torch.tensor(teacher), t)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert kl_loss(torch.tensor(teacher), torch.tensor(teacher), t).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_loss_averages_over_every_row_when_logits_have_a_sequence_axis():
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    flat = kl_loss(torch.tensor(student.reshape(6, 4)), torch.tensor(teacher.reshape(6, 4)), 2.0)
    assert kl_loss(torch.tensor(student), torch.tensor(teacher), 2.0).item() == pytest.approx(flat.item())


def test_cosine_loss_is_one_minus_cosine_similarity_averaged():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert cosine_loss(torch.tensor(a), torch.tensor(b)).item() == pytest.approx((1 - cos).mean(), rel=1e-5)


def test_mse_loss_ignores_padded_positions_when_given_a_matching_mask():
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    keep = mask.astype(bool)
    expected = ((s - t) ** 2)[keep].mean()
    got = mse_loss(torch.tensor(s), torch.tensor(t), torch.tensor(mask))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    s[~keep] += 100.0  # what padding holds must not matter
    assert mse_loss(torch.tensor(s), torch.tensor(t), torch.tensor(mask)).item() == pytest.approx(expected, rel=1e-5)
    assert mse_loss(torch.tensor(s), torch.tensor(t)).item() > 100  # no mask: every element counts


def test_cosine_loss_ignores_padded_positions_when_given_a_matching_mask():
    rng = np.random.default_rng(4)
    s, t = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 5))
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    cos = (s * t).sum(-1) / (np.linalg.norm(s, axis=-1) * np.linalg.norm(t, axis=-1))
    expected = (1 - cos)[mask.astype(bool)].mean()
    assert cosine_loss(torch.tensor(s), torch.tensor(t), torch.tensor(mask)).item() == pytest.approx(expected, rel=1e-5)


def test_output_loss_picks_kl_cosine_or_mse_by_task():
    rng = np.random.default_rng(5)
    s, t = torch.tensor(rng.normal(size=(3, 4))), torch.tensor(rng.normal(size=(3, 4)))
    assert output_loss("classification", s, t, 2.0).item() == pytest.approx(kl_loss(s, t, 2.0).item())
    assert output_loss("embedding", s, t, 2.0).item() == pytest.approx(cosine_loss(s, t).item())
    assert output_loss("generic", s, t, 2.0).item() == pytest.approx(((s - t) ** 2).mean().item())


def test_output_loss_raises_input_error_when_shapes_differ():
    with pytest.raises(InputError, match="shape"):
        output_loss("generic", torch.zeros(2, 4), torch.zeros(2, 5), 1.0)


def test_default_hidden_pairs_pairs_transformer_layers_one_to_one():
    pairs, note = default_hidden_pairs(_bert(), _bert(embedding=False))
    assert pairs == [("encoder.encoder.layer.0", "model.encoder.layer.0"), ("encoder.encoder.layer.1", "model.encoder.layer.1")]
    assert note is None


def test_a_student_with_fewer_layers_is_paired_with_the_teacher_layers_it_keeps_and_one_with_more_is_not():
    pairs, note = default_hidden_pairs(_bert(layers=2), _bert(layers=1))
    assert note is None and [(t.rsplit(".", 1)[1], s.rsplit(".", 1)[1]) for t, s in pairs] == [("1", "0")]
    pairs, note = default_hidden_pairs(_bert(layers=1), _bert(layers=2))
    assert pairs == [] and "1 layers" in note and "student 2" in note


def test_default_hidden_pairs_is_empty_with_a_note_when_a_model_is_not_transformers():
    plain = Model(torch.nn.Linear(4, 4), (TensorSpec("x", ("batch", 4)),), "generic", Path("x"), "test")
    pairs, note = default_hidden_pairs(_bert(), plain)
    assert pairs == [] and "student" in note and "hidden_pairs" in note


def test_hidden_capture_keeps_the_first_tensor_a_layer_outputs():
    model = _bert()
    capture = HiddenCapture(model.module, ["encoder.encoder.layer.1"], "teacher")
    ids = torch.randint(1, 50, (2, 6))
    with torch.no_grad():
        want = model.hf_model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        model.module(ids, torch.ones_like(ids))
    torch.testing.assert_close(capture.take("encoder.encoder.layer.1"), want)
    capture.remove()
    model.module(ids, torch.ones_like(ids))
    assert capture.outputs == {}


def test_hidden_capture_raises_input_error_naming_a_missing_submodule():
    with pytest.raises(InputError, match="no submodule 'encoder.nope'"):
        HiddenCapture(_bert().module, ["encoder.nope"], "teacher")
