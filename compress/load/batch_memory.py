"""Refuse a batch size that cannot fit in memory, with the figure, before any batch is built.

The estimate is a lower bound, so it never refuses a run that could have fitted: the latency
inputs (four batches are held at once) plus, for a PyTorch model, the largest tensor any
submodule returns at batch 1, scaled to the batch, twice (the input and output of that op are
alive together). Without it, ``--batch 100000000`` tokenizes for minutes and then dies in a
``MemoryError`` or the kernel's OOM killer.
"""

from __future__ import annotations

import math

import numpy as np
import psutil
import torch

from compress.core.errors import InputError
from compress.core.model import Model
from compress.core.spec import DTYPES, random_inputs

LATENCY_BATCHES_HELD = 4


def check_sequence_length(model: Model, seq_len: int) -> None:
    """A transformer cannot take more tokens than it has positions; say so instead of a shape error."""
    limit = getattr(getattr(model.hf_model, "config", None), "max_position_embeddings", None)
    if model.tokenizer is not None and isinstance(limit, int) and seq_len > limit:
        raise InputError(f"--seq-len {seq_len} is longer than the {limit} positions the model has (max_position_embeddings); "
                         f"give --seq-len {limit} or less")


def check_batches_fit(model: Model, batch_sizes, seq_len: int) -> None:
    largest = max(batch_sizes)
    sizes = {"batch": 1, "sequence": seq_len}
    inputs = sum(math.prod(s.concrete_shape(sizes)) * DTYPES[s.dtype].itemsize for s in model.inputs)
    need_inputs = largest * inputs * LATENCY_BATCHES_HELD
    have = psutil.virtual_memory().available
    if need_inputs > have:  # checked first: measuring activations costs a forward pass
        _refuse(largest, seq_len, need_inputs, have, "its inputs alone")
    need = need_inputs + largest * 2 * largest_activation_bytes(model, seq_len)
    if need > have:
        _refuse(largest, seq_len, need, have, "its inputs and the largest activation, measured at batch 1")


def largest_activation_bytes(model: Model, seq_len: int) -> int:
    """Bytes of the largest tensor any submodule returns for one sample (0 for an ONNX file)."""
    if model.module is None or not isinstance(model.module, torch.nn.Module):
        return 0
    largest = 0

    def record(_module, _args, output):
        nonlocal largest
        largest = max([largest, *(t.numel() * t.element_size() for t in _tensors(output))])

    sample = random_inputs(model.inputs, {"batch": 1, "sequence": seq_len}, seed=0)
    if model.tokenizer is not None:  # ids within the vocabulary, a full attention mask
        sample = {k: np.ones_like(v) for k, v in sample.items()}
    # TorchScript takes no hooks: there only the model's outputs count
    scripted = isinstance(model.module, torch.jit.ScriptModule)
    handles = [] if scripted else [m.register_forward_hook(record) for m in model.module.modules()]
    try:
        outputs = model.forward_numpy(sample)
    except Exception:  # noqa: BLE001 - a model that fails here fails later with its own error; the estimate is then inputs only
        return 0
    finally:
        for handle in handles:
            handle.remove()
    return max([largest, *(o.nbytes for o in outputs)])


def _tensors(output) -> list[torch.Tensor]:
    """Every tensor in a submodule's output, which may nest tuples, dicts and ``None``."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _refuse(batch: int, seq_len: int, need: int, have: int, what: str) -> None:
    raise InputError(f"--batch {batch} (sequence {seq_len}) needs at least {need / 2**30:.1f} GiB for {what}, "
                     f"more than the {have / 2**30:.1f} GiB free here; give a smaller --batch")
