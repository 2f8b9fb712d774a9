"""What a PATH given to `bench run` holds: the artifacts to measure and the reference to measure against.

A model file or Hugging Face directory is one artifact and its own reference. An output
directory of `compress` holds several, all measured against the original model that its
manifest records.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from compress.core.errors import BenchError
from compress.core.registry import is_model_pass
from export.aoti.package import is_aoti_package, mismatch, read_aoti_metadata

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


@dataclass(frozen=True)
class Artifact:
    name: str
    path: Path
    kind: str  # torch | onnx | engine | aoti
    role: str  # reference | peer | ours | artifact
    precision: str = "fp32"
    transform: str | None = None  # "dynamic-int8": PyTorch's dynamic INT8 of the loaded module
    disabled_optimizers: tuple[str, ...] = ()  # how ONNX Runtime must load it (from the manifest)

    def to_json(self) -> dict:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "role": self.role, "precision": self.precision,
                "transform": self.transform, "disabled_optimizers": list(self.disabled_optimizers)}

    @property
    def needs_kernels(self) -> bool:
        """A .pt2 whose graph calls torch.ops.compress (``compress --int8 --backend torch``): it runs on torch-kernels only."""
        from compress.load.loaders import uses_compress_ops

        return self.kind == "torch" and self.path.suffix == ".pt2" and uses_compress_ops(self.path)

    @classmethod
    def from_json(cls, data: dict) -> "Artifact":
        return cls(data["name"], Path(data["path"]), data["kind"], data["role"], data["precision"], data["transform"],
                   tuple(data["disabled_optimizers"]))


@dataclass
class Job:
    name: str
    source: Path
    reference: Artifact
    artifacts: list[Artifact]  # the reference first
    inputs: list[dict] | None = None  # input specs from a manifest (TensorScript/pickle need them)
    task: str | None = None
    model_passes: bool = False  # the directory's model.onnx is a pruned/distilled export, not the original's
    eval_file: Path | None = None  # the held-out file `compress` evaluated on, when the user gave one
    calib_file: Path | None = None  # the file `compress` calibrated on (the quantize_static peer calibrates on it too)
    notes: list[str] = field(default_factory=list)


def discover(path: Path) -> Job:
    path = Path(path)
    if not path.exists():
        raise BenchError(f"{path} does not exist; give a model file, a Hugging Face directory or a `compress` output directory")
    if path.is_dir() and (path / "manifest.json").is_file():
        return _output_dir_job(path)
    kind = artifact_kind(path)
    if kind is None:
        raise BenchError(f"{path} holds nothing measurable; give a model file (.onnx, TorchScript, .pt2, .pt, .engine), "
                         "a Hugging Face directory or a `compress` output directory")
    if kind == "aoti":
        _check_aoti_sidecar(path)
    reference = Artifact("original", path, kind, "reference", "int8" if "int8" in path.name else "fp32")
    return Job(job_name(path), path, reference, [reference])


def artifact_kind(path: Path) -> str | None:
    if path.is_dir():
        return "torch" if (path / "config.json").is_file() else None
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix in ENGINE_SUFFIXES:
        return "engine"
    if path.suffix == ".pt2" and is_aoti_package(path):  # compiled code: runs on torch-aoti-*, never loaded as a program
        return "aoti"
    if path.suffix in (".pt", ".pth", ".pt2", ".ts", ".jit") and path.stat().st_size > 0:
        return "torch"
    return None


def aoti_device(artifact: Artifact) -> str:
    """The device an AOTInductor package was compiled for (cpu or cuda), from its sidecar."""
    return read_aoti_metadata(artifact.path)["device"]


def aoti_mismatch(artifact: Artifact) -> str | None:
    """Why this machine cannot run the package (another torch, CPU class or GPU), or None."""
    return mismatch(read_aoti_metadata(artifact.path))


def job_name(path: Path) -> str:
    name = path.name.removesuffix(".compressed") if path.is_dir() else path.stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "model"


def size_on_disk(path: Path) -> int:
    """A file's size; for a directory, the weight files in it (not the tokenizer or config)."""
    if path.is_file():
        return path.stat().st_size
    weights = [p for p in path.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".onnx", ".data")]
    return sum(p.stat().st_size for p in weights)


def _output_dir_job(path: Path) -> Job:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}/manifest.json is corrupt ({exc}); re-run `compress` to rebuild the directory") from None
    model = manifest.get("model") or {}
    source = Path(model.get("source", ""))
    if not model.get("source") or not source.exists():
        raise BenchError(f"{path}: the original model its manifest records ({source}) is not there; restore it, "
                         "or benchmark the files in the directory by giving them as paths")
    kind = artifact_kind(source)
    if kind is None:
        raise BenchError(f"{path}: the original model {source} is not a format the suite can run")
    reference = Artifact("original", source, kind, "reference")
    runtime = manifest.get("runtime", {})
    artifacts = [reference]
    for rel in sorted(manifest.get("files", {})):
        file = path / rel
        if "/" in rel or file.suffix not in (".onnx", ".pt2", *ENGINE_SUFFIXES):  # .pt2: --backend torch INT8
            continue
        disabled = tuple(runtime.get(rel, {}).get("onnxruntime", {}).get("disabled_optimizers", ()))
        artifacts.append(Artifact(rel, file, artifact_kind(file), "ours", "int8" if "int8" in rel else "fp32", None, disabled))
    if (path / "model" / "config.json").is_file():  # pruned/distilled PyTorch model saved as a HF directory
        artifacts.append(Artifact("model/", path / "model", "torch", "ours"))
    passes = _changed_by_model_passes(manifest, path)
    if len(artifacts) == 1:
        raise BenchError(f"{path} holds nothing measurable besides its manifest; re-run `compress` to rebuild it")
    files = manifest.get("data_files") or {}
    eval_file, calib_file = (Path(files[k]) if files.get(k) and Path(files[k]).is_file() else None for k in ("evaluation", "calibration"))
    return Job(job_name(path), path, reference, artifacts, manifest.get("inputs"), manifest.get("task"), passes, eval_file, calib_file)


def _check_aoti_sidecar(path: Path) -> None:
    from compress.core.errors import InputError

    try:
        read_aoti_metadata(path)
    except InputError as exc:
        raise BenchError(str(exc)) from None


def _changed_by_model_passes(manifest: dict, path: Path) -> bool:
    """Whether model passes changed the weights before export (then the directory's model.onnx is
    not the original's). Recipes record each step's kind; older ones do not, and their report's
    model_passes section says it instead."""
    recipe = manifest.get("recipe", [])
    if all("kind" in step for step in recipe):
        return any(is_model_pass(step) for step in recipe)
    try:
        return "model_passes" in json.loads((path / "report.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # no report: written by quantize_, which runs no model pass
