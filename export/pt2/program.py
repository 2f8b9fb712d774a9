"""PyTorch module → ``torch.export`` program (.pt2), verified by loading it back.

The INT8 model that ``compress MODEL --int8 --backend torch`` ships: a .pt2 holds the graph and
the weights, loads without pickle, and keeps calls to ``torch.ops.compress`` as ops (loading it
needs ``import compress.ops``, which ``compress``'s loader does on its own).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch

from compress.core.atomic import atomic_path
from compress.core.errors import ExportError
from compress.core.model import Model


class _NamedInputs(torch.nn.Module):
    """Calls ``inner`` positionally; its forward's signature carries the spec's input names, so the
    program's inputs are named input_ids, attention_mask, ... rather than tensors_0, tensors_1."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        return self.inner(*args)


def export_program(model: Model, module: torch.nn.Module, examples: list[dict[str, np.ndarray]], out_path: Path,
                   dynamic: bool = True, atol: float = 1e-4) -> dict:
    """Export ``module`` (taking ``model``'s inputs) to ``out_path``; check the loaded program
    against ``module`` on every example (several shapes exercise the dynamic axes)."""
    program = trace_program(model, module, examples[0], dynamic)
    with atomic_path(out_path) as partial:
        with partial.open("wb") as fh:  # a file object: the archive's root folder is not named after the temporary file
            torch.export.save(program, fh)
        worst = _check_loaded(model, module, partial, examples, atol)
    return {"file": out_path.name, "max_abs_error": worst, "shapes_checked": len(examples)}


def trace_program(model: Model, module: torch.nn.Module, example: dict[str, np.ndarray], dynamic: bool = True,
                  device: str = "cpu") -> torch.export.ExportedProgram:
    """``module`` traced on ``device`` with ``model``'s input names and dynamic axes (kept in memory:
    the CUDA AOTInductor package is compiled from a program traced on the GPU, never saved)."""
    wrapper = _named_wrapper(module, model.input_names)
    dynamic_shapes = {s.name: {axis: torch.export.Dim.DYNAMIC for axis in s.dynamic_axes} or None for s in model.inputs}
    args = tuple(a.to(device) for a in model.torch_args(example))
    try:
        return torch.export.export(wrapper, args, dynamic_shapes=dynamic_shapes if dynamic else None)
    except Exception as exc:  # torch.export raises many types
        raise ExportError(f"torch.export could not trace the model: {str(exc).splitlines()[0]}") from exc


def _named_wrapper(module: torch.nn.Module, names: list[str]) -> torch.nn.Module:
    wrapper = _NamedInputs(module)
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]

    def forward(*args):
        return module(*args)

    forward.__signature__ = inspect.Signature(params)
    wrapper.forward = forward  # an instance attribute: inspect.signature(wrapper.forward) sees the names
    return wrapper


def _check_loaded(model: Model, module: torch.nn.Module, path: Path, examples, atol: float) -> float:
    loaded = torch.export.load(str(path)).module()
    worst = 0.0
    for arrays in examples:
        expected, got = model.forward_numpy(arrays, module), model.forward_numpy(arrays, loaded)
        for e, g in zip(expected, got):
            if e.shape != g.shape:
                raise ExportError(f"the exported program returns shape {g.shape}, the module {e.shape}")
            worst = max(worst, float(np.max(np.abs(e - g))) if e.size else 0.0)
    if worst > atol:
        raise ExportError(f"the exported program differs from the module by {worst:.2e} (> {atol}); this is a bug, please report it")
    return worst
