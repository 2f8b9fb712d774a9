"""Structured pruning of transformers: whole attention heads and FFN intermediate neurons.

The Linear layers really shrink: the exported graph does fewer FLOPs, which is where the speed
comes from (zeros in a dense matrix buy none). Two scopes:
- ``layer`` (default): the same number cut from every layer, ranked within the layer, so the
  result is still described by one head count and one FFN width.
- ``global``: the same total cut, ranked across all layers, so a layer whose heads matter keeps
  more of them and one that barely matters gives more. Taylor scores are compared as they are:
  each estimates how much the same output moves. Weight magnitudes are not comparable across
  layers, so each layer's are divided by their L2 norm first (as Michel et al. do for heads).
  Every layer keeps at least one head and one neuron. Per-layer FFN widths go into the config
  as ``compress_ffn_widths`` (read back by ``compress.load.hf_pruned``); per-layer heads into
  ``pruned_heads``.

Importance, by config:
- ``taylor``: first-order Taylor estimate of how much the model's output moves when a head
  (or neuron) is removed, E ||df/dm||^2 over the calibration samples, where m gates the unit.
  It needs no labels: the gradient of <r, f(x)> for a random Gaussian r has, in expectation,
  the squared norm of that Jacobian, and one backward pass gives it for every unit at once.
- ``magnitude``: the L2 norm of the unit's weights in and out; needs no data.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from compress.core.errors import ConfigError
from compress.core.forward_loop import ForwardLoop
from compress.core.model import Model, flatten_outputs
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.load.transformer_blocks import (
    AttentionBlock,
    FfnBlock,
    find_blocks,
    output_rows,
)

IMPORTANCE = ("taylor", "magnitude")
SCOPES = ("layer", "global")


@register_config
class HeadPruneConfig(StepConfig):
    """Remove a fraction of the attention heads and of the FFN neurons of every transformer layer."""

    kind: ClassVar[StepKind] = MODEL_PASS

    heads: float = 0.0  # fraction of each layer's heads removed, e.g. 0.33
    ffn: float = 0.0  # fraction of each layer's FFN intermediate neurons removed, e.g. 0.5
    importance: str = "taylor"
    scope: str = "layer"  # "global": per-layer counts from one ranking across layers

    def uses_calibration(self) -> bool:
        return self.importance == "taylor"

    def __post_init__(self):
        for name in ("heads", "ffn"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"--prune {name}={value} is outside [0, 1): give the fraction to remove, e.g. {name}=0.5")
        if self.scope not in SCOPES:
            raise ConfigError(f"--prune scope={self.scope!r} is not one of {', '.join(SCOPES)}")
        if self.importance not in IMPORTANCE:
            raise ConfigError(f"importance {self.importance!r} is not one of {', '.join(IMPORTANCE)}")
        if self.heads == 0.0 and self.ffn == 0.0:
            raise ConfigError("head pruning with heads=0 and ffn=0 removes nothing; give e.g. --prune heads=0.33,ffn=0.5")


def kept_count(total: int, ratio: float, what: str) -> int:
    keep = total - int(round(total * ratio))
    if keep < 1:
        raise ConfigError(f"removing {ratio:.0%} of the {total} {what} would leave none; use a smaller ratio (at most {(total - 1) / total:.2f})")
    return keep


def prune_heads_(model: Model, config: HeadPruneConfig, forward_loop: ForwardLoop | None = None) -> dict:
    """Prune ``model`` in place; returns what was kept per layer and the parameter counts."""
    attention, ffn = find_blocks(model.module)
    before = sum(p.numel() for p in model.module.parameters())
    heads_to_score = attention if config.heads > 0 else []
    ffn_to_score = ffn if config.ffn > 0 else []
    # Check every layer before touching any, so a bad ratio leaves the model as it was.
    head_keep = [kept_count(b.num_heads, config.heads, f"heads of {b.name}") for b in heads_to_score]
    ffn_keep = [kept_count(b.width, config.ffn, f"FFN neurons of {b.name}") for b in ffn_to_score]
    if config.importance == "taylor":
        if forward_loop is None:
            raise ConfigError("Taylor importance needs calibration data; give --calib FILE or use importance=magnitude")
        head_scores, ffn_scores = taylor_scores(model, heads_to_score, ffn_to_score, forward_loop)
    else:
        head_scores = [magnitude_head_scores(b) for b in heads_to_score]
        ffn_scores = [magnitude_ffn_scores(b) for b in ffn_to_score]
    if config.scope == "global":
        normalise = config.importance == "magnitude"
        head_keep, ffn_keep = global_counts(head_scores, sum(head_keep), normalise), global_counts(ffn_scores, sum(ffn_keep), normalise)
    layers: list[dict] = [{} for _ in range(max(len(heads_to_score), len(ffn_to_score)))]  # one per transformer layer
    kept_heads = []
    for layer, block, keep, scores in zip(layers, heads_to_score, head_keep, head_scores):
        kept = scores.argsort(descending=True)[:keep].sort().values
        layer["heads"] = {"module": block.name, "before": block.num_heads, "kept": kept.tolist()}
        block.keep_heads(kept)
        kept_heads.append(kept)
    for layer, block, keep, scores in zip(layers, ffn_to_score, ffn_keep, ffn_scores):
        layer["ffn"] = {"module": block.name, "before": block.width, "after": keep}
        block.keep_neurons(scores.argsort(descending=True)[:keep])
    _update_config(model, heads_to_score, ffn_to_score, kept_heads)
    after = sum(p.numel() for p in model.module.parameters())
    return {"importance": config.importance, "scope": config.scope, "layers": layers, "parameters_before": before, "parameters_after": after}


def global_counts(scores: list[torch.Tensor], total_kept: int, normalise: bool = False) -> list[int]:
    """How many units each layer keeps when ``total_kept`` are kept across all layers by one
    ranking of their scores (each layer's divided by its L2 norm first where ``normalise``); at
    least one per layer."""
    if not scores:  # nothing of this kind is pruned (e.g. ffn=0.5 alone)
        return []
    normalised = [s.double() / (max(float(s.double().norm()), 1e-30) if normalise else 1.0) for s in scores]
    counts = [1] * len(scores)
    rest = torch.cat([n.sort(descending=True).values[1:] for n in normalised])  # each layer's best is kept already
    owner = torch.cat([torch.full((len(n) - 1,), i) for i, n in enumerate(normalised)])
    for layer in owner[rest.argsort(descending=True)[: max(0, total_kept - len(scores))]].tolist():
        counts[layer] += 1
    return counts


def magnitude_head_scores(block: AttentionBlock) -> torch.Tensor:
    with torch.no_grad():
        rows = [output_rows(layer) for layer in block.qkv]
        if len(rows) == 1:
            rows = list(rows[0].chunk(3, dim=0))
        per_head = [r.reshape(block.num_heads, -1).pow(2).sum(1) for r in rows]
        out_cols = output_rows(block.out).t().reshape(block.num_heads, -1).pow(2).sum(1)
        return (sum(per_head) + out_cols).sqrt()


def magnitude_ffn_scores(block: FfnBlock) -> torch.Tensor:
    with torch.no_grad():
        return output_rows(block.up).norm(dim=1) * output_rows(block.down).norm(dim=0)


def taylor_scores(model: Model, attention: list[AttentionBlock], ffn: list[FfnBlock],
                  forward_loop: ForwardLoop) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per unit: sum over samples of (d<r, f>/dm)^2, read off the inputs of the output projections."""
    units = [(b.out, b.num_heads) for b in attention] + [(b.down, b.width) for b in ffn]
    scores = [torch.zeros(count, dtype=torch.float64) for _, count in units]
    captured: list[torch.Tensor | None] = [None] * len(units)

    def capture(i):
        def hook(_module, args):
            args[0].retain_grad()
            captured[i] = args[0]
        return hook

    handles = [layer.register_forward_pre_hook(capture(i)) for i, (layer, _) in enumerate(units)]
    generator = torch.Generator().manual_seed(0)
    module = model.module
    was_training = module.training
    module.eval()

    def step(batch: dict[str, np.ndarray]) -> None:
        with torch.enable_grad():
            output = flatten_outputs(module(*model.torch_args(batch)))[0].float()
            probe = torch.randn(output.shape, generator=generator)
            (output * probe).sum().backward()
        for i, (_, count) in enumerate(units):
            x = captured[i]
            # gate gradient per sample and unit: sum over tokens and the unit's features of x * dL/dx
            per_feature = (x * x.grad).detach().reshape(x.shape[0], -1, x.shape[-1]).sum(1)
            scores[i] += per_feature.reshape(x.shape[0], count, -1).sum(-1).double().pow(2).sum(0)
            captured[i] = None
        module.zero_grad(set_to_none=True)

    try:
        forward_loop(step)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return scores[:len(attention)], scores[len(attention):]


_FFN_WIDTH_KEYS = {"gpt2": "n_inner", "distilbert": "hidden_dim"}  # every other family: intermediate_size


def _update_config(model: Model, attention: list[AttentionBlock], ffn: list[FfnBlock], kept: list[torch.Tensor]) -> None:
    """Keep the transformers config true to the new shapes. The head count stays the original
    one (transformers derives the head size from it); ``pruned_heads`` lists the removed heads in
    the original numbering, the convention transformers' own head pruning used."""
    config = getattr(model.hf_model, "config", None)
    if config is None:
        return
    if ffn:
        widths = [b.width for b in ffn]
        setattr(config, _FFN_WIDTH_KEYS.get(config.model_type, "intermediate_size"), max(widths))
        if len(set(widths)) > 1:
            config.compress_ffn_widths = widths
        elif hasattr(config, "compress_ffn_widths"):
            del config.compress_ffn_widths
    if attention:
        pruned = {int(k): set(v) for k, v in (getattr(config, "pruned_heads", None) or {}).items()}
        original = _original_head_count(config)
        for layer, heads in enumerate(kept):
            remaining = [h for h in range(original) if h not in pruned.get(layer, set())]
            pruned[layer] = set(range(original)) - {remaining[h] for h in heads.tolist()}
        config.pruned_heads = {str(k): sorted(v) for k, v in sorted(pruned.items()) if v}


def _original_head_count(config) -> int:
    for key in ("num_attention_heads", "n_heads", "n_head"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise ConfigError(f"the {config.model_type} config names no head count")
