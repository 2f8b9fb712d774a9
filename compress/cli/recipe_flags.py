"""``compress MODEL`` flags → the recipe: model passes, export, INT8, engine, in the order they run."""

from __future__ import annotations

from compress.cli.model_pass_flags import model_pass_steps
from compress.cli.parse import parse_alpha, parse_duration, parse_fraction
from compress.core.errors import InputError
from compress.core.model import Model
from compress.core.registry import StepConfig

# The flags that say which steps run (and so cannot be combined with --recipe, which says it instead).
RECIPE_FLAGS = ("int8", "int8_mode", "int8_backend", "target", "shapes", "calib_method", "percentile", "smoothquant",
                "keep_float", "max_drop", "search_budget", "prune", "distill_budget", "distill_steps", "distill_batch",
                "learning_rate", "seed", "prune_search", "attention_weight")


def recipe_from_flags(common: dict, model: Model, static_shapes: bool) -> list[StepConfig]:
    from export.onnx.export import OnnxExportConfig

    recipe = [*model_pass_steps(common), OnnxExportConfig(dynamic=not static_shapes)]
    if common["target"] == "aoti" and (not common["int8"] or common["int8_backend"] != "torch"):
        raise InputError("--target aoti compiles the PyTorch INT8 program with AOTInductor; use it with --int8 --backend torch")
    if common["int8"]:
        recipe.append(int8_step(common, has_torch=not model.is_onnx, text_model=model.tokenizer is not None or model.hf_model is not None))
    if common["int8"] and common["target"] == "tensorrt" and common["int8_backend"] != "torch":
        from export.tensorrt.engine import TensorRTEngineConfig
        from export.tensorrt.shapes import parse_shapes

        parse_shapes(common["shapes"], model.inputs)  # a bad profile fails now, not after calibration
        recipe.append(TensorRTEngineConfig(shapes=common["shapes"]))
    elif common["shapes"]:
        raise InputError("--shapes sets the TensorRT engine's optimization profile; it needs --int8 --target tensorrt")
    if common["target"] == "aoti":
        from export.aoti.config import AotiPackageConfig

        recipe.append(AotiPackageConfig(device="cpu"))
        if _cuda_visible():  # a GPU server gets the package its GPU runs too
            recipe.append(AotiPackageConfig(device="cuda"))
    return recipe


def int8_step(common: dict, has_torch: bool = True, text_model: bool = False) -> StepConfig:
    """The INT8 config the flags ask for: dynamic (the default for transformers), static, or a search."""
    from compress.pipeline.static_int8.config import Int8SearchConfig, Int8StaticConfig
    from export.int8.ort_quantize import OnnxInt8Config

    if common["int8_backend"] == "torch":
        return _int8_kernels_step(common, has_torch)
    alpha = parse_alpha(common["smoothquant"]) if has_torch or common["smoothquant"] is not None else None  # ONNX input: no PyTorch to smooth
    if common["max_drop"] is not None:
        alphas = (alpha,) if common["smoothquant"] is not None and alpha is not None else (0.5, 0.75, 0.85) if has_torch else ()
        return Int8SearchConfig(max_drop=parse_fraction(common["max_drop"]), budget_seconds=parse_duration(common["search_budget"]),
                                target=common["target"], alphas=alphas)
    # Calibration data given to a text model in auto mode means static INT8 with SmoothQuant: on MiniLM it kept cosine
    # 0.9974 (worst 0.9947) against dynamic's 0.9927 (0.9850), at 5-9% more latency (AVX-512 VNNI, issue 15 note).
    # ONNX Runtime's plain static INT8 (what OnnxInt8Config would do) scored cosine 0.34 there.
    static = (common["int8_mode"] == "static" or common["target"] != "cpu" or common["calib_method"] is not None
              or common["smoothquant"] is not None or common["keep_float"]
              or (common["int8_mode"] == "auto" and common["calib"] is not None and text_model))
    if not static:
        return OnnxInt8Config(mode=common["int8_mode"])
    return Int8StaticConfig(method=common["calib_method"] or "minmax", percentile=common["percentile"], smoothquant_alpha=alpha,
                            keep_float_count=common["keep_float"], target=common["target"])


def _int8_kernels_step(common: dict, has_torch: bool) -> StepConfig:
    """--backend torch: dynamic INT8 with compress's kernels; the ONNX-only options do not apply."""
    from compress.passes.int8_kernels import Int8DynamicConfig

    if not has_torch:
        raise InputError("--backend torch quantizes a PyTorch model; this input is ONNX. Drop --backend torch, or give the HF dir / .pt2 / .pt")
    onnx_only = {"--target tensorrt": common["target"] == "tensorrt", "--int8-mode static": common["int8_mode"] == "static",
                 "--calib-method": common["calib_method"] is not None, "--smoothquant": common["smoothquant"] is not None,
                 "--keep-float": bool(common["keep_float"]), "--max-drop": common["max_drop"] is not None}
    given = [flag for flag, on in onnx_only.items() if on]
    if given:
        raise InputError(f"{', '.join(given)} configure{'s' if len(given) == 1 else ''} ONNX INT8 and cannot be used with "
                         "--backend torch (dynamic per-token INT8); drop one or the other")
    return Int8DynamicConfig(backend="kernels")


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()
