"""Find out what a model file is and load it, safely by default.

Formats are told apart by content, not by extension: TorchScript, ``torch.export`` and
``torch.save`` files are all zip archives, distinguished by the members they hold.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from compress.core.errors import InputError, UnsafeLoadError, first_line
from compress.core.model import TASKS, Model
from compress.core.spec import DTYPES, TensorSpec, check_against_file, random_inputs
from compress.load.hf_dir import is_hf_dir, load_hf_dir
from compress.load.no_code_unpickling import weights_only_loads

FORMATS = ("hf", "torchscript", "pt2", "pickle", "onnx", "safetensors")


def detect_format(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path")
    if path.is_dir():
        if is_hf_dir(path):
            return "hf"
        raise InputError(f"{path} is a directory without config.json; pass a Hugging Face model directory or a model file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes); the file is truncated or was never written")
    with path.open("rb") as fh:
        head = fh.read(8)
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".safetensors":
        return "safetensors"
    if head.startswith(b"PK"):
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path} is a corrupt or truncated archive ({exc}); re-save or re-copy the model") from exc
        if any("/data/aotinductor/" in n for n in names):
            raise InputError(f"{path} is an AOTInductor package (compiled code for one device and torch version), not a model "
                             "to compress; give the program it was compiled from (model.int8.pt2), or measure the package "
                             "with compress bench run")
        if any(_is_program_member(n) for n in names):
            return "pt2"
        if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("/data.pkl") for n in names):
            return "pickle"
    if head[:1] == b"\x80":  # a legacy (non-zip) torch.save / pickle stream
        return "pickle"
    raise InputError(
        f"{path}: unknown model format; expected a Hugging Face directory, TorchScript (torch.jit.save), "
        "torch.export (.pt2), torch.save of a whole module, or .onnx"
    )


def load_model(
    path: str | Path,
    input_specs: tuple[TensorSpec, ...] | None = None,
    *,
    task: str | None = None,
    trust_pickle: bool = False,
) -> Model:
    """Load any supported model file; ``input_specs`` are required where the file carries none."""
    path = Path(path)
    if task is not None and task not in TASKS:
        raise InputError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    fmt = detect_format(path)
    if fmt == "hf":
        model = load_hf_dir(path, task, input_specs)
    elif fmt == "onnx":
        from compress.load.onnx_file import load_onnx_model

        return load_onnx_model(path, task or "generic", input_specs)
    elif fmt == "safetensors":
        raise _state_dict_error(path)
    elif fmt == "pt2":
        model = _load_exported_program(path, input_specs, task, trust_pickle)
    elif fmt == "torchscript":
        model = Model(_load_torchscript(path), _require_specs(path, input_specs, "TorchScript"), task or "generic", path, fmt)
    else:
        model = Model(_load_pickled_module(path, trust_pickle), _require_specs(path, input_specs, "A pickled module"), task or "generic", path, fmt)
    _probe(model, explicit_task=task is not None)
    return model


def _require_specs(path: Path, specs, what: str) -> tuple[TensorSpec, ...]:
    if not specs:
        raise InputError(f"{what} file does not record its input shapes; pass --input NAME:SHAPE:DTYPE for each input, e.g. --input x:1x3x224x224:float32")
    return specs


def _state_dict_error(path: Path) -> InputError:
    return InputError(
        f"{path} holds weights without an architecture (a state_dict); load it into your model class and save the "
        "whole model with torch.export.save or torch.jit.save, or pass a Hugging Face directory"
    )


def _load_torchscript(path: Path) -> torch.nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as exc:
        raise InputError(f"{path} is a corrupt or tampered TorchScript archive ({first_line(exc)}); nothing in it was run; "
                         "re-save it with torch.jit.save or re-copy it") from exc


def _load_pickled_module(path: Path, trust_pickle: bool) -> torch.nn.Module:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        obj = None  # needs classes that a weights-only load refuses: a pickled module
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path} is corrupt or truncated: {str(exc).splitlines()[0]}") from exc
    if isinstance(obj, Mapping):
        raise _state_dict_error(path)
    if obj is not None and not isinstance(obj, torch.nn.Module):
        raise InputError(f"{path} holds a {type(obj).__name__}, not a model (read without running code); save the model itself")
    if obj is None:
        if not trust_pickle:
            raise UnsafeLoadError(
                f"{path} is a pickled model and loading it runs code from the file; if you trust its source, "
                "pass --trust-pickle, or re-save it with torch.export.save / torch.jit.save"
            )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (AttributeError, ModuleNotFoundError) as exc:
            raise InputError(f"{path} needs model code that is not importable here ({exc}); run from where its module is importable") from exc
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path} is corrupt or truncated: {first_line(exc)}; re-save or re-copy the model") from exc
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise _state_dict_error(path)
        if not isinstance(obj, torch.nn.Module):
            raise UnsafeLoadError(f"{path} was unpickled with --trust-pickle, which ran code from it, and gave an object of type {type(obj).__name__} "
                                  "instead of a model: it is not a saved torch.nn.Module, and may be hostile; check where it came from")
    return obj.eval()


def _load_exported_program(path: Path, input_specs, task: str | None, trust_pickle: bool = False) -> Model:
    if uses_compress_ops(path):
        import compress.ops.kernels  # noqa: F401  (the program calls torch.ops.compress.*; they must exist to load it)
    try:
        with contextlib.nullcontext() if trust_pickle else weights_only_loads():
            program = torch.export.load(str(path))
    except pickle.UnpicklingError as exc:
        if trust_pickle:
            raise InputError(f"{path} is a corrupt torch.export archive: {first_line(exc)}") from exc
        raise UnsafeLoadError(
            f"{path} holds a pickle that would run code when loaded (a member that is not plain tensors); if you trust "
            "its source, pass --trust-pickle, or re-export it with torch.export.save from tensors only") from exc
    except Exception as exc:  # torch raises many types for damaged archives
        raise InputError(f"{path} is a corrupt torch.export archive: {str(exc).splitlines()[0]}") from exc
    specs = _specs_from_program(program)
    if input_specs:
        check_against_file(input_specs, specs, path)
    model = Model(program.module(), specs, task or "generic", path, "pt2")
    model.notes.append("input spec read from the .pt2 file")
    return model


def uses_compress_ops(path: Path) -> bool:
    """Whether a .pt2's graph calls this toolkit's custom ops (an INT8 model from --backend torch)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            graphs = [n for n in archive.namelist() if _is_program_member(n) and n.endswith(".json")]
            return any(b'"torch.ops.compress.' in archive.read(n) for n in graphs)
    except (OSError, zipfile.BadZipFile):
        return False  # torch.export.load reports the damage


