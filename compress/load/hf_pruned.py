"""Saving a pruned transformers model as a Hugging Face directory, and loading it back.

transformers derives the head size from the head count, so a pruned model keeps the original
count in its config and lists the removed heads in ``pruned_heads`` (the convention of
transformers' own head pruning, which 5.x no longer applies on load). FFN widths that differ by
layer (global pruning) are listed in ``compress_ffn_widths``, the config's own width being their
maximum. Loading builds the model from the config, cuts those heads and neurons again, then
reads the weights, which now fit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from compress.core.atomic import StagedDir
from compress.core.errors import InputError
from compress.core.model import Model
from compress.load.transformer_blocks import find_blocks

_WEIGHTS_AND_CONFIG = {"config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                       "pytorch_model.bin.index.json", "generation_config.json"}


def has_pruned_heads(config) -> bool:
    """Whether the config describes heads or per-layer FFN widths that a model built from it must be cut to."""
    return bool(getattr(config, "pruned_heads", None) or getattr(config, "compress_ffn_widths", None))


def remove_pruned_heads(hf_model: torch.nn.Module) -> None:
    """Cut a freshly built model down to the heads and FFN widths its config says were kept."""
    config = hf_model.config
    attention, ffn = find_blocks(hf_model)
    pruned = {int(k): set(v) for k, v in (getattr(config, "pruned_heads", None) or {}).items()}
    for layer, block in enumerate(attention):
        if pruned.get(layer):
            block.keep_heads(torch.tensor([h for h in range(block.num_heads) if h not in pruned[layer]]))
    widths = getattr(config, "compress_ffn_widths", None) or []
    if widths and len(widths) != len(ffn):
        raise InputError(f"config.json lists {len(widths)} FFN widths for {len(ffn)} layers; the directory was edited after pruning")
    for block, width in zip(ffn, widths):
        if width < block.width:
            block.keep_neurons(torch.arange(width))  # which neurons does not matter: the weights are read next


def load_pruned(auto_class, path: Path, config) -> torch.nn.Module:
    from safetensors.torch import load_file

    weights = path / "model.safetensors"
    if not weights.is_file():
        raise InputError(f"{path} lists pruned heads in config.json but has no model.safetensors; save it with `compress ... --prune` again")
    hf_model = auto_class.from_config(config)
    remove_pruned_heads(hf_model)
    state = load_file(str(weights))
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    tied = set(getattr(hf_model, "_tied_weights_keys", None) or ())  # saved once, restored by tying
    missing = [k for k in missing if k not in tied and "position_ids" not in k]
    if unexpected or missing:
        raise InputError(f"{weights} does not match the pruned config (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                         "the directory was edited after pruning")
    return hf_model.eval()


def save_hf_dir(model: Model, out_dir: Path, *, force: bool = False) -> Path:
    """Write ``model`` (a transformers model, pruned or not) as a directory the loaders open again:
    everything of the source directory (tokenizer, sentence-transformers pooling) plus the new
    config and weights, staged and renamed into place."""
    if model.hf_model is None:
        raise InputError("only transformers models can be saved as a Hugging Face directory; this one came from "
                         f"{model.format}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise InputError(f"{out_dir} exists; choose another path or pass --force to replace it")
    with StagedDir(out_dir) as stage:
        source = Path(model.source)
        if source.is_dir():
            for item in source.iterdir():
                if item.name in _WEIGHTS_AND_CONFIG or item.name.startswith("."):
                    continue
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, stage / item.name)
        model.hf_model.save_pretrained(stage, safe_serialization=True)
        if model.tokenizer is not None and not any(stage.glob("tokenizer*")):
            model.tokenizer.save_pretrained(stage)
    return out_dir
