"""Head and FFN pruning: the pruned model must compute exactly what the original computes with
those heads and neurons switched off, for every supported family, and must really be smaller."""

import copy

import numpy as np
import pytest
import torch

from compress.core.errors import ConfigError, InputError
from compress.core.model import Model
from compress.core.spec import parse_input_spec, random_inputs, to_torch
from compress.load.loaders import load_model
from compress.load.transformer_blocks import find_blocks, output_rows
from compress.passes.prune_heads import HeadPruneConfig, prune_heads_, taylor_scores


def _tiny(family: str, tmp_path) -> Model:
    import transformers as t

    torch.manual_seed(0)
    path = tmp_path / family
    if family == "bert":
        t.BertModel(t.BertConfig(vocab_size=300, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=96, max_position_embeddings=64)).save_pretrained(path)
    elif family == "distilbert":
        t.DistilBertModel(t.DistilBertConfig(vocab_size=300, dim=48, hidden_dim=96, n_layers=2, n_heads=4,
                                             max_position_embeddings=64)).save_pretrained(path)
    else:
        t.GPT2Model(t.GPT2Config(vocab_size=300, n_embd=48, n_layer=2, n_head=4, n_positions=64)).save_pretrained(path)
    return load_model(path, (parse_input_spec("input_ids:2x16:int64"),))


def _batches(model: Model, n: int = 3, seq: int = 16) -> list[dict]:
    return [random_inputs(model.inputs, {"batch": 4, "sequence": seq}, seed=i) for i in range(n)]


def _loop(batches):
    def forward_loop(run):
        for b in batches:
            run(b)
    return forward_loop


@torch.no_grad()
def _switch_off(model: Model, kept_heads: dict[str, list[int]], kept_ffn: dict[str, torch.Tensor]) -> None:
    """Reference: zero the output-projection inputs of the removed heads and neurons; nothing else changes."""
    attention, ffn = find_blocks(model.module)
    for block in attention:
        removed = [h for h in range(block.num_heads) if h not in kept_heads[block.name]]
        output_rows(block.out)[:, block.head_columns(torch.tensor(removed, dtype=torch.long))] = 0
    for block in ffn:
        mask = torch.ones(block.width, dtype=torch.bool)
        mask[kept_ffn[block.name]] = False
        output_rows(block.down)[:, mask] = 0