def _is_program_member(name: str) -> bool:
    """``ROOT/archive_format`` or ``ROOT/models/*.json``: the members only a ``torch.export`` archive has
    at those depths (a TorchScript archive's code can sit under a folder named models, deeper down)."""
    parts = name.split("/")
    return (len(parts) == 2 and parts[1] == "archive_format") or (len(parts) == 3 and parts[1] == "models")


def _specs_from_program(program) -> tuple[TensorSpec, ...]:
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    dtype_names = {v: k for k, v in DTYPES.items()}
    specs, axis_names = [], {}
    for name in program.graph_signature.user_inputs:
        val = placeholders[name].meta["val"]
        dims = []
        for i, d in enumerate(val.shape):
            if isinstance(d, int):
                dims.append(d)
            else:  # a symbol: name it after its first use, batch for axis 0
                key = str(d)
                axis_names.setdefault(key, "batch" if i == 0 and "batch" not in axis_names.values() else f"dim_{key}")
                dims.append(axis_names[key])
        specs.append(TensorSpec(name, tuple(dims), dtype_names.get(val.dtype, "float32")))
    return tuple(specs)


def _probe(model: Model, explicit_task: bool) -> None:
    """Run the model once on inputs built from its spec: a spec that does not fit fails here, clearly."""
    arrays = random_inputs(model.inputs, {"batch": 2, "sequence": 8}, seed=0)
    if model.tokenizer is not None:
        arrays = {k: (np.ones_like(v) if k == "attention_mask" else v) for k, v in arrays.items()}
    try:
        outputs = model.forward_numpy(arrays)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        given = ", ".join(f"{name} of shape {list(a.shape)} {a.dtype}" for name, a in arrays.items())
        spec = " ".join(f"--input {s}" for s in model.inputs)
        raise InputError(f"the model rejected {given} (built from {spec}): {_model_error(exc)}; "
                         "fix --input to the shapes and dtypes the model takes") from exc
    model.output_names = tuple(model.output_names if len(model.output_names) == len(outputs) else
                               ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    first = outputs[0]
    if not explicit_task and model.task == "generic" and model.format != "hf" and first.ndim == 2 and first.shape[1] > 1:
        model.task = "classification"


def _model_error(exc: BaseException) -> str:
    """What went wrong inside the model. TorchScript wraps it in its interpreter's traceback, whose
    last line (``RuntimeError: expected input[2, 3, 8, 8] to have 1 channels...``) is the cause."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if lines and lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        cause = next((ln for ln in reversed(lines) if re.match(r"^\w+(Error|Exception): ", ln)), None)
        if cause:
            return cause.split(": ", 1)[1]
    return first_line(exc)
