"""Distillation on real models: a noisy copy of a trained digits CNN learns its teacher back, a tiny
BERT learns through its layers, and an interrupted run resumes to exactly the weights of one that
was never interrupted."""

import copy
import dataclasses
import io
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.models.digits_cnn import digits_split, train_digits_cnn
from compress.core.errors import ConfigError, InputError, OutputError
from compress.core.model import Model
from compress.core.progress import Progress
from compress.core.spec import TensorSpec
from compress.load.hf_dir import SentenceEmbedder
from compress.passes.distill import DistillConfig, distill
from compress.passes.distill_losses import cosine_loss, kl_loss


@pytest.fixture(scope="module")
def digits():
    return digits_split()


def _image_model(module, shape=(1, 8, 8)):
    return Model(module.eval(), (TensorSpec("x", ("batch", *shape)),), "classification", Path("digits"), "test")


def _noisy_copy(model: Model, scale: float, seed: int = 1) -> Model:
    module = copy.deepcopy(model.module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale * p.std().clamp(min=1e-3))
    return dataclasses.replace(model, module=module)


def _batches(arrays: dict, size: int):
    count = len(next(iter(arrays.values())))
    return [{k: v[i:i + size] for k, v in arrays.items()} for i in range(0, count, size)]


class DigitsMLP(nn.Module):
    """Dropout and BatchNorm: both must be replayed exactly by a resumed run."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


def _mlp_pair(digits, seed=0):
    torch.manual_seed(seed)
    teacher = _image_model(DigitsMLP(), (64,))
    student = _noisy_copy(teacher, 0.5)
    data = _batches({"x": digits["x_train"][:200].reshape(-1, 64)}, 50)
    return teacher, student, data


def _bert_pair():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=16))
    names = ["input_ids", "attention_mask"]
    specs = tuple(TensorSpec(n, ("batch", "sequence"), "int64") for n in names)
    teacher = Model(SentenceEmbedder(bert, names, "mean", True).eval(), specs, "embedding", Path("bert"), "hf", hf_model=bert)
    student_module = _noisy_copy(teacher, 0.3).module
    student = dataclasses.replace(teacher, module=student_module, hf_model=student_module.encoder)
    return teacher, student


def _tokens(count, seed=0, length=8):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 60, size=(count, length))
    mask = (np.arange(length)[None] < rng.integers(3, length + 1, size=(count, 1))).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask}


def _state(model: Model) -> dict:
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def _assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_distill_lowers_kl_and_raises_agreement_of_a_noisy_digits_cnn(digits):
    teacher = _image_model(train_digits_cnn(digits, epochs=3))
    student = _noisy_copy(teacher, 0.6)
    x_test = torch.from_numpy(digits["x_test"])

    def kl_and_agreement():
        with torch.no_grad():
            t, s = teacher.module(x_test), student.module(x_test)
        return kl_loss(s, t, 2.0).item(), (t.argmax(-1) == s.argmax(-1)).float().mean().item()

    kl_before, agree_before = kl_and_agreement()
    config = DistillConfig(learning_rate=3e-3, batch_size=64, max_steps=60, grad_clip=None)
    report = distill(teacher, student, config, _batches({"x": digits["x_train"]}, 100))
    kl_after, agree_after = kl_and_agreement()
    assert kl_after < 0.5 * kl_before, (kl_before, kl_after)
    assert agree_after > agree_before + 0.05 and agree_after > 0.9, (agree_before, agree_after)
    assert report["steps"] == 60 and report["stopped_by"] == "max_steps" and report["resumed_from_step"] is None
    assert report["hidden_pairs"] == [] and "not a transformers model" in report["hidden_note"]
    assert set(report["loss"]) == {"total", "output"} and report["loss"]["output"]["final"] < report["loss"]["output"]["mean"]
    assert report["device"] == "cpu" and report["accelerate_version"]
    assert not student.module.training and not teacher.module.training  # modes handed back as they came


def test_distill_pairs_bert_layers_and_moves_the_student_toward_the_teacher():
    teacher, student = _bert_pair()
    held_out = {k: torch.from_numpy(v) for k, v in _tokens(32, seed=9).items()}

    def distance():
        with torch.no_grad():
            return cosine_loss(student.module(*held_out.values()), teacher.module(*held_out.values())).item()

    before = distance()
    report = distill(teacher, student, DistillConfig(learning_rate=2e-3, batch_size=16, max_steps=25), _batches(_tokens(64), 16))
    assert report["hidden_pairs"] == [["encoder.encoder.layer.0", "encoder.encoder.layer.0"],
                                      ["encoder.encoder.layer.1", "encoder.encoder.layer.1"]]
    assert report["loss"]["hidden"]["final"] < report["loss"]["hidden"]["mean"]
    assert distance() < 0.5 * before
    assert student.hf_model is student.module.encoder


def test_distill_runs_the_teacher_in_the_first_epoch_only_and_learns_as_without_the_cache():
    states, teacher_calls, reports = {}, {}, {}
    for cached in (True, False):
        teacher, student = _bert_pair()
        calls = []
        handle = teacher.module.register_forward_hook(lambda *_: calls.append(1))
        config = DistillConfig(learning_rate=2e-3, batch_size=16, epochs=3, cache_teacher=cached)
        reports[cached] = distill(teacher, student, config, _batches(_tokens(64), 16))
        handle.remove()
        states[cached], teacher_calls[cached] = _state(student), len(calls)
    assert teacher_calls == {True: 4, False: 12}  # 4 steps an epoch
    assert reports[True]["teacher_cache"]["used"] and reports[True]["teacher_cache"]["steps_from_cache"] == 8
    assert not reports[False]["teacher_cache"]["used"]
    for key in states[True]:  # float16 hidden-state targets: not the same numbers, the same training
        assert torch.allclose(states[True][key], states[False][key], atol=2e-3), key
    assert abs(reports[True]["loss"]["total"]["final"] - reports[False]["loss"]["total"]["final"]) < 0.01 * reports[False]["loss"]["total"]["final"]


def test_a_shared_teacher_cache_serves_a_second_student_on_the_same_data_and_not_other_data():
    from compress.passes.teacher_cache import TeacherCache

    teacher, first = _bert_pair()
    _, second = _bert_pair()
    config = DistillConfig(learning_rate=2e-3, batch_size=16, epochs=1)
    other = TeacherCache(samples=1, sequence=None, data="other data")  # built for other samples: left alone
    report = distill(teacher, first, config, _batches(_tokens(64), 16), teacher_cache=other)
    assert report["teacher_cache"]["steps_computing_teacher"] == 4 and other.store == {}
    shared, calls = TeacherCache(), []
    handle = teacher.module.register_forward_hook(lambda *_: calls.append(1))
    reports = [distill(teacher, student, config, _batches(_tokens(64), 16), teacher_cache=shared) for student in (first, second)]
    handle.remove()
    assert len(calls) == 4  # the first student's epoch ran the teacher; the second read every target back
    assert [r["teacher_cache"]["steps_computing_teacher"] for r in reports] == [4, 0]
    assert reports[1]["teacher_cache"]["steps_from_cache"] == 4


def test_distill_augments_a_small_text_set_and_leaves_it_alone_when_told():
    from types import SimpleNamespace

    tokenizer = SimpleNamespace(mask_token_id=3, all_special_ids=[0, 1, 2, 3])  # the two attributes augmentation reads
    reports = {}
    for copies in (None, 0):
        teacher, student = _bert_pair()
        teacher = dataclasses.replace(teacher, tokenizer=tokenizer)
        reports[copies] = distill(teacher, student, DistillConfig(batch_size=16, max_steps=2, augment_copies=copies), _batches(_tokens(64), 16))
    assert reports[None]["augmentation"] == {"copies": 20, "rate": 0.15, "samples_after": 64 * 21}
    assert reports[None]["steps_per_epoch"] == 64 * 21 // 16 and reports[None]["samples"] == 64
    assert reports[0]["augmentation"] == {"copies": 0} and reports[0]["steps_per_epoch"] == 4


def test_distill_keeps_a_pruned_students_zero_weights_at_zero(digits):
    teacher, student, data = _mlp_pair(digits)
    weight = student.module.net[0].weight
    with torch.no_grad():
        weight.view(-1)[weight.abs().view(-1).argsort()[:1024]] = 0.0  # the smaller half
    zeros, before = weight == 0, weight.detach().clone()
    report = distill(teacher, student, DistillConfig(learning_rate=1e-2, batch_size=16, max_steps=5), data)
    after = student.module.net[0].weight
    assert report["zeros_kept"] == int(zeros.sum()) == 32 * 64 // 2
    assert torch.all(after[zeros] == 0) and not torch.equal(after[~zeros], before[~zeros])


def test_distill_rebatches_data_to_the_configured_batch_size_and_stops_after_epochs(digits):
    teacher, student, _ = _mlp_pair(digits)
    data = _batches({"x": digits["x_train"][:50].reshape(-1, 64)}, 7)  # 50 samples in batches of 7
    report = distill(teacher, student, DistillConfig(batch_size=16, epochs=2), data)
    assert report["steps_per_epoch"] == 3 and report["steps"] == 6 and report["epochs_seen"] == 2.0
    assert report["stopped_by"] == "epochs" and report["samples"] == 50


def test_distill_gives_identical_weights_when_run_twice_with_one_seed(digits):
    results = []
    for seed in (0, 0, 1):
        teacher, student, data = _mlp_pair(digits)
        distill(teacher, student, DistillConfig(learning_rate=1e-2, batch_size=16, max_steps=5, seed=seed), data)
        results.append(_state(student))
    _assert_same_weights(results[0], results[1])
    assert not torch.equal(results[0]["net.0.weight"], results[2]["net.0.weight"])


def test_distill_resumes_to_the_weights_of_an_uninterrupted_run_when_a_step_is_interrupted(digits, tmp_path):
    config = DistillConfig(learning_rate=1e-2, batch_size=16, max_steps=7, checkpoint_every=3, warmup_steps=2)
    teacher, student, data = _mlp_pair(digits)
    distill(teacher, student, config, data)
    uninterrupted = _state(student)

    teacher, student, data = _mlp_pair(digits)
    calls = []

    def interrupt_fifth_forward(*_):  # after dropout drew its mask and BatchNorm updated its statistics
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt

    handle = student.module.register_forward_hook(interrupt_fifth_forward)
    with pytest.raises(KeyboardInterrupt):
        distill(teacher, student, config, data, checkpoint_dir=tmp_path)
    handle.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000003", "step-000004"]
    assert json.loads((tmp_path / "step-000004" / "distill.json").read_text())["step"] == 4

    report = distill(teacher, student, config, data, checkpoint_dir=tmp_path, resume=True)
    assert report["resumed_from_step"] == 4 and report["steps"] == 7 and report["steps_this_run"] == 3
    _assert_same_weights(_state(student), uninterrupted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000006", "step-000007"]  # only the newest two


def test_distill_finishes_the_step_saves_and_resumes_exactly_when_ctrl_c_arrives(tmp_path):
    config = DistillConfig(learning_rate=1e-3, batch_size=4, max_steps=8, checkpoint_every=50)
    data = _batches(_tokens(22), 5)  # 5 steps an epoch: the run crosses an epoch boundary
    teacher, student = _bert_pair()
    distill(teacher, student, config, data)
    uninterrupted = _state(student)

    teacher, student = _bert_pair()
    calls = []

    def ctrl_c_in_third_step(*_):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    handle = student.module.register_forward_hook(ctrl_c_in_third_step)
    with pytest.raises(KeyboardInterrupt):
        distill(teacher, student, config, data, checkpoint_dir=tmp_path)
    handle.remove()
    assert [p.name for p in tmp_path.iterdir()] == ["step-000003"]  # the third step was finished first

    report = distill(teacher, student, config, data, checkpoint_dir=tmp_path, resume=True)
    assert report["resumed_from_step"] == 3 and report["steps"] == 8
    _assert_same_weights(_state(student), uninterrupted)


def test_distill_stops_at_the_time_budget_and_saves_a_checkpoint(digits, tmp_path):
    teacher, student, data = _mlp_pair(digits)
    report = distill(teacher, student, DistillConfig(batch_size=16, time_budget_s=1e-3), data, checkpoint_dir=tmp_path)
    assert report["stopped_by"] == "time_budget" and report["steps"] == 1
    assert report["checkpoint"] == str(tmp_path / "step-000001")


def test_distill_raises_input_error_when_data_is_smaller_than_one_batch(digits):
    teacher, student, _ = _mlp_pair(digits)
    data = [{"x": digits["x_train"][:10].reshape(-1, 64)}]
    with pytest.raises(InputError, match="has 10 samples, fewer than one batch of 16; give more data or a smaller --distill-batch"):
        distill(teacher, student, DistillConfig(batch_size=16, max_steps=1), data)


def test_distill_raises_input_error_when_resuming_without_a_checkpoint(digits, tmp_path):
    teacher, student, data = _mlp_pair(digits)
    with pytest.raises(InputError, match="nothing to resume.*drop --resume"):
        distill(teacher, student, DistillConfig(max_steps=1), data, checkpoint_dir=tmp_path, resume=True)


def test_distill_raises_input_error_naming_fields_when_resuming_with_another_config(digits, tmp_path):
    teacher, student, data = _mlp_pair(digits)
    distill(teacher, student, DistillConfig(batch_size=16, max_steps=2), data, checkpoint_dir=tmp_path)
    with pytest.raises(InputError, match=r"temperature \(checkpoint 2.0, now 3.0\); learning_rate \(checkpoint 5e-05, now 0.001\)"):
        distill(teacher, student, DistillConfig(batch_size=16, max_steps=4, learning_rate=1e-3, temperature=3.0), data,
                checkpoint_dir=tmp_path, resume=True)
    report = distill(teacher, student, DistillConfig(batch_size=16, max_steps=4), data, checkpoint_dir=tmp_path, resume=True)
    assert report["resumed_from_step"] == 2 and report["steps"] == 4  # a later stop is not a different trajectory


def test_distill_raises_output_error_when_a_fresh_run_meets_old_checkpoints(digits, tmp_path):
    teacher, student, data = _mlp_pair(digits)
    distill(teacher, student, DistillConfig(batch_size=16, max_steps=1), data, checkpoint_dir=tmp_path)
    with pytest.raises(OutputError, match="pass --resume"):
        distill(teacher, student, DistillConfig(batch_size=16, max_steps=1), data, checkpoint_dir=tmp_path)


def test_distill_shows_a_bar_with_the_loss_unless_progress_is_quiet(digits):
    for quiet in (False, True):
        teacher, student, data = _mlp_pair(digits)
        stream = io.StringIO()
        distill(teacher, student, DistillConfig(batch_size=16, max_steps=2), data, progress=Progress(quiet=quiet, stream=stream))
        shown = stream.getvalue()
        assert ("distill" in shown and "2/2" in shown and "loss=" in shown) is not quiet, shown


@pytest.mark.parametrize("field, value, message", [
    ("temperature", 0.0, "temperature 0.0 must be above 0"),
    ("hidden_loss", "l1", "use one of mse, cosine"),
    ("batch_size", 0, "batch size 0 must be a whole number"),
    ("max_steps", 0, "max_steps 0"),
    ("output_weight", -1.0, "weights must be 0 or more"),
    ("grad_clip", 0.0, "or None to turn clipping off"),
    ("learning_rate", 0.0, "learning rate 0.0 must be above 0"),
])
def test_distill_config_raises_config_error_when_a_value_is_invalid(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(**{"max_steps": 10, field: value})


def test_distill_config_raises_config_error_when_nothing_says_when_to_stop():
    with pytest.raises(ConfigError, match="set max_steps, time_budget_s or epochs"):
        DistillConfig()


def test_distill_config_round_trips_through_json():
    from compress.core.registry import config_from_json

    config = DistillConfig(time_budget_s=30.0, hidden_loss="cosine", grad_clip=None)
    assert config_from_json(json.loads(json.dumps(config.to_json()))) == config


def test_trim_padding_drops_columns_padded_in_every_sample_only():
    import torch

    from compress.passes.distill_loop import trim_padding

    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    ids = torch.arange(12).reshape(2, 6)
    out = trim_padding({"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1])})
    assert torch.equal(out["input_ids"], ids[:, :3]) and torch.equal(out["attention_mask"], mask[:, :3])
    assert torch.equal(out["labels"], torch.tensor([0, 1]))
    left_padded = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]])
    assert trim_padding({"input_ids": ids, "attention_mask": left_padded})["input_ids"].shape == (2, 6)


@pytest.mark.parametrize("freeze", [True, False])
def test_distill_keeps_embedding_tables_only_when_frozen(freeze):
    import copy

    import torch
    import transformers as t

    from compress.core.model import Model
    from compress.core.spec import parse_input_spec, random_inputs
    from compress.load.hf_dir import TaskHead
    from compress.passes.distill import DistillConfig, distill

    torch.manual_seed(0)
    hf = t.BertModel(t.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=16)).eval()
    specs = (parse_input_spec("input_ids:4x8:int64"),)
    teacher = Model(TaskHead(hf, ["input_ids"], "last_hidden_state"), specs, "generic", "t", "hf", hf_model=hf)
    student_module = copy.deepcopy(teacher.module)
    with torch.no_grad():
        for p in student_module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    student = Model(student_module, specs, "generic", "s", "hf", hf_model=student_module.model)
    before = student_module.model.embeddings.word_embeddings.weight.detach().clone()
    batches = [random_inputs(specs, {"batch": 4, "sequence": 8}, seed=i) for i in range(4)]
    distill(teacher, student, DistillConfig(max_steps=3, batch_size=4, learning_rate=1e-2, freeze_embeddings=freeze), batches)
    after = student.module.model.embeddings.word_embeddings.weight
    assert torch.equal(after, before) == freeze
    assert after.requires_grad  # the caller's module comes back as it was given


def _attention_gap(teacher, student, pairs, arrays) -> float:
    """Mean KL between the paired layers' attention distributions on ``arrays``, measured outside distillation."""
    from compress.passes.distill_attention import AttentionCapture, attention_kl, eager_attention

    inputs = {k: torch.as_tensor(v) for k, v in arrays.items()}
    with eager_attention([teacher, student], student, []), torch.no_grad():
        taken = {}
        for who, model, paths in (("teacher", teacher, [t for t, _ in pairs]), ("student", student, [s for _, s in pairs])):
            capture = AttentionCapture(model.module, paths, who)
            model.module.eval()(inputs["input_ids"], inputs["attention_mask"])
            taken[who] = [capture.take(p) for p in paths]
            capture.remove()
    return float(sum(attention_kl(s, t, inputs["attention_mask"]) for s, t in zip(taken["student"], taken["teacher"])) / len(pairs))


