"""A recipe that cannot run as written is refused before any work, in one line naming the step."""

from __future__ import annotations

from typing import ClassVar

import pytest

from compress.core.errors import ConfigError
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.load.loaders import load_model
from compress.passes.distill import DistillConfig
from compress.passes.int8_kernels import Int8DynamicConfig
from compress.passes.prune_heads import HeadPruneConfig
from compress.passes.prune_unstructured import MagnitudePruneConfig
from compress.passes.smoothquant import SmoothQuantConfig
from compress.pipeline.plan import plan_recipe
from compress.pipeline.static_int8.config import Int8SearchConfig, Int8StaticConfig
from export.int8.ort_quantize import OnnxInt8Config
from export.onnx.export import OnnxExportConfig
from export.tensorrt.engine import TensorRTEngineConfig


@register_config
class UnhandledConfig(StepConfig):
    """A registered step that nothing in the pipeline runs."""

    kind: ClassVar[StepKind] = MODEL_PASS


@pytest.fixture(scope="module")
def torch_model(digits_files, digits_spec):
    return load_model(digits_files["torchscript"], digits_spec)


@pytest.fixture(scope="module")
def onnx_model(digits_onnx):
    return load_model(digits_onnx)


def test_plan_accepts_every_kind_in_order_and_marks_the_end_of_the_model_passes(torch_model):
    recipe = [HeadPruneConfig(heads=0.25), MagnitudePruneConfig(sparsity=0.5), DistillConfig(max_steps=1), OnnxExportConfig(),
              Int8StaticConfig(target="tensorrt"), TensorRTEngineConfig(), Int8DynamicConfig()]
    planned = plan_recipe(recipe, torch_model)
    assert [p.config for p in planned] == recipe
    assert [p.ends_model_passes for p in planned] == [False, False, True, False, False, False, False]
    assert [p.label for p in planned][:2] == ["step 1 (HeadPruneConfig)", "step 2 (MagnitudePruneConfig)"]


@pytest.mark.parametrize("recipe, fragments", [
    ([OnnxInt8Config()], ["step 1 (OnnxInt8Config, ONNX INT8)", "needs an FP32 ONNX file", "no earlier step makes one"]),
    ([OnnxExportConfig(), HeadPruneConfig(heads=0.25)], ["step 2 (HeadPruneConfig)", "after step 1 (OnnxExportConfig) already used it"]),
    ([OnnxExportConfig(), OnnxInt8Config(), Int8StaticConfig()], ["steps 2 (OnnxInt8Config) and 3 (Int8StaticConfig)", "model.int8.onnx"]),
    ([OnnxExportConfig(), OnnxExportConfig(opset=19)], ["both write model.onnx"]),
    ([OnnxExportConfig(), OnnxInt8Config(), TensorRTEngineConfig()], ["step 3 (TensorRTEngineConfig, engine build)", "TensorRT QDQ file", "target='tensorrt'"]),
    ([OnnxExportConfig(), Int8SearchConfig(), TensorRTEngineConfig()], ["step 3 (TensorRTEngineConfig, engine build)", "TensorRT QDQ file"]),
    ([Int8DynamicConfig(), SmoothQuantConfig()], ["step 2 (SmoothQuantConfig)", "after step 1 (Int8DynamicConfig)"]),
    ([Int8DynamicConfig(), Int8DynamicConfig()], ["both write model.int8.pt2"]),
    ([UnhandledConfig()], ["step 1 (UnhandledConfig) has no handler"]),
    (["OnnxExportConfig"], ["step 1 is a str, not a step config"]),
    ([], ["the recipe is empty"]),
])
def test_plan_refuses_a_recipe_it_cannot_run_naming_the_step(torch_model, recipe, fragments):
    with pytest.raises(ConfigError) as caught:
        plan_recipe(recipe, torch_model)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("step", [HeadPruneConfig(heads=0.25), SmoothQuantConfig(), Int8DynamicConfig()])
def test_plan_refuses_pytorch_steps_on_an_onnx_input(onnx_model, step):
    with pytest.raises(ConfigError, match="needs the PyTorch model; the input is an ONNX file"):
        plan_recipe([step, OnnxExportConfig()] if step.kind is MODEL_PASS else [OnnxExportConfig(), step], onnx_model)


def test_plan_accepts_an_onnx_input_through_export_and_int8(onnx_model):
    assert len(plan_recipe([OnnxExportConfig(), OnnxInt8Config()], onnx_model)) == 2
