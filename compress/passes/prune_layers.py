"""Whole-layer removal from a transformer, as DistilBERT and TinyBERT build their students.

The layers kept are spaced evenly, counted down from the last (whose output the task head
reads), so removing half keeps every other layer; the student starts from those teacher layers'
weights and distillation (``--distill``) then teaches it what the removed layers did. Removing
layers cuts latency in proportion at every batch size, where heads and FFN neurons cut only the
matrix products.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from compress.core.errors import ConfigError, InputError
from compress.core.model import Model
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.load.transformer_blocks import find_blocks

_LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layers", "n_layer")  # BERT-style, DistilBERT, GPT-2


@register_config
class LayerPruneConfig(StepConfig):
    """Remove ``layers`` whole transformer layers."""

    kind: ClassVar[StepKind] = MODEL_PASS

    layers: int = 1

    def uses_calibration(self) -> bool:
        return False

    def __post_init__(self):
        if self.layers < 1:
            raise ConfigError(f"--prune layers={self.layers} removes nothing; give the number of layers to remove, e.g. layers=2")


def kept_layers(total: int, remove: int) -> list[int]:
    """The indices kept of ``total`` layers when ``remove`` go: evenly spaced from the last down."""
    keep = total - remove
    if keep < 1:
        raise ConfigError(f"removing {remove} of the model's {total} layers would leave none; remove at most {total - 1}")
    return sorted({total - 1 - int(i * total / keep) for i in range(keep)})


def transformer_layers(root: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ModuleList holding the transformer layers (BERT's encoder.layer, DistilBERT's transformer.layer, GPT-2's h)."""
    _, ffn = find_blocks(root)
    parents = {block.name.rpartition(".")[0] for block in ffn}
    modules = dict(root.named_modules())
    lists = [name for name in parents if isinstance(modules.get(name), nn.ModuleList) and len(modules[name]) == len(ffn)]
    if len(lists) != 1:
        raise InputError("could not find one list of transformer layers to remove layers from (the FFN blocks do not sit in "
                         "one nn.ModuleList); layer removal supports BERT, DistilBERT and GPT-2 families")
    return lists[0], modules[lists[0]]


def prune_layers_(model: Model, config: LayerPruneConfig) -> dict:
    """Remove ``config.layers`` layers of ``model`` in place; returns which were kept and the parameter counts."""
    name, layers = transformer_layers(model.module)
    kept = kept_layers(len(layers), config.layers)
    before = sum(p.numel() for p in model.module.parameters())
    new = nn.ModuleList([layers[i] for i in kept])
    for index, layer in enumerate(new):
        for module in layer.modules():  # attention caches are indexed by layer
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = index
    parent, _, attr = name.rpartition(".")
    setattr(model.module.get_submodule(parent) if parent else model.module, attr, new)
    _update_config(model, len(layers), kept)
    after = sum(p.numel() for p in model.module.parameters())
    return {"layers_before": len(layers), "kept": kept, "parameters_before": before, "parameters_after": after}


def _update_config(model: Model, total: int, kept: list[int]) -> None:
    """The layer count, and the per-layer records (pruned heads) renumbered to the kept layers."""
    config = getattr(model.hf_model, "config", None)
    if config is None:
        return
    for key in _LAYER_COUNT_KEYS:
        if getattr(config, key, None) == total:
            setattr(config, key, len(kept))
    pruned = getattr(config, "pruned_heads", None) or {}
    if pruned:
        config.pruned_heads = {str(new): heads for new, old in enumerate(kept) if (heads := pruned.get(str(old), pruned.get(old)))}
    widths = getattr(config, "compress_ffn_widths", None)
    if widths:
        config.compress_ffn_widths = [widths[old] for old in kept]
