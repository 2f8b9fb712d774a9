"""``quantize_``: the one-call API writes the INT8 files and a manifest, and smooths the model in place."""

import json

import numpy as np
import pytest

from compress.core.errors import ConfigError
from compress.core.forward_loop import forward_loop_over
from compress.core.model import clone_model
from compress.load.data import builtin_text
from compress.pipeline.quantize_api import quantize_
from compress.pipeline.static_int8.config import Int8StaticConfig


def test_quantize_writes_cpu_and_tensorrt_files_and_keeps_float_answers(minilm_model, tmp_path):
    model = clone_model(minilm_model)
    calib = builtin_text(model, "calibration", 16, 8, 32).batches
    probe = builtin_text(model, "evaluation", 4, 4, 32).batches[0]
    before = model.forward_numpy(probe)[0]
    config = Int8StaticConfig(target="tensorrt", calibration_samples=16)
    out = quantize_(model, config, forward_loop_over(calib), tmp_path / "q", threads=1)
    files = json.loads((tmp_path / "q" / "manifest.json").read_text())["files"]
    assert {"model.onnx", "model.int8.onnx", "model.int8.qdq.onnx"} <= set(files)
    assert out["manifest"]["recipe"][0] == config.to_json()
    np.testing.assert_allclose(model.forward_numpy(probe)[0], before, atol=2e-5)  # smoothing keeps the answers


def test_int8_static_config_round_trips_and_rejects_bad_values():
    from compress.core.registry import config_from_json

    config = Int8StaticConfig(method="percentile", percentile=99.9, keep_float=("a.b",), target="tensorrt")
    assert config_from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="unknown"):
        Int8StaticConfig(method="median")
    with pytest.raises(ConfigError, match="percentile"):
        Int8StaticConfig(percentile=40)
    with pytest.raises(ConfigError, match="target"):
        Int8StaticConfig(target="gpu")