def _layer_removed_pair():
    """A teacher whose attention is peaked (query weights scaled up: a random BERT attends almost
    uniformly) and a student copied from it before that, with its first layer removed."""
    from compress.passes.prune_layers import LayerPruneConfig, prune_layers_

    teacher, student = _bert_pair()
    with torch.no_grad():
        for layer in teacher.hf_model.encoder.layer:
            layer.attention.self.query.weight.mul_(20.0)
    prune_layers_(student, LayerPruneConfig(layers=1))
    return teacher, student


def test_the_attention_loss_pulls_a_layer_removed_students_attention_towards_the_teachers_and_leaves_the_models_as_they_were():
    teacher, student = _layer_removed_pair()
    data, held_out = _tokens(64), _tokens(32, seed=1)
    config = DistillConfig(learning_rate=3e-3, batch_size=16, epochs=4, output_weight=0.0, hidden_weight=0.0, attention_weight=1.0)
    report = distill(teacher, student, config, _batches(data, 16))
    pairs = [tuple(p) for p in report["attention_pairs"]]
    assert pairs == [("encoder.encoder.layer.1.attention.self", "encoder.encoder.layer.0.attention.self")]  # the teacher layer it kept
    assert report["teacher_cache"]["steps_from_cache"] == 12  # attention targets read back after the first epoch
    after = _attention_gap(teacher, student, pairs, held_out)
    _, fresh = _layer_removed_pair()
    assert after < 0.5 * _attention_gap(teacher, fresh, pairs, held_out)
    assert teacher.hf_model.config._attn_implementation == student.hf_model.config._attn_implementation == "sdpa"
    assert all(m.p > 0 for m in student.module.modules() if isinstance(m, nn.Dropout))  # the student's dropout back as it was


def test_the_attention_loss_skips_layers_whose_heads_were_pruned_and_says_so():
    from compress.passes.prune_heads import HeadPruneConfig, prune_heads_

    teacher, student = _bert_pair()
    prune_heads_(student, HeadPruneConfig(heads=0.5, ffn=0.0, importance="magnitude"))
    config = DistillConfig(learning_rate=1e-3, batch_size=16, max_steps=2, attention_weight=1.0)
    report = distill(teacher, student, config, _batches(_tokens(32), 16))
    assert report["attention_pairs"] == [] and "fewer" in report["attention_note"]
