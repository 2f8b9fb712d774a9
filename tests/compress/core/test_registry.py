import json

import pytest

from compress.core.errors import ConfigError, InputError
from compress.core.registry import StepConfig, config_from_json, register_config
from export.int8.ort_quantize import OnnxInt8Config
from export.onnx.export import OnnxExportConfig


@pytest.mark.parametrize("config", [
    OnnxExportConfig(),
    OnnxExportConfig(opset=20, dynamic=False, atol=1e-3, rtol=0.0),
    OnnxInt8Config(),
    OnnxInt8Config(mode="static", per_channel=False, graph_optimization="off", calibration_samples=7),
])
def test_config_from_json_returns_equal_config_when_round_tripped_through_json_text(config):
    payload = json.loads(json.dumps(config.to_json()))
    rebuilt = config_from_json(payload)
    assert type(rebuilt) is type(config)
    assert rebuilt == config


def test_config_to_json_names_type_version_kind_and_every_field():
    payload = OnnxInt8Config(mode="dynamic").to_json()
    assert payload == {"type": "OnnxInt8Config", "version": 1, "kind": "ONNX INT8", "data": {
        "mode": "dynamic", "per_channel": True, "graph_optimization": "auto", "calibration_samples": 256}}


def test_config_error_is_both_input_error_and_value_error():
    assert issubclass(ConfigError, InputError)
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("make", [
    lambda: OnnxExportConfig(opset=16),
    lambda: OnnxExportConfig(atol=-1.0),
    lambda: OnnxExportConfig(rtol=-0.1),
    lambda: OnnxInt8Config(mode="fp8"),
    lambda: OnnxInt8Config(graph_optimization="maybe"),
    lambda: OnnxInt8Config(calibration_samples=0),
])
def test_step_config_raises_config_error_when_value_invalid(make):
    with pytest.raises(ConfigError):
        make()
    with pytest.raises(ValueError):  # callers that only know ValueError catch it too
        make()


def test_config_from_json_raises_input_error_when_data_invalid():
    payload = OnnxInt8Config().to_json()
    payload["data"]["mode"] = "fp8"
    with pytest.raises(InputError, match="fp8"):
        config_from_json(payload)


def test_config_from_json_raises_input_error_when_field_unknown():
    payload = OnnxExportConfig().to_json()
    payload["data"]["bogus"] = 1
    with pytest.raises(InputError, match="OnnxExportConfig"):
        config_from_json(payload)


def test_config_from_json_raises_input_error_when_type_unknown():
    with pytest.raises(InputError, match="NoSuchStep"):
        config_from_json({"type": "NoSuchStep", "version": 1, "data": {}})


def test_config_from_json_refuses_newer_version():
    payload = OnnxExportConfig().to_json()
    payload["version"] = 2
    with pytest.raises(InputError, match="version 2"):
        config_from_json(payload)


def test_register_config_raises_type_error_when_two_classes_share_a_name():
    class OnnxExportConfig(StepConfig):  # noqa: F811 - same name as the real one on purpose
        pass

    with pytest.raises(TypeError, match="OnnxExportConfig"):
        register_config(OnnxExportConfig)


def test_config_is_frozen():
    config = OnnxExportConfig()
    with pytest.raises(AttributeError):
        config.opset = 19  # type: ignore[misc]
