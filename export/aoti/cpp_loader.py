"""Build the C++ runner of AOTInductor packages (``export/aoti/cpp/run_package.cpp``) against the
installed torch: the proof, and the starting point, for serving a package without Python.

    python -m export.aoti.cpp_loader DIR      # compiles DIR/run_package, prints its path
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from compress.core.errors import ExportError, InputError

SOURCE = Path(__file__).with_name("cpp") / "run_package.cpp"


def compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++")


def compile_command(out: Path) -> list[str]:
    """g++ against torch's headers and libraries, with the C++ ABI torch was built with."""
    import torch
    from torch.utils import cpp_extension

    cxx = compiler()
    if cxx is None:
        raise InputError("no C++ compiler on PATH (c++ or g++); install one to build the C++ runner")
    lib = Path(torch.__file__).parent / "lib"
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [cxx, "-std=c++17", "-O2", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *(f"-I{p}" for p in cpp_extension.include_paths()),
            str(SOURCE), "-o", str(out), f"-L{lib}", f"-Wl,-rpath,{lib}", "-ltorch", "-ltorch_cpu", "-lc10", "-ldl"]


def build_cpp_loader(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "run_package"
    done = subprocess.run(compile_command(binary), capture_output=True, text=True)
    if done.returncode != 0:
        raise ExportError(f"compiling {SOURCE.name} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1][:300]}")
    return binary


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print(build_cpp_loader(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
