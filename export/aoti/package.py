"""``torch.export`` program (.pt2) → AOTInductor package: the graph compiled ahead of time to C++
(and CUDA where the program runs on a GPU) by Inductor, with our INT8 ops called through the
dispatcher, loadable from Python (``torch._inductor.aoti_load_package``) or C++
(``torch::inductor::AOTIModelPackageLoader``) without the model's Python code.

A package is bound to what it was compiled for: the device (and on the CPU the kernel path
Inductor's code was generated for, on CUDA the compute capability) and the torch version. It is
named for that (``model.int8.aoti.cpu-avx512_vnni.torch2.13.pt2``) and a sidecar ``.pt2.json``
records it, as the TensorRT engine's does, so the runtime can refuse a package that does not
match and fall back to the portable program.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from compress.core.atomic import atomic_path, write_bytes_atomic
from compress.core.errors import ExportError, InputError
from compress.core.model import Model
from compress.core.spec import TensorSpec

AOTI_SCHEMA = "compress.aoti/1"


def torch_minor(version: str | None = None) -> str:
    """'2.13.0+cpu' -> '2.13': packages are tied to the torch they were compiled with."""
    return ".".join((version or torch.__version__).split("+")[0].split(".")[:2])


def device_tag(device: str) -> str:
    if device == "cpu":
        from compress.ops.cpu_features import cpu_isa

        return f"cpu-{cpu_isa()}"
    major, minor = torch.cuda.get_device_capability()
    return f"sm{major}{minor}"


def aoti_file_name(stem: str, device: str) -> str:
    return f"{stem}.aoti.{device_tag(device)}.torch{torch_minor()}.pt2"


# Inductor's generated float code (layer norms, softmax) differs from eager in the last bits; where
# that lands just before a per-token quantize, an activation moves to the neighbouring INT8 step,
# and every later layer's inputs (and roundings) change with it. On MiniLM the package and the
# eager program then differ by up to 7% of the largest output value, yet each is as close to FP32
# as the other (cosine 0.99763 both on held-out text; 0.9996 to each other): the kernels'
# rounding, not a fault. So the check is the cosine of each output row: a wrong op gives far less.
MIN_COSINE = 0.99


def build_aoti_package(program_path: Path, out_dir: Path, device: str, examples: list[tuple[torch.Tensor, ...]],
                       min_cosine: float = MIN_COSINE, describes: dict | None = None) -> dict:
    """Compile the saved program ``program_path`` for ``device`` into ``out_dir``; see ``compile_aoti_package``."""
    from compress.ops import kernels  # noqa: F401  the program calls torch.ops.compress

    program = torch.export.load(str(program_path))
    stem = Path(program_path).name.removesuffix(".pt2")
    return compile_aoti_package(program, stem, Path(program_path).name, out_dir, device, examples, min_cosine, describes)


def compile_aoti_package(program: torch.export.ExportedProgram, stem: str, source_name: str, out_dir: Path, device: str,
                         examples: list[tuple[torch.Tensor, ...]], min_cosine: float = MIN_COSINE,
                         describes: dict | None = None) -> dict:
    """Compile ``program`` (traced on ``device``) into ``out_dir``; check the loaded package against
    the program on every example (several shapes exercise the dynamic axes); returns the sidecar.
    ``describes`` (input specs, task, output names) goes into the sidecar, so the package can be
    measured and run on its own."""
    from compress.ops import kernels
    from compress.ops.cpu_features import cpu_isa

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("an AOTInductor CUDA package needs a CUDA device to compile on; none is visible to torch")
    target = Path(out_dir) / aoti_file_name(stem, device)
    with atomic_path(target) as partial:
        try:
            with partial.open("wb") as fh:  # a file object: the archive's root folder is not named after the temporary file
                torch._inductor.aoti_compile_and_package(program, package_path=fh)
        except Exception as exc:  # Inductor raises many types; the first line names the op or the compiler error
            raise ExportError(f"AOTInductor could not compile {source_name}: {str(exc).splitlines()[0][:300]}") from exc
        worst, worst_cos = _check_package(program, partial, examples, device, min_cosine)
    status = kernels.status()
    meta = {"schema": AOTI_SCHEMA, "file": target.name, "source_program": source_name, "device": device,
            "device_tag": device_tag(device), "torch_version": torch.__version__, "max_abs_error": worst,
            "min_cosine": worst_cos, "shapes_checked": len(examples),
            # the package calls these through the dispatcher: the runtime needs compress's kernels loaded
            "compress_ops": compress_ops_in(program), "kernels": {"backend": status.backend, "cpu_isa": cpu_isa()},
            **(describes or {})}
    if device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    write_bytes_atomic(sidecar_path(target), (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def describe_inputs(model: Model) -> dict:
    """What a package's sidecar records of the model it runs (input specs, task, output names), the
    inverse of ``load_aoti_model``: a package can then be measured and served on its own."""
    return {"inputs": [s.to_json() for s in model.inputs], "task": model.task, "output_names": list(model.output_names)}


def compress_ops_in(program: torch.export.ExportedProgram) -> dict[str, int]:
    """How many times the program's graph calls each torch.ops.compress overload."""
    calls = Counter(str(node.target) for node in program.graph.nodes
                    if node.op == "call_function" and str(node.target).startswith("compress."))
    return dict(sorted(calls.items()))


