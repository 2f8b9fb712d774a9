"""A small INT8 MLP (Linear+GELU fused, Linear) exported with a dynamic batch: the program the AOTInductor
tests compile, and the marks that skip them where nothing can compile or run it."""

from __future__ import annotations

import shutil

import pytest
import torch

from compress.ops import kernels
from compress.ops.int8_linear import Int8Linear

NEEDS_AOTI = [pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                 reason="AOTInductor compiles C++: no C++ compiler on PATH"),
              pytest.mark.skipif(kernels.status().backend != "extension", reason=f"the compiled kernels are not loaded: {kernels.status().reason}")]


def int8_mlp_program(features: int, hidden: int, outputs: int, seed: int = 0) -> torch.export.ExportedProgram:
    torch.manual_seed(seed)
    float_model = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, outputs)).eval()
    int8 = torch.nn.Sequential(Int8Linear.from_float(float_model[0], activation="gelu"), Int8Linear.from_float(float_model[2])).eval()
    return torch.export.export(int8, (torch.randn(3, features),), dynamic_shapes=({0: torch.export.Dim("batch", max=1024)},))
