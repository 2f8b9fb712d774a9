"""The model as every step sees it: a callable module, its input spec, its task, and where it came from."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress.core.spec import TensorSpec, to_torch

TASKS = ("embedding", "classification", "generic")


@dataclass
class Model:
    """A loaded model.

    ``module`` takes the inputs positionally in ``inputs`` order and returns a tensor or a
    tuple of tensors; it is ``None`` for an ONNX file, whose reference is the ONNX itself.
    """

    module: torch.nn.Module | None
    inputs: tuple[TensorSpec, ...]
    task: str
    source: Path
    format: str
    output_names: tuple[str, ...] = ("output",)
    tokenizer: Any = None
    hf_model: Any = None  # the transformers model inside ``module``, when there is one
    notes: list[str] = field(default_factory=list)

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def is_onnx(self) -> bool:
        return self.module is None

    def forward_numpy(self, arrays: dict[str, np.ndarray], module: torch.nn.Module | None = None) -> list[np.ndarray]:
        """Run the PyTorch module (or ``module``, a variant taking the same inputs) on numpy inputs;
        every output comes back as float32 numpy."""
        args = self.torch_args(arrays)
        with torch.inference_mode():
            out = (module or self.module)(*args)
        return [t.detach().float().numpy() for t in flatten_outputs(out)]

    def torch_args(self, arrays: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        """The module's positional arguments for one numpy batch, in the spec's dtypes."""
        tensors = to_torch(arrays, self.inputs)
        return tuple(tensors[n] for n in self.input_names)

    @contextlib.contextmanager
    def export_view(self):
        """The module as it should be traced for export.

        Transformers models trace with eager attention: the exported graph then has the plain
        MatMul/Softmax pattern that ONNX Runtime's fusions recognise, instead of SDPA's masking
        ops. The math is the same; PyTorch timings keep the model's own attention.
        """
        hf = self.hf_model
        before = getattr(getattr(hf, "config", None), "_attn_implementation", None)
        switch = hf is not None and before not in (None, "eager") and hasattr(hf, "set_attn_implementation")
        if switch:
            hf.set_attn_implementation("eager")
        try:
            yield self.module
        finally:
            if switch:
                hf.set_attn_implementation(before)


def flatten_outputs(out) -> list[torch.Tensor]:
    """Tensors of a model's output in a stable order (tensor, tuple/list, dict, or ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    tensors: list[torch.Tensor] = []
    for item in out:
        tensors.extend(flatten_outputs(item))
    return tensors


def module_bytes(module: torch.nn.Module) -> int:
    """In-memory size of a module's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def clone_model(model: Model) -> Model:
    """A deep copy whose ``hf_model`` points into the copied module: passes change the copy, the
    original stays the teacher and the reference."""
    module = copy.deepcopy(model.module)
    hf_model = model.hf_model
    if hf_model is not None:
        path = next((name for name, sub in model.module.named_modules() if sub is hf_model), None)
        hf_model = module.get_submodule(path) if path is not None else None
    return dataclasses.replace(model, module=module, hf_model=hf_model, notes=list(model.notes))
