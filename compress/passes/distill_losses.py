"""Distillation losses, and the hidden states they compare.

``output_loss`` scores the model's answer: for classification, KL(teacher || student) between
the temperature-softened distributions, times T^2 (Hinton et al., 2015: the gradients then keep
their size whatever T is); for embeddings, 1 - cosine similarity; for anything else, mean squared
error. ``hidden_loss`` scores one pair of hidden states, by MSE or by 1 - cosine per position.

Where the batch has an ``attention_mask`` of shape [batch, sequence] and the tensor is
[batch, sequence, ...], padded positions are left out of the mean: they carry no meaning and a
student should not spend capacity copying them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compress.core.errors import InputError
from compress.core.model import Model, flatten_outputs
from compress.passes.prune_layers import kept_layers

HIDDEN_LOSSES = ("mse", "cosine")
_LAYER_LIST_NAMES = ("layer", "layers", "h", "block", "blocks")


def token_mask(mask: torch.Tensor | None, tensor: torch.Tensor) -> torch.Tensor | None:
    """``mask`` when it marks the [batch, sequence] positions of ``tensor`` (at least 3-D), else None."""
    if mask is None or tensor.dim() < 3 or tuple(tensor.shape[:2]) != tuple(mask.shape):
        return None
    return mask


def _masked_mean(per_position: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return per_position.mean()
    weight = mask.to(per_position.dtype)
    return (per_position * weight).sum() / weight.sum().clamp(min=1.0)


def kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over rows (every axis but the last)."""
    classes = student_logits.shape[-1]
    student_log = F.log_softmax(student_logits.reshape(-1, classes).float() / temperature, dim=-1)
    teacher_log = F.log_softmax(teacher_logits.reshape(-1, classes).float() / temperature, dim=-1)
    return F.kl_div(student_log, teacher_log, reduction="batchmean", log_target=True) * temperature ** 2


def mse_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over every element, or over the unpadded positions when ``mask`` applies."""
    squared = (student.float() - teacher.float()).pow(2)
    mask = token_mask(mask, squared)
    if mask is None:
        return squared.mean()
    return _masked_mean(squared.reshape(*squared.shape[:2], -1).mean(-1), mask)


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of 1 - cosine similarity along the last axis (over unpadded positions when ``mask`` applies)."""
    mask = token_mask(mask, student)
    return _masked_mean(1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=-1), mask)


def output_loss(task: str, student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    same_shape(student, teacher, "the student's output", "the teacher's")
    if task == "classification":
        return kl_loss(student, teacher, temperature)
    if task == "embedding":
        return cosine_loss(student, teacher, mask)
    return mse_loss(student, teacher, mask)


def hidden_loss(kind: str, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return cosine_loss(student, teacher, mask) if kind == "cosine" else mse_loss(student, teacher, mask)


def same_shape(student: torch.Tensor, teacher: torch.Tensor, what: str, other: str) -> None:
    if student.shape != teacher.shape:
        raise InputError(f"{what} has shape {list(student.shape)} and {other} {list(teacher.shape)}; "
                         "distillation compares them element by element, so pair tensors of one shape (or set that loss's weight to 0)")


def layer_list(model: Model) -> tuple[str, int] | None:
    """(path, length) of the outermost list of transformer layers (``encoder.layer``, ``h``, ``layers``, ...)."""
    if model.hf_model is None or model.module is None:
        return None
    for name, sub in model.module.named_modules():
        if isinstance(sub, nn.ModuleList) and len(sub) and name.rpartition(".")[2] in _LAYER_LIST_NAMES:
            return name, len(sub)
    return None


def default_hidden_pairs(teacher: Model, student: Model) -> tuple[list[tuple[str, str]], str | None]:
    """Layer i of the teacher with layer i of the student, when both are transformers with as many
    layers. A student with fewer layers (``--prune layers=N``) has each paired with the teacher layer
    it was initialised from, the uniform mapping TinyBERT uses. Otherwise no pairs and a note saying why."""
    found = {"teacher": layer_list(teacher), "student": layer_list(student)}
    lacking = [who for who, layers in found.items() if layers is None]
    if lacking:
        return [], (f"no hidden-state loss: the {' and the '.join(lacking)} is not a transformers model with a list "
                    "of layers; pass hidden_pairs to compare submodules")
    (t_path, t_count), (s_path, s_count) = found["teacher"], found["student"]
    if t_count < s_count:
        return [], f"no hidden-state loss: the teacher has {t_count} layers and the student {s_count}; pass hidden_pairs to map them"
    teacher_layers = kept_layers(t_count, t_count - s_count) if s_count < t_count else range(t_count)
    return [(f"{t_path}.{t}", f"{s_path}.{i}") for i, t in enumerate(teacher_layers)], None


class HiddenCapture:
    """Forward hooks keeping the first tensor output by each named submodule, for one forward pass."""

    def __init__(self, module: nn.Module, paths: list[str], owner: str):
        self.owner, self.outputs, self.handles = owner, {}, []
        for path in paths:
            try:
                sub = module.get_submodule(path)
            except AttributeError as exc:
                self.remove()
                raise InputError(f"hidden pair: the {owner} has no submodule {path!r}; name submodules as "
                                 f"model.module.named_modules() lists them") from exc
            self.handles.append(sub.register_forward_hook(self._keeper(path)))

    def _keeper(self, path: str):
        def hook(_module, _args, output):
            tensors = flatten_outputs(output)
            if tensors:
                self.outputs[path] = tensors[0]
        return hook

    def take(self, path: str) -> torch.Tensor:
        if path not in self.outputs:
            raise InputError(f"hidden pair: the {self.owner}'s submodule {path!r} output no tensor during the forward pass; pair submodules the model runs")
        return self.outputs.pop(path)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
