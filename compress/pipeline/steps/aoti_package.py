"""``AotiPackageConfig`` (``--int8 --backend torch --target aoti``): compile model.int8.pt2 into an
AOTInductor package for this machine's CPU (or its GPU), check it against the program, and
measure it like every other artifact."""

from __future__ import annotations

import dataclasses

import torch

from compress.core.registry import register_handler
from compress.load.loaders import load_model
from compress.pipeline.measure import measure_torch
from compress.pipeline.state import RunState
from export.aoti.config import AotiPackageConfig
from export.aoti.package import AotiModule, build_aoti_package, load_aoti_package
from export.onnx.parity import parity_inputs


@register_handler(AotiPackageConfig)
def aoti_package_step(config: AotiPackageConfig, state: RunState) -> None:
    program_path = state.files["pt2-int8"]
    program = load_model(program_path, None, task=state.model.task)
    examples = [program.torch_args(arrays) for arrays in parity_inputs(state.model)]
    if config.device == "cpu" and torch.cuda.is_available():  # not silently: a GPU user may expect a CUDA package
        state.progress.warn("--target aoti compiles for the CPU only so far (the INT8 program's weights are packed for the "
                            "CPU kernels); no CUDA package is built")
    with state.progress.step(f"Compiling the INT8 program with AOTInductor for {config.device} (minutes on a small CPU)"):
        meta = build_aoti_package(program_path, state.stage, config.device, examples)
    package = state.stage / meta["file"]
    compiled = dataclasses.replace(program, module=AotiModule(load_aoti_package(package)))
    with torch.inference_mode():
        measure_torch(state, "pytorch-int8-aoti", compiled, backend="torch-aoti", precision="int8", file=package)
    state.report["aoti"] = meta
    state.files["aoti"] = package
    state.progress.say(f"  {meta['file']}: max difference from the program {meta['max_abs_error']:.2e} "
                       f"(lowest row cosine {meta['min_cosine']:.5f}) over {meta['shapes_checked']} shapes")
