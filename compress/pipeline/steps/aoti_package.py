"""``AotiPackageConfig`` (``--int8 --backend torch --target aoti``): compile the INT8 program into an
AOTInductor package for this machine's CPU, and for its GPU where there is one, check each against
the program it was compiled from, and measure it like every other artifact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from compress.core.errors import InputError
from compress.core.model import clone_model
from compress.core.registry import config_from_json, register_handler
from compress.load.loaders import load_model
from compress.passes.int8_kernels import Int8DynamicConfig, quantize_linear_layers_
from compress.pipeline.measure import measure_aoti
from compress.pipeline.state import RunState
from export.aoti.config import AotiPackageConfig
from export.aoti.package import (
    AotiModule,
    build_aoti_package,
    compile_aoti_package,
    describe_inputs,
    load_aoti_package,
)
from export.onnx.parity import parity_inputs
from export.pt2.program import trace_program


@register_handler(AotiPackageConfig)
def aoti_package_step(config: AotiPackageConfig, state: RunState) -> None:
    program_path = state.files["pt2-int8"]
    program = load_model(program_path, None, task=state.model.task)
    describes = describe_inputs(program)
    with state.progress.step(f"Compiling the INT8 program with AOTInductor for {config.device} (minutes on a small CPU)"):
        if config.device == "cpu":
            examples = [program.torch_args(arrays) for arrays in parity_inputs(state.model)]
            meta = build_aoti_package(program_path, state.stage, "cpu", examples, describes=describes)
        else:
            meta = _cuda_package(state, Path(program_path).name.removesuffix(".pt2"), describes)
    package = state.stage / meta["file"]
    compiled = dataclasses.replace(program, module=AotiModule(load_aoti_package(package)))
    with torch.inference_mode():
        measure_aoti(state, "pytorch-int8-aoti" + ("" if config.device == "cpu" else "-cuda"), compiled, config.device, package)
    state.report.setdefault("aoti", {})[config.device] = meta
    state.files[f"aoti-{config.device}"] = package
    state.progress.say(f"  {meta['file']}: max difference from the program {meta['max_abs_error']:.2e} "
                       f"(lowest row cosine {meta['min_cosine']:.5f}) over {meta['shapes_checked']} shapes")


def _cuda_package(state: RunState, stem: str, describes: dict) -> dict:
    if not torch.cuda.is_available():
        raise InputError("AotiPackageConfig(device='cuda') needs a CUDA device; none is visible to torch (drop the step, "
                         "or run the recipe on the GPU machine the package is for)")
    return requantized_package(state, stem, describes, "cuda")


def requantized_package(state: RunState, stem: str, describes: dict, device: str) -> dict:
    """The model quantized again on ``device`` with the same INT8 config as the program (on CUDA the
    weights stay unpacked for the CUDA kernels), traced there and compiled for it. The CUDA route;
    on the CPU the tests run the same code."""
    config = config_from_json(state.report["int8"]["config"]) if "int8" in state.report else Int8DynamicConfig()
    quantized = clone_model(state.model)
    quantized.module.to(device)
    quantize_linear_layers_(quantized.module, config)
    arrays = parity_inputs(state.model)
    program = trace_program(quantized, quantized.module.eval(), arrays[0], device=device)
    examples = [quantized.torch_args(a) for a in arrays]
    where = torch.cuda.get_device_name() if device == "cuda" else "the CPU"
    return compile_aoti_package(program, stem, f"{stem}.pt2 (quantized again on {where})", state.stage, device, examples,
                                describes=describes)
