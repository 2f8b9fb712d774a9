"""Load a bundle anywhere: ``from export.bundle.runtime import load; model = load("model.tar")``.

``load`` verifies every file against the manifest first, then picks what can run here: the
TensorRT engine built for this GPU and TensorRT version; else, where the caller allows compiled
packages, the AOTInductor package built for this device and torch version; else ONNX Runtime on
CUDA, then CPU, with one warning saying why nothing faster ran. ``model(x)`` or ``model(**inputs)``
returns the outputs as numpy arrays. By default loading runs no code from the bundle (JSON, ONNX
and engine files only): an AOTInductor package is a shared library, so it is opt-in
(``allow_compiled_packages=True``), as a TensorRT engine's embedded lean runtime is.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
import weakref
from pathlib import Path

import numpy as np

from compress.core.errors import InputError
from export.bundle.verify import extract_verified, verify


class BundleFallbackWarning(UserWarning):
    """Nothing faster than ONNX Runtime in the bundle runs on this machine (or was allowed to)."""


def load(bundle: str | Path, threads: int | None = None, allow_engines: bool = True,
         allow_engine_host_code: bool = False, allow_compiled_packages: bool = False) -> "BundleModel":
    """Verify and open a bundle. ``allow_engine_host_code`` lets a version-compatible TensorRT
    engine load the lean runtime it carries, and ``allow_compiled_packages`` lets an AOTInductor
    package (a shared library) run: both are code from the bundle, off unless you trust its source."""
    bundle = Path(bundle)
    if bundle.is_dir():
        manifest, root, cleanup = verify(bundle), bundle, None
    else:
        root = Path(tempfile.mkdtemp(prefix="compress-bundle-"))
        try:
            manifest = extract_verified(bundle, root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        cleanup = root
    engine, reason = pick_engine(manifest) if allow_engines else (None, "engines were not allowed (allow_engines=False)")
    package = None
    if engine is None:
        package, why_not = pick_aoti_package(manifest, allow_compiled_packages)
        reason = f"{reason}; {why_not}" if why_not else reason
    model = BundleModel(manifest, root, engine, reason, threads, allow_engine_host_code, package)
    if cleanup is not None:
        weakref.finalize(model, shutil.rmtree, cleanup, True)
    return model


def pick_engine(manifest: dict) -> tuple[str | None, str | None]:
    """(engine file that runs here, None) or (None, why none does)."""
    engines = {name: e for name, e in manifest["files"].items() if e.get("kind") == "engine"}
    if not engines:
        return None, "the bundle has no TensorRT engine"
    local, missing = local_tensorrt_target()
    if local is None:
        return None, missing
    mismatches = []
    for name, entry in sorted(engines.items(), key=lambda kv: kv[1].get("precision") != "int8"):  # INT8 first
        why = engine_mismatch(entry.get("target") or {}, local)
        if why is None:
            return name, None
        mismatches.append(f"{name}: {why}")
    return None, "; ".join(mismatches)


def pick_aoti_package(manifest: dict, allowed: bool) -> tuple[str | None, str | None]:
    """(AOTInductor package that runs here, None) or (None, why none does; None when the bundle has none).
    A CUDA package first where there is a GPU, then the CPU one."""
    from export.aoti.package import mismatch

    packages = {name: e for name, e in manifest["files"].items() if e.get("kind") == "aoti-package"}
    if not packages:
        return None, None
    matching, mismatches = [], []
    for name, entry in sorted(packages.items(), key=lambda kv: (kv[1].get("target") or {}).get("device") != "cuda"):
        why = mismatch(entry.get("target") or {})
        if why:
            mismatches.append(f"{name}: {why}")
        else:
            matching.append(name)
    if matching and not allowed:
        return None, (f"{matching[0]} (AOTInductor) matches this machine but is compiled code from the bundle; "
                      "pass allow_compiled_packages=True to run it")
    return (matching[0], None) if matching else (None, "; ".join(mismatches))


def local_tensorrt_target() -> tuple[dict | None, str | None]:
    from export.tensorrt.available import tensorrt_missing_reason

    missing = tensorrt_missing_reason()
    if missing:
        return None, missing
    import tensorrt
    import torch

    major, minor = torch.cuda.get_device_capability()
    return {"compute_capability": f"{major}.{minor}", "tensorrt_version": tensorrt.__version__}, None


def engine_mismatch(target: dict, local: dict) -> str | None:
    """None when an engine built for ``target`` runs on ``local``, else the reason (TensorRT's own rules:
    the exact same version unless built version-compatible, then that version or a later one; the same
    compute capability unless built hardware-compatible for Ampere and newer)."""
    built, here = _version(target.get("tensorrt_version")), _version(local["tensorrt_version"])
    if target.get("version_compatible"):  # runs on the same or a later TensorRT (8.6 on), not an older one
        if here < built:
            return f"built version-compatible with TensorRT {target.get('tensorrt_version')}, which needs that version or later, here {local['tensorrt_version']}"
    elif here != built:  # the standard runtime needs major, minor, patch and build to match
        return f"built with TensorRT {target.get('tensorrt_version')}, here {local['tensorrt_version']} (\"Version tag does not match\")"
    cc_built, cc_here = _version(target.get("compute_capability")), _version(local["compute_capability"])
    if target.get("hardware_compatibility") == "ampere_plus":
        return None if cc_here >= (8, 0) else f"built for Ampere or newer, this GPU is sm_{local['compute_capability']}"
    if cc_built != cc_here:
        return f"built for compute capability {target.get('compute_capability')}, this GPU has {local['compute_capability']}"
    return None


def _version(text) -> tuple[int, ...]:
    parts = []
    for piece in str(text or "0").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class BundleModel:
    """A verified bundle, ready to answer: ``model(x)`` or ``model(**inputs)`` -> list of numpy arrays."""

    def __init__(self, manifest: dict, root: Path, engine: str | None, no_engine_reason: str | None, threads: int | None,
                 allow_engine_host_code: bool = False, aoti_package: str | None = None):
        self.manifest, self.root = manifest, root
        self.input_names = [spec["name"] for spec in manifest.get("inputs", [])]
        self.output_names = list(manifest.get("outputs", []))
        if engine is not None:
            self.file, self.backend = engine, "tensorrt"
            self._runner = _engine_runner(root / engine, allow_engine_host_code)
        elif aoti_package is not None:
            self.file = aoti_package
            self.backend, self._runner = _aoti_runner(manifest, root / aoti_package, threads)
        else:
            self.file, self.backend, self._runner = _onnx_runner(manifest, root, threads)
            warnings.warn(f"compress bundle: no engine or compiled package runs here ({no_engine_reason}); "
                          f"running {self.file} on {self.backend}", BundleFallbackWarning, stacklevel=3)

    def __call__(self, *args, **inputs) -> list[np.ndarray]:
        if len(args) > len(self.input_names):
            raise InputError(f"the model takes {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(args)}")
        feed = dict(zip(self.input_names, args))
        overlap = set(feed) & set(inputs)
        if overlap:
            raise InputError(f"input {sorted(overlap)[0]} given both by position and by name")
        feed.update(inputs)
        unknown, missing = set(feed) - set(self.input_names), [n for n in self.input_names if n not in feed]
        if unknown or missing:
            raise InputError(f"the model's inputs are {', '.join(self.input_names)}; "
                             + (f"unknown: {', '.join(sorted(unknown))}" if unknown else f"missing: {', '.join(missing)}"))
        return self._runner({name: np.asarray(value) for name, value in feed.items()})

    def __repr__(self) -> str:
        return f"BundleModel({self.file} on {self.backend}, inputs {self.input_names})"


def _onnx_runner(manifest: dict, root: Path, threads: int | None):
    import onnxruntime as ort

    from export.onnx.session import make_session, run_session

    onnx_files = {name: e for name, e in manifest["files"].items() if e.get("kind") == "onnx" and e.get("role") != "qdq-for-tensorrt"}
    if not onnx_files:
        raise InputError("the bundle has no ONNX model to fall back to and no engine runs here")
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    # CPU: the integer-op INT8 graph; CUDA: the FP32 graph (ORT's CUDA EP has few integer kernels).
    order = ("model.onnx", "model.int8.onnx") if cuda else ("model.int8.onnx", "model.onnx")
    name = next((n for n in order if n in onnx_files), sorted(onnx_files)[0])
    disabled = onnx_files[name].get("onnxruntime", {}).get("disabled_optimizers", ())
    if cuda:
        session = ort.InferenceSession(str(root / name), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        backend = "onnxruntime-cuda"
    else:
        session, backend = make_session(root / name, threads, spin=False, disabled_optimizers=disabled), "onnxruntime-cpu"
    return name, backend, lambda feed: run_session(session, feed)


def _engine_runner(plan: Path, allow_host_code: bool):
    from export.tensorrt.runner import EngineRunner

    runner = EngineRunner(plan, allow_host_code=allow_host_code).__enter__()  # held for the model's lifetime
    return runner.run


def _aoti_runner(manifest: dict, package: Path, threads: int | None):
    """The package on its device, inputs converted by the manifest's specs (names, dtypes)."""
    import torch

    from compress.core.model import flatten_outputs
    from compress.core.spec import TensorSpec
    from export.aoti.package import load_aoti_model

    specs = tuple(TensorSpec.from_json(s) for s in manifest.get("inputs", []))
    model = load_aoti_model(package, specs or None)
    device = manifest["files"][package.name]["target"]["device"]
    if threads:
        torch.set_num_threads(threads)

    def run(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = tuple(a.to(device) for a in model.torch_args(feed))
        with torch.inference_mode():
            out = model.module(*args)
        return [t.detach().float().cpu().numpy() for t in flatten_outputs(out)]

    return f"torch-aoti-{device}", run
