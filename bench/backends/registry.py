"""Every backend the suite knows, which artifacts each runs, and why one cannot run here.

`--backends` takes families (torch, ort, trt, kernels, aoti) or single backends (torch-cuda-fp16).
A backend whose runtime or device is missing is listed with the reason, never an error,
unless the user named it alone, or named a family none of whose members can run (then the run
exits non-zero after measuring the rest).
"""

from __future__ import annotations

from compress.core.errors import BenchError

FAMILIES: dict[str, tuple[str, ...]] = {
    "torch": ("torch-cpu-fp32", "torch-cpu-bf16", "torch-cuda-fp32", "torch-cuda-fp16", "torch-cuda-bf16"),
    "ort": ("ort-cpu", "ort-cuda", "ort-trt"),
    "trt": ("trt",),
    "kernels": ("torch-kernels",),
    "aoti": ("torch-aoti-cpu", "torch-aoti-cuda"),  # AOTInductor packages, each on the device it was compiled for
}
ALL_BACKENDS = tuple(b for family in FAMILIES.values() for b in family)
# Which artifact kind each backend runs.
RUNS_KIND = {**{b: "torch" for b in FAMILIES["torch"]}, "ort-cpu": "onnx", "ort-cuda": "onnx", "ort-trt": "onnx",
             "trt": "engine", "torch-kernels": "torch", "torch-aoti-cpu": "aoti", "torch-aoti-cuda": "aoti"}


def parse_backends(text: str | None) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(backends in suite order, what the user asked for as groups). A backend named alone is a group
    of one: the run fails if it cannot run. A family is one group: the run fails only if none of its
    members can (``--backends aoti`` on a CPU machine measures torch-aoti-cpu and notes the CUDA one).
    None means every backend, nothing required."""
    if text is None:
        return ALL_BACKENDS, ()
    chosen: list[str] = []
    groups: list[tuple[str, ...]] = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        if word in FAMILIES:
            chosen.extend(FAMILIES[word])
            groups.append(FAMILIES[word])
        elif word in ALL_BACKENDS:
            chosen.append(word)
            groups.append((word,))
        else:
            raise BenchError(f"--backends {word!r} is unknown; use families {', '.join(FAMILIES)} or backends {', '.join(ALL_BACKENDS)}")
    if not chosen:
        raise BenchError("--backends is empty; name at least one of " + ", ".join(FAMILIES))
    return tuple(b for b in ALL_BACKENDS if b in chosen), tuple(groups)


def unavailable_reason(backend: str) -> str | None:
    """None when ``backend`` can run on this machine, else one line saying what is missing."""
    if backend.startswith("torch-cuda") or backend == "torch-aoti-cuda":
        return None if _cuda() else "no CUDA device visible to PyTorch (this torch build or machine has none)"
    if backend in ("ort-cuda", "ort-trt"):
        from bench.backends.ort_gpu import ort_provider_reason

        return ort_provider_reason("cuda" if backend == "ort-cuda" else "tensorrt")
    if backend == "trt":
        from bench.backends.tensorrt import trt_reason

        return trt_reason()
    if backend == "torch-kernels":
        from compress.ops import kernels as ops

        status = ops.status()
        if status.backend != "extension":  # the reference ops would time plain PyTorch under the kernels' name
            return f"the compiled INT8 kernels are not loaded: {status.reason}"
        return None
    return None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
