"""How compress.ops gets its implementation: the package build's library, a JIT build into a cache,
or the reference ops with one warning. Each case runs in a fresh interpreter (ops load once per process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

PROBE = textwrap.dedent("""
    import json, warnings
    import torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from compress.ops import kernels as ops
        status = ops.status()
    x = torch.randn(7, 45)
    q, s = torch.ops.compress.quantize_per_token(x)
    w_q, w_s = torch.ops.compress.quantize_per_token(torch.randn(9, 45))
    y = torch.ops.compress.int8_linear(q, s, w_q, w_s, torch.randn(9), "gelu")
    ref = ops.int8_linear_reference(q, s, w_q, w_s, None, "gelu")
    errors = []
    for bad in (torch.full((2, 3), float("nan")), torch.zeros(2, 3, dtype=torch.float64)):
        try:
            torch.ops.compress.quantize_per_token(bad)
        except RuntimeError as exc:
            errors.append(str(exc).splitlines()[0])
    print(json.dumps({"backend": status.backend, "reason": status.reason, "library": status.library,
                      "warnings": [str(w.message) for w in caught if w.category is ops.KernelFallbackWarning],
                      "q_equal": bool(torch.equal(q, ops.quantize_per_token_reference(x)[0])),
                      "shape": list(y.shape), "errors": errors}))
""")


def _probe(tmp_path: Path, **env) -> dict:
    full_env = {**os.environ, "COMPRESS_OPS_CACHE": str(tmp_path / "cache"), **env}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_reference_mode_runs_the_plain_pytorch_ops_and_says_so_once(tmp_path):
    out = _probe(tmp_path, COMPRESS_OPS="reference")
    assert out["backend"] == "reference" and "COMPRESS_OPS=reference" in out["reason"]
    assert len(out["warnings"]) == 1 and "plain-PyTorch reference ops" in out["warnings"][0]
    assert out["q_equal"] and out["shape"] == [7, 9]
    # the fallback rejects bad input with the kernels' messages
    assert out["errors"][0].startswith("compress::quantize_per_token: x contains NaN or Inf")
    assert out["errors"][1].startswith("compress::quantize_per_token: x must be float32 on CPU")


needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="no C++ compiler on this machine to JIT-build the kernels")


@needs_compiler
def test_jit_mode_builds_the_kernels_with_ninja_into_the_cache(tmp_path):
    out = _probe(tmp_path, COMPRESS_OPS="jit")
    assert out["backend"] == "extension" and out["warnings"] == []
    assert Path(out["library"]).is_relative_to(tmp_path / "cache") and Path(out["library"]).exists()
    assert out["q_equal"] and out["errors"][0].startswith("compress::quantize_per_token: x contains NaN or Inf")
    again = _probe(tmp_path, COMPRESS_OPS="jit")  # the second process reuses the cached build
    assert again["library"] == out["library"]


def test_a_failed_build_falls_back_to_the_reference_ops_with_the_reason(tmp_path):
    out = _probe(tmp_path, COMPRESS_OPS="jit", CXX=str(tmp_path / "no-such-compiler"))
    assert out["backend"] == "reference" and "could not be built or loaded" in out["reason"]
    assert len(out["warnings"]) == 1 and out["q_equal"] and out["shape"] == [7, 9]


def test_an_unknown_mode_is_refused(tmp_path):
    full_env = {**os.environ, "COMPRESS_OPS": "fast"}
    proc = subprocess.run([sys.executable, "-c", "import compress.ops.kernels"], cwd=REPO, env=full_env, capture_output=True, text=True)
    assert proc.returncode != 0 and "COMPRESS_OPS='fast' is unknown; use one of auto, jit, reference" in proc.stderr


def test_a_prebuilt_library_is_current_only_for_the_sources_and_the_torch_it_was_built_from(tmp_path):
    import torch

    from compress.ops import build as ops_build
    from compress.ops import kernels as ops

    library = tmp_path / "_C.cpython-311-x86_64-linux-gnu.so"
    library.write_bytes(b"")
    digest = ops_build.source_digest(with_cuda=False)
    recorded = tmp_path / "_C.digest"
    for text, current in ((f"{digest} torch={torch.__version__}\n", True),
                          (f"{digest} torch=2.11.0+cu130\n", False),  # a user's other torch: the C++ ABI differs, rebuild
                          (f"0123456789ab torch={torch.__version__}\n", False),  # csrc/ changed since the build
                          (f"{digest}\n", True)):  # recorded by an older setup.py: sources only
        recorded.write_text(text)
        assert ops._is_current(library, ops_build) is current, text
