"""The custom INT8 ops, ``torch.ops.compress.*``: importing this module registers them.

- ``quantize_per_token(x) -> (q, scale)``: symmetric per-row INT8.
- ``int8_linear(q, x_scale, w_q, w_scale, bias, activation, out_dtype=None)``: INT8 GEMM with the
  dequantize, bias and GELU fused into its epilogue.
- ``int8_linear_packed(q, x_scale, w_packed, w_sums, w_scale, bias, activation)``: the same on the
  CPU with the weights packed once (``compress.ops.packing``) in the layout VNNI and AMX read.
- ``mac_peak(iterations, isa)``: benchmarks only; the chosen CPU path's INT8 instruction alone on
  every thread, returning the MACs done (the ceiling ``bench.studies.int8_kernels`` reports against).

The kernels are in csrc/. They are loaded, in order, from the library the package build put
next to this file, else JIT-built with ninja into a cache (``compress.ops.build``). If neither
works, the same schemas are defined here with the plain-PyTorch references as their
implementation, and one warning says why: results are the same, only slower.
``COMPRESS_OPS=reference`` forces that fallback (tests use it to check both paths).
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import math
import os
import warnings
from pathlib import Path

import torch

MODE_ENV = "COMPRESS_OPS"  # auto (default: the package build's library, else JIT), jit, or reference
MODES = ("auto", "jit", "reference")
SCHEMAS = {
    "quantize_per_token": "quantize_per_token(Tensor x) -> (Tensor, Tensor)",
    "int8_linear": "int8_linear(Tensor q, Tensor x_scale, Tensor w_q, Tensor w_scale, Tensor? bias, str activation, "
                   "ScalarType? out_dtype=None) -> Tensor",
    "int8_linear_packed": "int8_linear_packed(Tensor q, Tensor x_scale, Tensor w_packed, Tensor w_sums, Tensor w_scale, "
                          "Tensor? bias, str activation) -> Tensor",
    "mac_peak": "mac_peak(int iterations, str isa) -> int",
}
ACTIVATIONS = ("none", "gelu")


class KernelFallbackWarning(RuntimeWarning):
    """The compiled kernels are not available; the plain-PyTorch reference ops run instead."""


@dataclasses.dataclass(frozen=True)
class OpsStatus:
    backend: str  # "extension" (compiled kernels) or "reference" (plain PyTorch)
    library: str | None  # the loaded shared library
    reason: str | None  # why the reference ops run
    cuda_kernels: bool


# --- plain-PyTorch references: the definition of what the kernels compute -----------------

def quantize_per_token_reference(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x.float()
    absmax = xf.abs().amax(dim=1) if xf.shape[1] else xf.new_zeros(xf.shape[0])
    scale = absmax / torch.full_like(absmax, 127.0)  # true division: CUDA turns "/ 127" into "* (1/127)", 1 ulp off
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(xf / scale[:, None]), -127, 127).to(torch.int8)
    return q, scale


def int8_linear_reference(q: torch.Tensor, x_scale: torch.Tensor, w_q: torch.Tensor, w_scale: torch.Tensor,
                          bias: torch.Tensor | None, activation: str, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    # float64 holds every int32 accumulator exactly (K * 127^2 < 2^53) on every device.
    acc = (q.double() @ w_q.double().T).float()
    y = acc * x_scale[:, None] * w_scale[None, :]
    if bias is not None:
        y = y + bias
    if activation == "gelu":
        y = 0.5 * y * (1 + torch.erf(y * (1 / math.sqrt(2))))
    return y.to(out_dtype or torch.float32)


def int8_linear_packed_reference(q: torch.Tensor, x_scale: torch.Tensor, w_packed: torch.Tensor, w_sums: torch.Tensor,
                                 w_scale: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
    from compress.ops.packing import unpack_weight

    return int8_linear_reference(q, x_scale, unpack_weight(w_packed, w_scale.shape[0], q.shape[1]), w_scale, bias, activation)


# --- loading --------------------------------------------------------------------------------

_STATUS: OpsStatus | None = None


def status() -> OpsStatus:
    """How the ops are implemented in this process (loads them on first call)."""
    _ensure_loaded()
    return _STATUS


def has_cuda_kernels() -> bool:
    return status().cuda_kernels


def _ensure_loaded() -> None:
    global _STATUS
    if _STATUS is not None:
        return
    mode = os.environ.get(MODE_ENV) or "auto"
    if mode not in MODES:
        raise RuntimeError(f"{MODE_ENV}={mode!r} is unknown; use one of {', '.join(MODES)}")
    if mode == "reference":
        _STATUS = _use_reference(f"{MODE_ENV}=reference is set")
        return
    try:
        library, cuda = _load_extension(prebuilt_ok=mode == "auto")
    except Exception as exc:  # noqa: BLE001  any build or load failure means: use the references
        _STATUS = _use_reference(f"the compiled kernels could not be built or loaded ({_first_error(exc)[:300]})")
        return
    _STATUS = OpsStatus("extension", str(library), None, cuda)
    if torch.cuda.is_available() and not cuda:
        _register_reference_impls("CUDA")


def _first_error(exc: BaseException) -> str:
    """The compiler's first error line, not ninja's closing 'build stopped'."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for needle in ("error:", "not found", "No such file", "FAILED:"):
        for line in lines:
            if needle in line:
                return line
    return lines[-1] if lines else type(exc).__name__


