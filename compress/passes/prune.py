"""``prune_(model, config, forward_loop)``: one entry point for every kind of pruning.

The config's type picks the pass: whole layers, heads and FFN neurons of a transformer, channels of a CNN,
unstructured magnitude, or n:m semi-structured sparsity. All work in place on ``model.module``
and return a report that goes into report.json and the manifest.
"""

from __future__ import annotations

from compress.core.errors import InputError
from compress.core.forward_loop import Batch, ForwardLoop
from compress.core.model import Model
from compress.passes.prune_channels import ChannelPruneConfig, prune_channels_
from compress.passes.prune_heads import HeadPruneConfig, prune_heads_
from compress.passes.prune_layers import LayerPruneConfig, prune_layers_
from compress.passes.prune_unstructured import MagnitudePruneConfig, SemiStructuredConfig, magnitude_prune_, semi_structured_

PRUNE_CONFIGS = (LayerPruneConfig, HeadPruneConfig, ChannelPruneConfig, MagnitudePruneConfig, SemiStructuredConfig)


def prune_(model: Model, config, forward_loop: ForwardLoop | None = None) -> dict:
    """Prune ``model`` in place as ``config`` says; ``forward_loop(run)`` calls ``run(batch)`` on
    calibration batches (needed for Taylor importance and to trace CNNs)."""
    if model.module is None:
        raise InputError("pruning changes PyTorch weights; the model is an ONNX file, so give its PyTorch form (HF dir, .pt2, .pt)")
    if isinstance(config, LayerPruneConfig):
        return {"kind": "layers", **prune_layers_(model, config)}
    if isinstance(config, HeadPruneConfig):
        return {"kind": "heads", **prune_heads_(model, config, forward_loop)}
    if isinstance(config, ChannelPruneConfig):
        return {"kind": "channels", **_prune_channels(model, config, forward_loop)}
    if isinstance(config, MagnitudePruneConfig):
        return {"kind": "unstructured", **magnitude_prune_(model.module, config)}
    if isinstance(config, SemiStructuredConfig):
        return {"kind": f"{config.n}:{config.m}", **semi_structured_(model.module, config)}
    raise TypeError(f"{type(config).__name__} is not a pruning config")


def _prune_channels(model: Model, config: ChannelPruneConfig, forward_loop: ForwardLoop | None) -> dict:
    if forward_loop is None:
        raise InputError("channel pruning traces the model on a real batch; give --calib FILE (or a forward_loop)")
    batches: list[Batch] = []
    forward_loop(batches.append)

    def channel_loop(run):
        for batch in batches:
            run(*model.torch_args(batch), target=None)

    return prune_channels_(model.module, config, model.torch_args(batches[0]), channel_loop if config.importance == "taylor" else None)
