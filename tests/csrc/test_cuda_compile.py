"""Every CUDA source in csrc/cuda compiles with nvcc for Hopper (sm_90a) and Ampere (sm_80).

No GPU is needed: CI compiles the kernels on its CPU machine with the exact command the extension build
uses (compress.ops.build), so a kernel that does not compile, or is never registered, fails CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from compress.ops import build as ops_build

SOURCES = ops_build.cuda_sources()
NVCC_MISSING = "nvcc not found; CUDA sources are compiled in CI where nvcc is installed"
COMPILE_TIMEOUT_S = 900


def test_cuda_sources_exist_and_register_their_kernels():
    assert SOURCES, f"no .cu files under {ops_build.CSRC / 'cuda'}"
    for source in SOURCES:
        assert "TORCH_LIBRARY_IMPL(compress, CUDA" in source.read_text(), (
            f"{source.name} never registers a CUDA kernel: add TORCH_LIBRARY_IMPL(compress, CUDA, m)")


@pytest.fixture(scope="module")
def compile_source(tmp_path_factory):
    """Compiles a source once per test module (the SASS check reuses the object) -> (cmd, process, object)."""
    out_dir = tmp_path_factory.mktemp("nvcc")
    done: dict[Path, tuple[list[str], subprocess.CompletedProcess, Path]] = {}

    def compile_one(source: Path):
        if source not in done:
            output = out_dir / (source.stem + ".o")
            cmd = ops_build.nvcc_compile_command(source, output)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
            done[source] = (cmd, proc, output)
        return done[source]

    return compile_one


@pytest.mark.skipif(ops_build.nvcc() is None, reason=NVCC_MISSING)
@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_cuda_source_compiles_for_sm90a_and_sm80(source, compile_source):
    cmd, proc, output = compile_source(source)
    assert proc.returncode == 0, (
        f"nvcc failed on {source.name} (exit {proc.returncode}):\n{' '.join(cmd)}\n{proc.stderr[-20000:]}")
    assert output.exists() and output.stat().st_size > 0, f"nvcc exited 0 but wrote no object for {source.name}"


def _pip_cuda_bin() -> Path | None:
    """Where the dev extra's nvidia-cuda-cuobjdump / nvidia-cuda-nvdisasm wheels put their tools."""
    try:
        import nvidia
    except ImportError:
        return None
    for root in nvidia.__path__:
        for bin_dir in sorted(Path(root).glob("cu*/bin")):
            if (bin_dir / "cuobjdump").exists():
                return bin_dir
    return None


def _cuobjdump() -> str | None:
    compiler = ops_build.nvcc()
    candidates = [shutil.which("cuobjdump")]
    if compiler:
        candidates += [str(Path(compiler).parent / "cuobjdump"), str(Path(compiler).resolve().parent / "cuobjdump")]
    if _pip_cuda_bin():
        candidates.append(str(_pip_cuda_bin() / "cuobjdump"))
    return next((c for c in candidates if c and Path(c).exists()), None)


@pytest.mark.skipif(ops_build.nvcc() is None, reason=NVCC_MISSING)
@pytest.mark.skipif(_cuobjdump() is None, reason="cuobjdump not found next to nvcc or on PATH")
def test_int8_linear_uses_integer_tensor_cores(compile_source):
    """The GEMM must really run on the INT8 tensor cores: IMMA instructions in both architectures' code."""
    source = ops_build.CSRC / "cuda" / "int8_linear.cu"
    _, proc, output = compile_source(source)
    assert proc.returncode == 0, f"nvcc failed on {source.name}:\n{proc.stderr[-20000:]}"
    for arch in ops_build.CI_CUDA_ARCHS:
        tools = str(Path(_cuobjdump()).parent)  # cuobjdump runs nvdisasm, found on PATH
        env = {**os.environ, "PATH": os.pathsep.join([tools, os.environ.get("PATH", "")])}
        sass = subprocess.run([_cuobjdump(), "-sass", "-arch", f"sm_{arch}", str(output)], capture_output=True,
                              text=True, timeout=300, env=env)
        if sass.returncode != 0 and "nvdisasm" in sass.stderr:
            pytest.skip(f"cuobjdump cannot disassemble without nvdisasm: {sass.stderr.strip()[:200]}")
        assert sass.returncode == 0, sass.stderr
        assert "IMMA.16832.S8.S8" in sass.stdout, f"no IMMA.16832.S8.S8 (mma.sync m16n8k32 s8) in the sm_{arch} code"
