"""Building the kernels in csrc/: the sources, the flags, and the JIT build into a cache.

One place for the compile flags, so the package build (setup.py), the JIT build on first use
and CI's nvcc check of every .cu file compile the same way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path

CSRC = Path(__file__).resolve().parents[2] / "csrc"
EXTENSION_NAME = "compress_ops"
# CI compiles every .cu for these even without a GPU: Hopper with its arch-specific features, and Ampere.
CI_CUDA_ARCHS = ("90a", "80")
CACHE_ENV = "COMPRESS_OPS_CACHE"

# -fopenmp: at::parallel_for is a header template; without it the CPU kernels run on one thread.
# The extension then links libgomp.so.1, which resolves to the copy torch has already loaded.
CXX_FLAGS = ["-O3", "-fopenmp"]  # torch adds -std=c++20, which its headers need
LD_FLAGS = ["-fopenmp"]
NVCC_FLAGS = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo"]


def cpu_sources() -> list[Path]:
    return [CSRC / "ops.cpp", *sorted((CSRC / "cpu").glob("*.cpp"))]


def cuda_sources() -> list[Path]:
    return sorted((CSRC / "cuda").glob("*.cu"))


def gencode_flags(archs: tuple[str, ...]) -> list[str]:
    return [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]


def nvcc() -> str | None:
    """The nvcc to use: $CUDA_HOME/bin/nvcc, else the one on PATH, else None."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home and (Path(home) / "bin" / "nvcc").exists():
        return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc") or (str(Path("/usr/local/cuda/bin/nvcc")) if Path("/usr/local/cuda/bin/nvcc").exists() else None)


def include_dirs(cuda: bool = False) -> list[str]:
    from torch.utils import cpp_extension

    dirs = [str(CSRC), *cpp_extension.include_paths("cpu"), sysconfig.get_paths()["include"]]
    compiler = nvcc()
    if cuda and compiler:
        dirs.append(str(Path(compiler).resolve().parent.parent / "include"))
    return dirs


def abi_define() -> str:
    import torch

    return f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"


def nvcc_compile_command(source: Path, output: Path, archs: tuple[str, ...] = CI_CUDA_ARCHS) -> list[str]:
    """The command that compiles one .cu to an object file, as the extension build does."""
    compiler = nvcc()
    if compiler is None:
        raise FileNotFoundError("nvcc was not found; set CUDA_HOME or put nvcc on PATH")
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS

    includes = [f"-I{d}" for d in include_dirs(cuda=True)]
    return [compiler, "-c", str(source), "-o", str(output), *includes, *COMMON_NVCC_FLAGS, *NVCC_FLAGS,
            *gencode_flags(archs), abi_define(), f"-DTORCH_EXTENSION_NAME={EXTENSION_NAME}",
            "-DTORCH_API_INCLUDE_EXTENSION_H", "-Xcompiler", "-fPIC"]


def source_digest(with_cuda: bool) -> str | None:
    """A hash of the kernel sources and flags; None where the sources are not shipped (a wheel install)."""
    if not (CSRC / "ops.cpp").exists():
        return None
    digest = hashlib.sha256()
    headers = sorted(CSRC.rglob("*.h")) + sorted(CSRC.rglob("*.cuh"))
    for path in [*cpu_sources(), *(cuda_sources() if with_cuda else []), *headers]:
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(" ".join(CXX_FLAGS + NVCC_FLAGS).encode())
    return digest.hexdigest()[:12]


def cache_dir(with_cuda: bool) -> Path:
    """Per torch version, device and source content, so an edit or an upgrade rebuilds."""
    import torch

    root = Path(os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "compress" / "ops")
    tag = f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}-{'cuda' if with_cuda else 'cpu'}"
    return root / f"{tag}-{source_digest(with_cuda)}"


def jit_build(with_cuda: bool, verbose: bool = False) -> Path:
    """Compile with ninja into the cache (a no-op when it is up to date) and return the library's path.

    ``is_python_module=False``: the library only registers ops with the dispatcher (no pybind).
    """
    from torch.utils import cpp_extension

    if shutil.which("ninja") is None and not _ninja_module():
        raise RuntimeError("ninja is not installed; pip install ninja")
    build_dir = cache_dir(with_cuda)
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [str(p) for p in cpu_sources() + (cuda_sources() if with_cuda else [])]
    cpp_extension.load(name=EXTENSION_NAME, sources=sources, build_directory=str(build_dir), extra_cflags=CXX_FLAGS,
                       extra_ldflags=LD_FLAGS, extra_include_paths=[str(CSRC)],
                       extra_cuda_cflags=NVCC_FLAGS + (gencode_flags(_local_archs()) if with_cuda else []),
                       with_cuda=with_cuda, is_python_module=False, verbose=verbose)
    return build_dir / f"{EXTENSION_NAME}.so"


def _ninja_module() -> bool:
    try:
        import ninja  # noqa: F401  (the PyPI package puts a ninja binary next to Python)
    except ImportError:
        return False
    return True


def _local_archs() -> tuple[str, ...]:
    """The GPUs present, with the arch-specific 'a' variant on Hopper (WGMMA needs sm_90a)."""
    import torch

    archs = set()
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        archs.add(f"{major}{minor}" + ("a" if (major, minor) == (9, 0) else ""))
    return tuple(sorted(archs)) or CI_CUDA_ARCHS
