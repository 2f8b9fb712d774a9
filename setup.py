"""The package build compiles the kernels in csrc/ ahead of time when it can (a C++ compiler,
and nvcc plus a CUDA build of torch for the CUDA kernels). When it cannot, the install still
succeeds: compress.ops.kernels then JIT-builds on first use, or falls back to the reference ops.
Everything else about the package is in pyproject.toml."""

import os
import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _extensions():
    if os.environ.get("COMPRESS_OPS_BUILD", "1") == "0":
        return [], {}
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:  # not a torch-enabled build environment: no kernels ahead of time
        return [], {}
    from compress.ops import build as ops_build

    sources = [os.path.relpath(p) for p in ops_build.cpu_sources()]
    include = [str(ops_build.CSRC)]  # absolute: ninja compiles from a temporary directory
    cuda = torch.version.cuda is not None and ops_build.nvcc() is not None
    if cuda:
        archs = tuple(a for a in os.environ.get("COMPRESS_CUDA_ARCHS", "80,90a").split(",") if a)
        ext = cpp_extension.CUDAExtension(
            "compress.ops._C_cuda", sources + [os.path.relpath(p) for p in ops_build.cuda_sources()], include_dirs=include,
            extra_compile_args={"cxx": ops_build.CXX_FLAGS, "nvcc": ops_build.NVCC_FLAGS + ops_build.gencode_flags(archs)},
            extra_link_args=ops_build.LD_FLAGS, py_limited_api=False)
    else:
        ext = cpp_extension.CppExtension("compress.ops._C", sources, include_dirs=include,
                                         extra_compile_args={"cxx": ops_build.CXX_FLAGS}, extra_link_args=ops_build.LD_FLAGS)

    class OptionalBuild(cpp_extension.BuildExtension):
        """A failed kernel build is a warning: compress.ops.kernels will JIT-build or use the reference ops."""

        def build_extension(self, extension):
            try:
                super().build_extension(extension)
                # What the library was built from: compress.ops.kernels rebuilds (JIT) when csrc/ has changed since,
                digest = ops_build.source_digest(with_cuda=extension.name.endswith("_cuda"))
                # and against which torch: another torch (an upgrade, a user's CUDA build) rebuilds them too
                Path(ops_build.CSRC.parent, "compress", "ops", extension.name.split(".")[-1] + ".digest").write_text(
                    f"{digest} torch={torch.__version__}\n")
            except Exception as exc:  # noqa: BLE001  compiler errors come as several types
                self.extensions.remove(extension)  # nothing to copy into the package (one extension: safe mid-loop)
                print(f"warning: the compress kernels were not built ahead of time ({exc}); "
                      "compress.ops.kernels will build them on first use", file=sys.stderr)

    return [ext], {"build_ext": OptionalBuild.with_options(no_python_abi_suffix=False)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
