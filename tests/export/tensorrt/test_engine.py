"""export/tensorrt.py and export/trt_shapes.py: what runs without TensorRT (profiles, names,
configs, metadata) and the clear error where TensorRT or a GPU is missing."""

from __future__ import annotations

import json

import pytest

from compress.core.errors import ConfigError, ExportError, InputError
from compress.core.registry import config_from_json
from compress.core.spec import TensorSpec
from export.tensorrt.available import tensorrt_missing_reason
from export.tensorrt.engine import TensorRTEngineConfig, build_engine, engine_file_name, read_engine_metadata
from export.tensorrt.shapes import parse_shapes

TEXT = (TensorSpec("input_ids", ("batch", "sequence"), "int64"), TensorSpec("attention_mask", ("batch", "sequence"), "int64"))
IMAGE = (TensorSpec("x", ("batch", 1, 8, 8)),)


def test_parse_shapes_gives_every_input_its_min_opt_max():
    profiles = parse_shapes("batch=1:8:32,seq=16:128:512", TEXT)
    assert profiles["input_ids"] == ((1, 16), (8, 128), (32, 512)) and profiles["attention_mask"] == profiles["input_ids"]


def test_parse_shapes_keeps_fixed_axes_and_defaults_the_axes_left_out():
    assert parse_shapes("batch=2:4:8", IMAGE)["x"] == ((2, 1, 8, 8), (4, 1, 8, 8), (8, 1, 8, 8))
    assert parse_shapes(None, TEXT)["input_ids"] == ((1, 1), (8, 128), (32, 512))


@pytest.mark.parametrize("text,match", [
    ("height=1:2:3", "unknown axis 'height'; the model's named axes are batch, sequence"),
    ("batch=8:4:32", "needs 1 <= MIN <= OPT <= MAX"),
    ("batch=1:8", "give three integers MIN:OPT:MAX"),
    ("batch", "expected NAME=MIN:OPT:MAX"),
    ("batch=0:1:2", "needs 1 <= MIN"),
])
def test_parse_shapes_refuses_bad_text_showing_the_valid_form(text, match):
    with pytest.raises(InputError, match=match):
        parse_shapes(text, TEXT)


def test_engine_file_name_carries_the_gpu_architecture_and_tensorrt_version():
    assert engine_file_name("model.int8", "9.0", "10.9.0.34") == "model.int8.sm90.trt10.9.plan"
    assert engine_file_name("model", "8.6", "11.0.1") == "model.sm86.trt11.0.plan"


def test_engine_config_validates_and_round_trips():
    with pytest.raises(ConfigError, match="optimization level 7 must be 0 to 5"):
        TensorRTEngineConfig(optimization_level=7)
    with pytest.raises(ConfigError, match="hardware compatibility 'all' is unknown"):
        TensorRTEngineConfig(hardware_compatibility="all")
    with pytest.raises(ConfigError, match="at least 1 MiB"):
        TensorRTEngineConfig(workspace_mib=0)
    cfg = TensorRTEngineConfig(shapes="batch=1:8:32", version_compatible=True, hardware_compatibility="ampere_plus")
    assert config_from_json(cfg.to_json()) == cfg


@pytest.mark.skipif(tensorrt_missing_reason() is None, reason="TensorRT and a GPU are present: the real build runs in tests/gpu")
def test_build_engine_says_what_is_missing(digits_onnx, tmp_path):
    with pytest.raises(ExportError, match="tensorrt is not installed|no CUDA GPU"):
        build_engine(digits_onnx, tmp_path, IMAGE, TensorRTEngineConfig())
    assert list(tmp_path.iterdir()) == []


def test_read_engine_metadata_checks_the_sidecar(tmp_path):
    plan = tmp_path / "m.sm90.trt10.9.plan"
    plan.write_bytes(b"x")
    with pytest.raises(InputError, match="m.sm90.trt10.9.plan.json is missing"):
        read_engine_metadata(plan)
    (tmp_path / "m.sm90.trt10.9.plan.json").write_text("{not json")
    with pytest.raises(InputError, match="is corrupt"):
        read_engine_metadata(plan)
    (tmp_path / "m.sm90.trt10.9.plan.json").write_text(json.dumps({"schema": "compress.engine/1", "compute_capability": "9.0"}))
    assert read_engine_metadata(plan)["compute_capability"] == "9.0"
