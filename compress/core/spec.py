"""Input and output specs: names, shapes with named dynamic axes, dtypes.

A dimension is an ``int`` (fixed) or a ``str`` (dynamic, the string names the axis,
e.g. ``"batch"``). Specs come from the model file where it carries them (.pt2, ONNX,
a tokenizer) and from ``--input NAME:SHAPE:DTYPE`` otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import psutil
import torch

from compress.core.errors import InputError

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}
_ALIASES = {"float": "float32", "fp32": "float32", "fp16": "float16", "half": "float16",
            "bf16": "bfloat16", "double": "float64", "long": "int64", "int": "int32"}

Dim = int | str


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"
    dtype_assumed: bool = field(default=False, compare=False)  # --input gave none: float32 by default, and said so

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise InputError(f"input {self.name!r}: unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def concrete_shape(self, sizes: dict[str, int] | None = None) -> tuple[int, ...]:
        """Shape with each dynamic axis replaced by ``sizes[name]`` (default: 2 for batch, else 8)."""
        sizes = sizes or {}
        return tuple(d if isinstance(d, int) else sizes.get(d, 2 if d == "batch" else 8) for d in self.shape)

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: dict) -> "TensorSpec":
        return cls(data["name"], tuple(data["shape"]), data["dtype"])

    def __str__(self) -> str:
        return f"{self.name}:{'x'.join(str(d) for d in self.shape)}:{self.dtype}"


def parse_input_spec(text: str, dynamic_batch: bool = True) -> TensorSpec:
    """Parse ``NAME:SHAPE:DTYPE`` such as ``x:1x3x224x224:float32``; the first axis is dynamic unless told."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not re.fullmatch(r"[A-Za-z_][\w.]*", parts[0]):
        raise InputError(f"--input {text!r} is not NAME:SHAPE:DTYPE; write it like x:1x3x224x224:float32")
    name, shape_text = parts[0], parts[1]
    dtype = _ALIASES.get(parts[2], parts[2]) if len(parts) == 3 else "float32"
    assumed = len(parts) == 2
    dims: list[Dim] = []
    for token in shape_text.lower().split("x"):
        if re.fullmatch(r"[0-9]+", token) and int(token) > 0:
            dims.append(int(token))
        elif re.fullmatch(r"[a-z_]\w*", token):
            dims.append(token)
        else:
            raise InputError(f"--input {text!r}: shape {shape_text!r} must be positive sizes or axis names joined by 'x', like 1x3x224x224")
    if dynamic_batch and dims and isinstance(dims[0], int):
        dims[0] = "batch"
    return TensorSpec(name, tuple(dims), dtype, dtype_assumed=assumed)


def check_against_file(given: tuple[TensorSpec, ...], recorded: tuple[TensorSpec, ...], path) -> None:
    """``--input`` for a file that records its own inputs: each must name one of them and agree with
    its dtype and fixed sizes, instead of being ignored while the file's spec is used."""
    by_name = {s.name: s for s in recorded}
    unknown = [s.name for s in given if s.name not in by_name]
    if unknown:
        raise InputError(f"--input names {unknown} are not inputs of {path}; its inputs are {[str(s) for s in recorded]}; drop --input")
    for spec in given:
        want = by_name[spec.name]
        fixed_differ = len(spec.shape) != len(want.shape) or any(
            isinstance(w, int) and isinstance(g, int) and w != g for w, g in zip(want.shape, spec.shape))
        if fixed_differ or (spec.dtype != want.dtype and not spec.dtype_assumed):
            raise InputError(f"--input {spec} disagrees with {path}, which records {want}; drop --input (the file's spec is used)")


def make_static(spec: TensorSpec, sizes: dict[str, int]) -> TensorSpec:
    return TensorSpec(spec.name, spec.concrete_shape(sizes), spec.dtype)


def random_inputs(specs: tuple[TensorSpec, ...], sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Synthetic inputs that follow the spec, for models that come with no data of their own."""
    check_fits_in_memory(specs, sizes)
    rng = np.random.default_rng(seed)
    out = {}
    for s in specs:
        shape = s.concrete_shape(sizes)
        if s.dtype.startswith(("float", "bfloat")):
            out[s.name] = rng.standard_normal(shape).astype(np.float32)
        elif s.dtype == "bool":
            out[s.name] = np.ones(shape, dtype=bool)
        else:
            out[s.name] = rng.integers(0, 2, size=shape).astype(np.int64 if s.dtype == "int64" else np.int32)
    return out


def check_fits_in_memory(specs: tuple[TensorSpec, ...], sizes: dict[str, int]) -> None:
    """Refuse, with the figure, inputs that could not be held in memory (float64 while generated:
    numpy draws normals in double precision), instead of a MemoryError after asking for them."""
    need = sum(math.prod(s.concrete_shape(sizes)) * 8 for s in specs)
    have = psutil.virtual_memory().available
    if need > have // 2:
        shapes = ", ".join(f"{s.name}:{'x'.join(map(str, s.concrete_shape(sizes)))}" for s in specs)
        raise InputError(f"inputs of {shapes} need {need / 2**30:.1f} GiB, more than half of the {have / 2**30:.1f} GiB "
                         "free here; give smaller --input sizes or a smaller --batch")


def to_torch(arrays: dict[str, np.ndarray], specs: tuple[TensorSpec, ...]) -> dict[str, torch.Tensor]:
    return {s.name: torch.from_numpy(np.asarray(arrays[s.name])).to(DTYPES[s.dtype]) for s in specs}