@pytest.mark.parametrize("family", ["bert", "distilbert", "gpt2"])
@pytest.mark.parametrize("importance", ["magnitude", "taylor"])
def test_prune_heads_matches_original_with_units_switched_off(family, importance, tmp_path):
    model = _tiny(family, tmp_path)
    reference = Model(copy.deepcopy(model.module), model.inputs, model.task, model.source, model.format)
    batches = _batches(model)
    _, ffn_before = find_blocks(model.module)
    # which FFN neurons survive is read off the pruned weights: their rows match original rows
    original_up = [output_rows(b.up).detach().clone() for b in ffn_before]

    report = prune_heads_(model, HeadPruneConfig(heads=0.5, ffn=0.5, importance=importance), _loop(batches))

    attention, ffn = find_blocks(model.module)
    assert all(b.num_heads == 2 for b in attention)
    assert [b.width for b in ffn] == [len(u) // 2 for u in original_up]
    assert report["parameters_after"] < report["parameters_before"]
    kept_heads = {layer["heads"]["module"]: layer["heads"]["kept"] for layer in report["layers"]}
    kept_ffn = {}
    for block, up in zip(ffn, original_up):
        rows = output_rows(block.up).detach()
        kept_ffn[block.name] = torch.tensor([int((up == r).all(1).nonzero()[0]) for r in rows])
    _switch_off(reference, kept_heads, kept_ffn)
    for batch in batches:
        np.testing.assert_allclose(model.forward_numpy(batch)[0], reference.forward_numpy(batch)[0], atol=2e-5, rtol=1e-4)


def test_prune_heads_updates_config_and_reloads_from_saved_dir(tmp_path):
    from compress.load.hf_pruned import save_hf_dir

    model = _tiny("bert", tmp_path)
    prune_heads_(model, HeadPruneConfig(heads=0.5, ffn=0.25, importance="magnitude"))
    config = model.hf_model.config
    assert config.intermediate_size == 72 and config.num_attention_heads == 4
    assert all(len(v) == 2 for v in config.pruned_heads.values()) and len(config.pruned_heads) == 2
    save_hf_dir(model, tmp_path / "saved")
    again = load_model(tmp_path / "saved", model.inputs)
    batch = _batches(model, 1)[0]
    np.testing.assert_allclose(again.forward_numpy(batch)[0], model.forward_numpy(batch)[0], atol=1e-6)
    with pytest.raises(InputError, match="exists"):
        save_hf_dir(model, tmp_path / "saved")


def test_prune_heads_twice_records_removed_heads_in_original_numbering(tmp_path):
    model = _tiny("bert", tmp_path)
    prune_heads_(model, HeadPruneConfig(heads=0.25, importance="magnitude"))
    first = {k: set(v) for k, v in model.hf_model.config.pruned_heads.items()}
    prune_heads_(model, HeadPruneConfig(heads=0.5, importance="magnitude"))
    second = {k: set(v) for k, v in model.hf_model.config.pruned_heads.items()}
    assert all(len(v) == 1 for v in first.values()) and all(len(v) == 3 for v in second.values())
    assert all(first[k] <= second[k] for k in first)


def test_taylor_scores_equal_per_sample_gate_gradients_squared(tmp_path):
    """Reference: explicit per-sample gates on every head, d<r, f>/dgate by autograd, squared and summed."""
    model = _tiny("bert", tmp_path)
    batches = _batches(model, 2)
    attention, ffn = find_blocks(model.module)
    heads, _ = taylor_scores(model, attention, [], _loop(batches))

    generator = torch.Generator().manual_seed(0)
    expected = [torch.zeros(b.num_heads, dtype=torch.float64) for b in attention]
    for batch in batches:
        gates = [torch.ones(4, b.num_heads, requires_grad=True) for b in attention]
        hooks = [b.out.register_forward_pre_hook(
            lambda _m, args, g=g, d=b.head_dim: (args[0] * g.repeat_interleave(d, dim=1)[:, None, :],)) for b, g in zip(attention, gates)]
        tensors = to_torch(batch, model.inputs)
        out = model.module(*[tensors[n] for n in model.input_names])
        (out * torch.randn(out.shape, generator=generator)).sum().backward()
        for h in hooks:
            h.remove()
        for e, g in zip(expected, gates):
            e += g.grad.double().pow(2).sum(0)
    for got, want in zip(heads, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("field, value", [("heads", 1.0), ("heads", -0.1), ("ffn", 1.5)])
def test_head_prune_config_rejects_ratio_outside_unit_interval(field, value):
    with pytest.raises(ConfigError, match=r"outside \[0, 1\)"):
        HeadPruneConfig(**{field: value})


def test_prune_heads_refuses_to_empty_a_layer_and_leaves_model_unchanged(tmp_path):
    model = _tiny("bert", tmp_path)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    with pytest.raises(ConfigError, match="heads of .*would leave none"):
        prune_heads_(model, HeadPruneConfig(heads=0.9, importance="magnitude"))
    assert all(torch.equal(v, model.module.state_dict()[k]) for k, v in before.items())


def test_prune_heads_names_module_types_looked_for_when_model_has_no_heads():
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    model = Model(module, (parse_input_spec("x:1x1x8x8:float32"),), "generic", "cnn.pt", "torchscript")
    with pytest.raises(InputError, match="looked for BERT-style self-attention"):
        prune_heads_(model, HeadPruneConfig(heads=0.5, importance="magnitude"))


def test_loading_a_pruned_dir_whose_weights_do_not_fit_says_it_was_edited(tmp_path):
    from safetensors.torch import load_file, save_file

    from compress.load.hf_pruned import save_hf_dir

    model = _tiny("bert", tmp_path)
    prune_heads_(model, HeadPruneConfig(heads=0.5, importance="magnitude"))
    save_hf_dir(model, tmp_path / "saved")
    weights = tmp_path / "saved" / "model.safetensors"
    state = load_file(str(weights))
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(weights))
    with pytest.raises(InputError, match="edited after pruning"):
        load_model(tmp_path / "saved", model.inputs)


def test_global_counts_keep_the_total_and_at_least_one_per_layer():
    from compress.passes.prune_heads import global_counts

    matters = torch.tensor([1.0, 0.9, 0.8, 0.7])
    barely = torch.tensor([0.05, 0.04, 0.03, 0.02])
    assert global_counts([matters, barely], 4) == [3, 1]  # the layer that barely matters gives its heads
    assert global_counts([barely, barely], 2) == [1, 1]  # nothing to give: each keeps its best
    one_carries = torch.tensor([10.0, 0.01, 0.01, 0.01])  # normalised: scale no longer counts, the spread does
    assert global_counts([matters * 100, one_carries], 4, normalise=True) == [3, 1]
    assert sum(global_counts([torch.rand(12), torch.rand(12), torch.rand(12)], 20)) == 20


def test_global_scope_prunes_only_the_kind_asked_for(tmp_path):
    model = _tiny("bert", tmp_path)
    attention, _ = find_blocks(model.module)
    heads_before = [b.num_heads for b in attention]
    report = prune_heads_(model, HeadPruneConfig(ffn=0.5, importance="magnitude", scope="global"))
    attention, ffn = find_blocks(model.module)
    assert [b.num_heads for b in attention] == heads_before and sum(b.width for b in ffn) == 96
    assert all("heads" not in layer for layer in report["layers"])


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_global_scope_prunes_layers_unequally_and_reloads_from_the_saved_dir(family, tmp_path):
    from compress.load.hf_pruned import save_hf_dir

    model = _tiny(family, tmp_path)
    batches = _batches(model)
    with torch.no_grad():  # make layer 0's FFN matter much more than layer 1's
        _, ffn = find_blocks(model.module)
        output_rows(ffn[1].down).mul_(1e-3)
    report = prune_heads_(model, HeadPruneConfig(heads=0.5, ffn=0.5, importance="taylor", scope="global"), _loop(batches))
    attention, ffn = find_blocks(model.module)
    assert report["scope"] == "global"
    assert sum(b.num_heads for b in attention) == 4 and sum(b.width for b in ffn) == (192 if family == "gpt2" else 96)
    assert ffn[0].width > ffn[1].width  # the layer that matters kept more
    config = model.hf_model.config
    assert config.compress_ffn_widths == [b.width for b in ffn]
    save_hf_dir(model, tmp_path / "saved")
    again = load_model(tmp_path / "saved", model.inputs)
    assert [b.width for b in find_blocks(again.module)[1]] == [b.width for b in ffn]
    np.testing.assert_allclose(again.forward_numpy(batches[0])[0], model.forward_numpy(batches[0])[0], atol=1e-6)
