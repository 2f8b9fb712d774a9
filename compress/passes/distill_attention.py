"""The attention-distribution loss of distillation (MiniLM, TinyBERT): each paired student layer's
self-attention probabilities are pulled towards the teacher layer's, by KL(teacher || student)
per query position, averaged over heads and unpadded queries.

Where a student layer comes from a teacher layer (``--prune layers=N`` keeps teacher layers), its
heads see the same tokens, so the teacher's attention says how to route information as well as
what comes out: the relation TinyBERT found most worth copying when whole layers are dropped.
A pair is compared only where both layers have as many heads (head pruning leaves fewer).

The probabilities come from the attention module's second output, which transformers returns
only with its eager attention; the models run it while the loss is on (``eager_attention``),
and the student's attention dropout is off meanwhile, so the distribution compared is the one
the student computes rather than one with a tenth of its entries zeroed.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from compress.core.errors import InputError
from compress.core.model import Model
from compress.load.transformer_blocks import find_blocks
from compress.passes.distill_losses import HiddenCapture

SUFFIX = "#attention"  # the teacher cache's name for a module's attention probabilities
_EPS = 1e-9


def attention_pairs(teacher: Model, student: Model, layer_pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str | None]:
    """(teacher attention module, student attention module) for each layer pair whose layers have
    as many heads, and a note on what was left out and why."""
    blocks = {}
    for who, model in (("teacher", teacher), ("student", student)):
        try:
            blocks[who] = find_blocks(model.module)[0]
        except InputError:
            return [], f"no attention loss: the {who} has no attention blocks this tool recognises"
    pairs, unequal = [], []
    for t_layer, s_layer in layer_pairs:
        t_block, s_block = _block_in(blocks["teacher"], t_layer), _block_in(blocks["student"], s_layer)
        if t_block is None or s_block is None:
            continue
        if t_block.num_heads != s_block.num_heads:
            unequal.append(s_layer)
            continue
        pairs.append((t_block.name, s_block.name))
    if not pairs:
        return [], "no attention loss: no paired layers with attention blocks of as many heads (head pruning leaves fewer)"
    note = f"attention not compared where the student has fewer heads: {', '.join(unequal)}" if unequal else None
    return pairs, note


def _block_in(blocks, layer: str):
    return next((b for b in blocks if b.name.startswith(layer + ".")), None)


class AttentionCapture(HiddenCapture):
    """Forward hooks keeping the attention probabilities (the second output) of each named module."""

    def _keeper(self, path: str):
        def hook(_module, _args, output):
            if isinstance(output, tuple) and len(output) > 1 and isinstance(output[1], torch.Tensor):
                self.outputs[path] = output[1]
        return hook

    def take(self, path: str) -> torch.Tensor:
        if path not in self.outputs:
            raise InputError(f"attention loss: the {self.owner}'s {path!r} returned no attention probabilities; it needs transformers' "
                             "eager attention, or set attention_weight to 0")
        return self.outputs.pop(path)


def attention_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) over keys, for [batch, heads, queries, keys] probabilities, averaged
    over heads and the queries ``mask`` ([batch, sequence]) marks as real."""
    t = teacher.float()
    per_query = (t * (t.clamp_min(_EPS).log() - student.float().clamp_min(_EPS).log())).sum(-1)  # [batch, heads, queries]
    if mask is None or tuple(mask.shape) != (per_query.shape[0], per_query.shape[2]):
        return per_query.mean()
    weight = mask.to(per_query.dtype)[:, None, :].expand_as(per_query)
    return (per_query * weight).sum() / weight.sum().clamp(min=1.0)


@contextlib.contextmanager
def eager_attention(models: list[Model], student: Model, student_modules: list[str]):
    """Eager attention for ``models`` (so attention modules return their probabilities) and no
    dropout in the student's compared attention modules, restored afterwards."""
    configs = [cfg for m in models if (cfg := getattr(m.hf_model, "config", None)) is not None and hasattr(cfg, "_attn_implementation")]
    before = [cfg._attn_implementation for cfg in configs]
    dropouts = [d for path in student_modules for d in student.module.get_submodule(path).children() if isinstance(d, nn.Dropout)]
    rates = [d.p for d in dropouts]
    try:
        for cfg in configs:
            cfg._attn_implementation = "eager"
        for d in dropouts:
            d.p = 0.0
        yield
    finally:
        for cfg, value in zip(configs, before):
            cfg._attn_implementation = value
        for d, p in zip(dropouts, rates):
            d.p = p