def _load_extension(prebuilt_ok: bool) -> tuple[Path, bool]:
    """The package build's library if it is current, else a JIT build; returns (path, has CUDA kernels)."""
    from compress.ops import build as ops_build

    with_cuda = torch.cuda.is_available() and torch.version.cuda is not None
    prebuilt = _prebuilt_library() if prebuilt_ok else None
    if prebuilt is not None and (not with_cuda or "cuda" in prebuilt.name) and _is_current(prebuilt, ops_build):
        try:
            torch.ops.load_library(str(prebuilt))
            return prebuilt, "cuda" in prebuilt.name
        except OSError as exc:  # built against another torch (an upgrade since): build for this one instead
            warnings.warn(f"compress.ops.kernels: the prebuilt kernels do not load with torch {torch.__version__} "
                          f"({_first_error(exc)[:200]}); building them for it", RuntimeWarning, stacklevel=3)

    if with_cuda and ops_build.nvcc() is None:
        with_cuda = False  # CPU kernels now; the CUDA ops fall back to the references with a reason
    library = ops_build.jit_build(with_cuda)
    torch.ops.load_library(str(library))
    return library, with_cuda


def _is_current(library: Path, ops_build) -> bool:
    """False when csrc/ changed after the package build (an editable install being worked on), or
    when the library was built against another torch than the one running (the C++ ABI differs)."""
    recorded = library.parent / (library.name.split(".")[0] + ".digest")
    if not recorded.exists():
        return True  # built by an older setup.py that recorded nothing
    digest, *rest = recorded.read_text().split()
    fields = dict(part.split("=", 1) for part in rest if "=" in part)
    if fields.get("torch", torch.__version__) != torch.__version__:
        return False
    current = ops_build.source_digest("cuda" in library.name)
    if current is None:
        return True  # a wheel install ships no sources to compare with
    return digest == current


def _prebuilt_library() -> Path | None:
    here = Path(__file__).resolve().parent
    for stem in ("_C_cuda", "_C"):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if (here / f"{stem}{suffix}").exists():
                return here / f"{stem}{suffix}"
    return None


def _use_reference(reason: str) -> OpsStatus:
    global _REFERENCE_LIB
    _REFERENCE_LIB = torch.library.Library("compress", "DEF")
    for schema in SCHEMAS.values():
        _REFERENCE_LIB.define(schema)
    _register_reference_impls("CompositeExplicitAutograd")
    warnings.warn(f"compress.ops.kernels: running the plain-PyTorch reference ops, not the compiled kernels: {reason}",
                  KernelFallbackWarning, stacklevel=3)
    return OpsStatus("reference", None, reason, False)


_REFERENCE_LIB: torch.library.Library | None = None
_IMPL_LIBS: list[torch.library.Library] = []


def _register_reference_impls(dispatch_key: str) -> None:
    lib = torch.library.Library("compress", "IMPL")
    lib.impl("quantize_per_token", _checked_quantize, dispatch_key)
    lib.impl("int8_linear", _checked_int8_linear, dispatch_key)
    if dispatch_key != "CUDA":  # the packed op is CPU-only: on CUDA it has no kernel, by design
        lib.impl("int8_linear_packed", _checked_int8_linear_packed, dispatch_key)
        lib.impl("mac_peak", _no_peak_without_kernels, dispatch_key)
    _IMPL_LIBS.append(lib)


def _checked_quantize(x):
    from compress.ops.checks import check_quantize

    check_quantize(x)
    return quantize_per_token_reference(x.contiguous())


def _checked_int8_linear(q, x_scale, w_q, w_scale, bias, activation, out_dtype=None):
    from compress.ops.checks import check_int8_linear

    check_int8_linear(q, x_scale, w_q, w_scale, bias, activation, out_dtype)
    return int8_linear_reference(q, x_scale, w_q, w_scale, bias, activation, out_dtype)


def _checked_int8_linear_packed(q, x_scale, w_packed, w_sums, w_scale, bias, activation):
    from compress.ops.checks import check_int8_linear_packed

    check_int8_linear_packed(q, x_scale, w_packed, w_sums, w_scale, bias, activation)
    return int8_linear_packed_reference(q, x_scale, w_packed, w_sums, w_scale, bias, activation)


def _no_peak_without_kernels(iterations, isa):
    raise RuntimeError("compress::mac_peak times an instruction of the compiled kernels; they are not loaded "
                       f"({_STATUS.reason if _STATUS else 'reference ops'})")


# --- shapes for tracing (torch.compile, torch.export, FakeTensor) ------------------------------

def _register_fakes() -> None:
    @torch.library.register_fake("compress::quantize_per_token")
    def _(x):
        torch._check(x.dim() == 2, lambda: "compress::quantize_per_token: x must be 2-D [rows, cols]")
        return x.new_empty(x.shape, dtype=torch.int8), x.new_empty(x.shape[:1], dtype=torch.float32)

    @torch.library.register_fake("compress::int8_linear")
    def _(q, x_scale, w_q, w_scale, bias, activation, out_dtype=None):
        torch._check(q.dim() == 2 and w_q.dim() == 2, lambda: "compress::int8_linear: q and w_q must be 2-D")
        torch._check(q.shape[1] == w_q.shape[1], lambda: "compress::int8_linear: q and w_q must share K")
        return q.new_empty((q.shape[0], w_q.shape[0]), dtype=out_dtype or torch.float32)

    @torch.library.register_fake("compress::int8_linear_packed")
    def _(q, x_scale, w_packed, w_sums, w_scale, bias, activation):
        torch._check(q.dim() == 2 and w_packed.dim() == 4, lambda: "compress::int8_linear_packed: q must be 2-D, w_packed 4-D")
        return q.new_empty((q.shape[0], w_scale.shape[0]), dtype=torch.float32)


_ensure_loaded()
_register_fakes()