def existing_package_refusal(program_path: Path, out_dir: Path, device: str, force: bool) -> str | None:
    """Why the package for ``program_path`` must not be written into ``out_dir`` (it exists and no
    --force; or it exists and is not an AOTInductor package, which --force does not replace), or None."""
    target = Path(out_dir) / aoti_file_name(Path(program_path).name.removesuffix(".pt2"), device)
    if not target.exists():
        return None
    if not force:
        return f"{target} already exists; pass --force to replace it"
    if not target.is_file() or not is_aoti_package(target):
        return f"{target} exists and is not an AOTInductor package, so --force will not replace it; move it or choose another --out"
    return None


def sidecar_path(package: Path) -> Path:
    return Path(package).with_name(Path(package).name + ".json")


def read_aoti_metadata(package: Path) -> dict:
    sidecar = sidecar_path(package)
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise InputError(f"{sidecar} is missing: the package's device and torch version are unknown; rebuild it with "
                         "compress build-engine --aoti") from None
    except ValueError as exc:
        raise InputError(f"{sidecar} is corrupt ({exc}); rebuild it with compress build-engine --aoti") from None
    if meta.get("schema") != AOTI_SCHEMA:
        raise InputError(f"{sidecar} is not a {AOTI_SCHEMA} file")
    return meta


def mismatch(meta: dict) -> str | None:
    """Why this machine cannot run the package the sidecar describes, or None."""
    if torch_minor(meta["torch_version"]) != torch_minor():
        return f"compiled with torch {meta['torch_version']}, this is torch {torch.__version__}"
    if meta["device"] == "cuda" and not torch.cuda.is_available():
        return "compiled for CUDA; no CUDA device here"
    if device_tag(meta["device"]) != meta["device_tag"]:
        return f"compiled for {meta['device_tag']}, this machine is {device_tag(meta['device'])}"
    return None


def is_aoti_package(path: Path) -> bool:
    """Whether ``path`` is an AOTInductor package (a zip holding ``data/aotinductor/``), not a
    ``torch.export`` program; read from the zip's directory, nothing is loaded."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/data/aotinductor/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_aoti_model(package: Path, inputs: tuple[TensorSpec, ...] | None = None, task: str | None = None) -> Model:
    """The package as a ``Model`` (inputs and task from its sidecar unless given), to run and measure
    like any PyTorch model; refused where it does not match this machine."""
    meta = read_aoti_metadata(package)
    specs = inputs or tuple(TensorSpec.from_json(s) for s in meta.get("inputs", ()))
    if not specs:
        raise InputError(f"{sidecar_path(package).name} records no inputs; pass --input NAME:SHAPE:DTYPE for each of them")
    module = AotiModule(load_aoti_package(package))
    return Model(module, tuple(specs), task or meta.get("task") or "generic", Path(package), "aoti",
                 tuple(meta.get("output_names") or ("output",)))


def load_aoti_package(package: Path):
    """The compiled model (callable on the flattened inputs), after checking it matches this machine."""
    from compress.ops import kernels  # noqa: F401  the package calls torch.ops.compress through the dispatcher

    meta = read_aoti_metadata(package)
    problem = mismatch(meta)
    if problem is not None:
        raise InputError(f"{Path(package).name} cannot run here: {problem}; rebuild it on this machine ({rebuild_command(meta)})")
    try:
        return torch._inductor.aoti_load_package(str(package))
    except Exception as exc:  # a truncated zip or a library the loader cannot open: one line, the fix
        raise InputError(f"{Path(package).name} cannot be loaded ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}); "
                         f"rebuild it ({rebuild_command(meta)})") from None


def rebuild_command(meta: dict) -> str:
    """CPU packages are rebuilt from the shipped program; CUDA ones from the model, quantized on the GPU."""
    if meta.get("device") == "cuda":
        return "compress MODEL --int8 --backend torch --target aoti on the GPU machine"
    return f"compress build-engine --aoti {meta.get('source_program', 'model.int8.pt2')}"


def _check_package(program, path: Path, examples, device: str, min_cosine: float) -> tuple[float, float]:
    """(largest absolute difference, lowest cosine of an output row) between package and program."""
    compiled = torch._inductor.aoti_load_package(str(path))
    module = program.module()
    worst, worst_cos = 0.0, 1.0
    with torch.inference_mode():
        for args in examples:
            args = tuple(a.to(device) for a in args)
            expected, got = _flat(module(*args)), _flat(compiled(*args))
            for e, g in zip(expected, got):
                if e.shape != g.shape:
                    raise ExportError(f"the AOTInductor package returns shape {tuple(g.shape)}, the program {tuple(e.shape)}")
                if not e.numel() or not e.is_floating_point():
                    continue
                e, g = e.float().reshape(len(e), -1), g.float().reshape(len(g), -1)
                worst = max(worst, float((e - g).abs().max()))
                cos = torch.nn.functional.cosine_similarity(e, g, dim=1, eps=1e-12)
                worst_cos = min(worst_cos, float(torch.where((e.norm(dim=1) == 0) & (g.norm(dim=1) == 0), 1.0, cos).min()))
    if worst_cos < min_cosine:
        raise ExportError(f"the AOTInductor package's outputs differ from the program's (a row's cosine {worst_cos:.4f} < {min_cosine}, "
                          f"largest difference {worst:.2e}); this is a bug, please report it")
    return worst, worst_cos


def _flat(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for item in out for t in _flat(item)] if isinstance(out, (list, tuple)) else []


def as_numpy(out) -> list[np.ndarray]:
    return [t.detach().float().cpu().numpy() for t in _flat(out)]


class AotiModule(torch.nn.Module):
    """A loaded package as a module taking the program's inputs, so it is run and measured like
    every PyTorch artifact."""

    def __init__(self, compiled):
        super().__init__()
        self.compiled = compiled

    def forward(self, *args):
        out = self.compiled(*args)
        return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
