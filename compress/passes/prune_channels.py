"""Structured channel pruning for CNNs: remove the least important output filters of each Conv.

Unlike zeroing weights, removing filter c makes the layers genuinely smaller, so dense kernels
on any device get faster: the Conv loses an output channel, and every layer that reads channel
c loses it too (the BatchNorm after it, a depthwise Conv, the next Conv's input channel, or,
after a flatten, the H*W columns of a Linear). Which layers read which channels comes from the
model's torch.fx graph (``channel_deps``); Convs whose outputs meet in a residual add are one
group that keeps the same channel indices, ranked by their summed importance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from compress.core.errors import ConfigError, InputError
from compress.core.model import flatten_outputs
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.passes.channel_deps import ChannelGraph, Flow, channel_graph, eval_mode

IMPORTANCES = ("l1", "taylor")
# run(*inputs, target=None) runs one batch forward and backward and returns its loss
Run = Callable[..., torch.Tensor]
ForwardLoop = Callable[[Run], None]
LossFn = Callable[[Any, Any], torch.Tensor]  # (model output, target) -> scalar loss


@register_config
class ChannelPruneConfig(StepConfig):
    """Remove ``ratio`` of the output channels of every Conv whose channels can be followed."""

    kind: ClassVar[StepKind] = MODEL_PASS

    ratio: float  # fraction of each prunable Conv's output channels removed
    importance: str = "l1"  # "l1": filter weight magnitude; "taylor": sum of |w * dL/dw| over a forward loop

    def uses_calibration(self) -> bool:
        return True

    def __post_init__(self):
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"channel prune ratio {self.ratio} must be in [0, 1): the fraction of each Conv's "
                              "output channels to remove, e.g. 0.3")
        if self.importance not in IMPORTANCES:
            raise ConfigError(f"channel importance {self.importance!r} must be one of {', '.join(IMPORTANCES)}, "
                              "e.g. importance='l1'")


def prune_channels_(module: nn.Module, config: ChannelPruneConfig, example_inputs: tuple[torch.Tensor, ...],
                    forward_loop: ForwardLoop | None = None, loss_fn: LossFn | None = None) -> dict:
    """Remove channels from ``module`` in place and report what changed.

    ``example_inputs`` is one batch, used to trace the graph and find each flatten's H*W.
    Taylor importance needs ``forward_loop(run)``, which calls ``run(*inputs, target=None)`` on
    each batch; the loss is ``loss_fn(output, target)``, or the sum of squares of the outputs.
    Nothing changes when a ConfigError is raised.
    """
    if config.importance == "taylor" and forward_loop is None:
        raise InputError("taylor channel importance needs a forward_loop that runs the model on real batches, "
                         "e.g. forward_loop=lambda run: [run(x) for x in batches]; or use importance='l1'")
    graph = channel_graph(module, example_inputs)
    keep = {i: g.channels - math.floor(config.ratio * g.channels + 0.5)  # channels each prunable group keeps
            for i, g in enumerate(graph.groups) if not g.blocked}
    for i, count in keep.items():
        if count < 1:
            group = graph.groups[i]
            raise ConfigError(f"channel prune ratio {config.ratio} would remove all {group.channels} output channels of "
                              f"{', '.join(group.convs)}; keep at least one: use a ratio below "
                              f"{(group.channels - 0.5) / group.channels:.3g}")
    shrinking = [i for i, count in keep.items() if count < graph.groups[i].channels]
    convs = {path: module.get_submodule(path) for i in shrinking for path in graph.groups[i].convs}
    scores = _l1(convs) if config.importance == "l1" or not convs else _taylor(module, convs, forward_loop, loss_fn)
    kept = {i: torch.arange(count) for i, count in keep.items()}
    for i in shrinking:  # a group ranks channels by the summed importance of its Convs
        score = torch.stack([scores[path] for path in graph.groups[i].convs]).sum(0)
        kept[i] = torch.argsort(score, descending=True, stable=True)[:keep[i]].sort().values
    params_before = _parameter_count(module)
    return _apply(module, graph, kept, config, params_before)


def _l1(convs: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Sum of |w| over each output filter: small filters contribute little to the next layer."""
    return {path: conv.weight.detach().abs().flatten(1).sum(1).float().cpu() for path, conv in convs.items()}


