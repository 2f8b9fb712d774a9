"""Weight sparsity that keeps every shape: unstructured magnitude pruning and n:m (2:4) patterns.

Both zero the smallest-magnitude weights of every Linear and Conv in place and leave plain
tensors behind (no parametrization), so export writes the zeros as ordinary weights. Neither
makes dense kernels faster: unstructured zeros only compress better, and 2:4 pays off only on
GPUs whose sparse tensor cores read that pattern.

n:m groups run along the input dimension, where sparse tensor cores expect them: a Linear's
in_features, and for a Conv the input channels at each kernel position (TensorRT's rule: for
each output channel and kernel position, every 4 input channels hold at least 2 zeros; NVIDIA's
ASP library prunes Conv weights the same way). For a 1x1 Conv this is simply in_channels.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from compress.core.errors import ConfigError
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.core.sparsity import input_rows
from compress.passes.linear_inputs import is_linear_like

UNSTRUCTURED_NOTE = ("dense kernels gain no speed from unstructured sparsity; it only makes the weights "
                     "compress smaller (e.g. in a zipped bundle)")
SEMI_STRUCTURED_NOTE = ("CPUs gain no speed from 2:4 sparsity; TensorRT (sparse weights) and cuSPARSELt on Ampere "
                        "and later GPUs do.")
SCOPES = ("global", "layer")


@register_config
class MagnitudePruneConfig(StepConfig):
    """Zero the smallest-magnitude Linear and Conv weights (not biases, embeddings or norms)."""

    kind: ClassVar[StepKind] = MODEL_PASS

    sparsity: float  # fraction of the weights set to zero
    scope: str = "global"  # "global": one threshold over all layers; "layer": each layer reaches ``sparsity``

    def __post_init__(self):
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError(f"magnitude prune sparsity {self.sparsity} must be in [0, 1): the fraction of weights "
                              "set to zero, e.g. 0.5")
        if self.scope not in SCOPES:
            raise ConfigError(f"magnitude prune scope {self.scope!r} must be one of {', '.join(SCOPES)}, "
                              "e.g. scope='global'")


@register_config
class SemiStructuredConfig(StepConfig):
    """Keep the n largest of every m consecutive weights along the input dimension; 2:4 is what GPUs accelerate."""

    kind: ClassVar[StepKind] = MODEL_PASS

    n: int = 2
    m: int = 4

    def __post_init__(self):
        if not (isinstance(self.n, int) and isinstance(self.m, int)) or not 1 <= self.n < self.m:
            raise ConfigError(f"n:m sparsity {self.n}:{self.m} must keep 1 <= n < m weights of every m; "
                              "use n=2, m=4 (the pattern sparse tensor cores run)")


def prunable_layers(module: nn.Module) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """Linear and Conv layers by path, each weight once, and the layers left out with why.

    A weight tied to an embedding (a language model's output layer) is left out: zeroing it
    would prune the embedding table too.
    """
    embedded = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    layers, skipped, seen = {}, {}, set()
    for path, layer in module.named_modules():
        if not (isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) or is_linear_like(layer)) or id(layer.weight) in seen:
            continue
        seen.add(id(layer.weight))
        if id(layer.weight) in embedded:
            skipped[path] = "weight is tied to an embedding"
        else:
            layers[path] = layer
    return layers, skipped


@torch.no_grad()
def magnitude_prune_(module: nn.Module, config: MagnitudePruneConfig) -> dict:
    """Zero the smallest |w| in place: over all layers at once (global) or within each layer."""
    layers, skipped = prunable_layers(module)
    weights = {path: _out_in(layer) for path, layer in layers.items()}
    if config.scope == "layer":
        for w in weights.values():
            w.mul_(_keep_largest(w.abs().flatten(), config.sparsity).view_as(w))
    elif weights:
        magnitudes = torch.cat([w.abs().flatten().float().cpu() for w in weights.values()])
        keep = _keep_largest(magnitudes, config.sparsity).split([w.numel() for w in weights.values()])
        for w, mask in zip(weights.values(), keep):
            w.mul_(mask.to(w.device).view_as(w))
    return _report(weights, "unstructured", skipped, UNSTRUCTURED_NOTE)


@torch.no_grad()
def semi_structured_(module: nn.Module, config: SemiStructuredConfig) -> dict:
    """Keep the n largest |w| of every m along each layer's input dimension, in place."""
    layers, skipped = prunable_layers(module)
    weights = {}
    for path, layer in layers.items():
        w = _out_in(layer)
        if w.shape[1] % config.m:
            skipped[path] = f"input dimension {w.shape[1]} is not a multiple of {config.m}"
            continue
        rows = input_rows(w.abs())
        groups = rows.reshape(-1, config.m)
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, groups.topk(config.n, dim=1).indices, True)
        w.mul_(_frominput_rows(keep.view_as(rows), w.shape))
        weights[path] = w
    note = SEMI_STRUCTURED_NOTE
    if (config.n, config.m) != (2, 4):
        note = f"{config.n}:{config.m} is not a pattern GPUs accelerate; {note}"
    return _report(weights, f"{config.n}:{config.m}", skipped, note)


def _out_in(layer: nn.Module) -> torch.Tensor:
    """The weight as [out, in, ...], a view sharing storage (transformers' Conv1D stores [in, out])."""
    return layer.weight.data if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) else layer.weight.data.t()


def _frominput_rows(rows: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) == 2:
        return rows
    return rows.reshape(shape[0], *shape[2:], shape[1]).movedim(-1, 1)


def _keep_largest(magnitudes: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A 0/1 mask that zeroes exactly round(sparsity * numel) of the smallest magnitudes."""
    drop = math.floor(sparsity * magnitudes.numel() + 0.5)
    keep = torch.ones_like(magnitudes)
    keep[torch.argsort(magnitudes, stable=True)[:drop]] = 0
    return keep


def _report(weights: dict[str, torch.Tensor], pattern: str, skipped: dict[str, str], note: str) -> dict:
    zeros = {path: int((w == 0).sum()) for path, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    return {"layers": {path: {"pattern": pattern, "sparsity": zeros[path] / w.numel()} for path, w in weights.items()},
            "sparsity": sum(zeros.values()) / total if total else 0.0, "skipped": skipped, "note": note}
