"""Hugging Face model directories, sentence-transformers directories included.

The loaded module is wrapped so it takes the tokenizer's tensors positionally and returns
the one tensor that answers the task: pooled (and, when the directory says so, normalized)
sentence embeddings, classification logits, or the last hidden state.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from compress.core.errors import InputError, UnsafeLoadError, first_line
from compress.core.model import Model
from compress.core.spec import TensorSpec
from compress.load.hf_pruned import has_pruned_heads, load_pruned

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class SentenceEmbedder(torch.nn.Module):
    """Transformer + pooling (+ L2 normalization), as sentence-transformers computes it."""

    def __init__(self, encoder: torch.nn.Module, input_names: list[str], pooling: str, normalize: bool):
        super().__init__()
        self.encoder, self.input_names, self.pooling, self.normalize = encoder, input_names, pooling, normalize

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(self.input_names, tensors))
        hidden = self.encoder(**kwargs).last_hidden_state
        mask = kwargs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # max: padded positions must never win
            pooled = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(1)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1) if self.normalize else pooled


class TaskHead(torch.nn.Module):
    """Takes positional tensors and returns one named field of a transformers output."""

    def __init__(self, model: torch.nn.Module, input_names: list[str], field: str):
        super().__init__()
        self.model, self.input_names, self.field = model, input_names, field

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(**dict(zip(self.input_names, tensors))), self.field)


def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _sentence_transformers_pooling(path: Path) -> tuple[str, bool] | None:
    """(pooling mode, normalize) from a sentence-transformers directory, or None for a plain HF one."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text())
    pooling_entry = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    if pooling_entry is None:
        return None
    cfg = json.loads((path / pooling_entry["path"] / "config.json").read_text())
    modes = [m for m in ("mean_tokens", "cls_token", "max_tokens") if cfg.get(f"pooling_mode_{m}")]
    others = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v and k[len("pooling_mode_"):] not in modes]
    if len(modes) != 1 or others:
        raise InputError(f"{path}: sentence-transformers pooling {cfg} is not supported; supported: exactly one of mean, cls, max")
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    return {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}[modes[0]], normalize


def load_hf_dir(path: Path, task: str | None, input_specs: tuple[TensorSpec, ...] | None) -> Model:
    import transformers

    transformers.utils.logging.disable_progress_bar()  # our progress lines already say what is loading
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise InputError(f"{path} has config.json but no weights (looked for {', '.join(_WEIGHT_FILES)}); copy the weight files into it")
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    except (ValueError, KeyError, OSError) as exc:
        raise InputError(f"{path}/config.json cannot be read by transformers: {str(exc).splitlines()[0]}") from exc
    tokenizer = None
    if any((path / f).is_file() for f in _TOKENIZER_FILES):
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)

    pooling = _sentence_transformers_pooling(path)
    architectures = getattr(config, "architectures", None) or []
    wants_classifier = task == "classification" or (task is None and pooling is None and any(a.endswith("ForSequenceClassification") for a in architectures))
    auto = transformers.AutoModelForSequenceClassification if wants_classifier else transformers.AutoModel
    try:
        if has_pruned_heads(config):
            hf_model = load_pruned(auto, path, config)
        else:
            hf_model = auto.from_pretrained(path, local_files_only=True).eval()
    except pickle.UnpicklingError as exc:  # transformers reads .bin weights tensors-only: a pickle that names code is refused
        raise UnsafeLoadError(f"{path}: a .bin weights file holds a pickle that would run code when loaded (not plain tensors); "
                              "none of it was run; convert the weights to safetensors where you trust the file") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: transformers could not load the weights: {first_line(exc)}") from exc

    if input_specs:
        specs = input_specs
    elif tokenizer is not None:
        accepted = set(_forward_parameters(hf_model))
        names = [n for n in tokenizer.model_input_names if n in accepted]
        specs = tuple(TensorSpec(n, ("batch", "sequence"), "int64") for n in names)
    else:
        raise InputError(f"{path} has no tokenizer, so its inputs are unknown; pass --input NAME:SHAPE:DTYPE for each, e.g. --input input_ids:1x128:int64")
    names = [s.name for s in specs]

    if wants_classifier:
        module, task, outputs = TaskHead(hf_model, names, "logits"), "classification", ("logits",)
    elif pooling is not None and "attention_mask" in names:
        module, outputs = SentenceEmbedder(hf_model, names, *pooling), ("sentence_embedding",)
        task = task or "embedding"
    else:
        module, outputs = TaskHead(hf_model, names, "last_hidden_state"), ("last_hidden_state",)
        task = task or "generic"
    return Model(module.eval(), specs, task, path, "hf", outputs, tokenizer=tokenizer, hf_model=hf_model)


def _forward_parameters(model: torch.nn.Module) -> list[str]:
    import inspect

    return list(inspect.signature(model.forward).parameters)