def _taylor(module: nn.Module, convs: dict[str, nn.Module], forward_loop: ForwardLoop,
            loss_fn: LossFn | None) -> dict[str, torch.Tensor]:
    """First-order Taylor estimate of the loss change when a filter is removed: sum of |w * dL/dw|
    over the filter, summed over batches. Eval mode, so BatchNorm statistics stay put."""
    scores = {path: torch.zeros(conv.out_channels) for path, conv in convs.items()}
    weights = [conv.weight for conv in convs.values()]
    flags = [w.requires_grad for w in weights]
    calls = 0

    def run(*inputs: torch.Tensor, target: Any = None) -> torch.Tensor:
        nonlocal calls
        with torch.enable_grad():
            out = module(*inputs)
            loss = loss_fn(out, target) if loss_fn else sum(t.float().pow(2).sum() for t in flatten_outputs(out))
            grads = torch.autograd.grad(loss, weights)  # only these: the caller's .grad fields stay untouched
        for (path, conv), grad in zip(convs.items(), grads):
            scores[path] += (conv.weight.detach() * grad).abs().flatten(1).sum(1).float().cpu()
        calls += 1
        return loss.detach()

    for w in weights:
        w.requires_grad_(True)
    try:
        with eval_mode(module):
            forward_loop(run)
    finally:
        for w, flag in zip(weights, flags):
            w.requires_grad_(flag)
    if calls == 0:
        raise InputError("the forward loop never called run(...); taylor importance needs at least one batch")
    return scores


@torch.no_grad()
def _apply(module: nn.Module, graph: ChannelGraph, kept: dict[int, torch.Tensor], config: ChannelPruneConfig,
           params_before: int) -> dict:
    """Slice every layer that ``kept`` (group index -> surviving channels) touches, and report."""
    layers, skipped = {}, dict(graph.skipped)
    for i, group in enumerate(graph.groups):
        for path in group.convs:
            conv = module.get_submodule(path)
            if i not in kept:
                skipped[path] = "; ".join(group.blocked)
                continue
            layers[path] = {"before": conv.out_channels, "after": len(kept[i]), "kept": kept[i].tolist()}
            if len(kept[i]) < conv.out_channels:
                _slice(conv, ("weight", "bias"), kept[i], 0)
                conv.out_channels = len(kept[i])
    for use in graph.uses:
        layer, index = module.get_submodule(use.path), _kept_features(use.flow, graph, kept)
        if use.kind == "depthwise":
            if index is None:
                spaces = [s for s, _ in use.flow.segments if s is not None]
                reasons = dict.fromkeys(r for s in spaces for r in graph.groups[graph.group_of[s]].blocked)
                skipped[use.path] = f"depthwise convolution whose producer keeps its channels: {'; '.join(reasons)}"
                continue
            layers[use.path] = {"before": layer.out_channels, "after": len(index), "kept": index.tolist()}
        if index is None or len(index) == sum(n for _, n in use.flow.segments) * use.flow.spatial:
            continue
        if use.kind == "batchnorm":
            _slice(layer, ("weight", "bias", "running_mean", "running_var"), index, 0)
            layer.num_features = len(index)
        elif use.kind == "depthwise":
            _slice(layer, ("weight", "bias"), index, 0)
            layer.in_channels = layer.out_channels = layer.groups = len(index)
        elif use.kind == "conv_in":
            _slice(layer, ("weight",), index, 1)
            layer.in_channels = len(index)
        else:
            _slice(layer, ("weight",), index, 1)
            layer.in_features = len(index)
    return {"importance": config.importance, "ratio": config.ratio, "layers": layers,
            "groups": [g.convs for g in graph.groups if len(g.convs) > 1],
            "skipped": skipped, "parameters": {"before": params_before, "after": _parameter_count(module)}}


def _kept_features(flow: Flow, graph: ChannelGraph, kept: dict[int, torch.Tensor]) -> torch.Tensor | None:
    """Indices along dim 1 that survive in a tensor with this flow; None when none of its channels is prunable."""
    parts, offset, prunable = [], 0, False
    for space, count in flow.segments:
        index = None if space is None else kept.get(graph.group_of[space])
        prunable |= index is not None
        parts.append((torch.arange(count) if index is None else index) + offset)
        offset += count
    if not prunable:
        return None
    channels = torch.cat(parts)
    return (channels[:, None] * flow.spatial + torch.arange(flow.spatial)).flatten()


def _slice(layer: nn.Module, names: tuple[str, ...], index: torch.Tensor, dim: int) -> None:
    """Replace each named parameter or buffer by its slice (a new, smaller tensor; None stays None)."""
    for name in names:
        tensor = getattr(layer, name, None)
        if tensor is None:
            continue
        sliced = tensor.detach().index_select(dim, index.to(tensor.device))
        setattr(layer, name, nn.Parameter(sliced, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else sliced)


def _parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
