"""ONNX inputs written by other exporters are normalized once, and compute what they computed."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export.onnx.normalize import MIN_OPSET, normalize_onnx
from export.onnx.session import make_session, run_session
from tests.export.onnx.other_exporters import legacy_export, weights_as_constant_nodes, weights_as_graph_inputs


@pytest.fixture(scope="module")
def legacy_digits(tmp_path_factory, digits_cnn):
    d = tmp_path_factory.mktemp("legacy")
    plain = legacy_export(digits_cnn.eval(), torch.zeros(2, 1, 8, 8), d / "digits12.onnx")
    return {"plain": plain, "constants": weights_as_constant_nodes(plain, d / "constants.onnx"),
            "inputs": weights_as_graph_inputs(plain, d / "inputs.onnx")}


def _outputs(path, x):
    return run_session(make_session(path, 1, spin=False), {"x": x})[0]


def test_constant_weights_become_initializers_at_a_newer_opset_with_the_same_outputs(legacy_digits, digits_data, tmp_path):
    out = tmp_path / "n.onnx"
    result = normalize_onnx(legacy_digits["constants"], out)
    model = onnx.load(str(out))
    assert result.constants_to_initializers == 6 and result.opset_before == 12 and result.opset_after == MIN_OPSET
    assert not [n for n in model.graph.node if n.op_type == "Constant"] and len(model.graph.initializer) == 6
    x = digits_data["x_test"][:16]
    np.testing.assert_allclose(_outputs(out, x), _outputs(legacy_digits["constants"], x), rtol=1e-5, atol=1e-5)


def test_weights_listed_as_inputs_are_dropped_from_the_inputs(legacy_digits, tmp_path):
    out = tmp_path / "n.onnx"
    result = normalize_onnx(legacy_digits["inputs"], out)
    assert result.initializers_dropped_from_inputs == 6
    assert [i.name for i in onnx.load(str(out)).graph.input] == ["x"]


def test_a_torch_export_at_a_current_opset_is_left_as_it_is(digits_onnx, tmp_path):
    result = normalize_onnx(digits_onnx, tmp_path / "n.onnx")
    assert not result.changed and result.notes == []


@pytest.mark.parametrize("variant", ["constants", "inputs"])
def test_the_int8_search_quantizes_a_graph_from_another_exporter(legacy_digits, digits_files, tmp_path, variant):
    """Issue 16: on Constant-node weights the search stopped at once with "nothing to quantize"."""
    import json

    from tests.compress.cli.test_compress_command import FAST, invoke

    out = tmp_path / "out"
    result = invoke([legacy_digits[variant], "--max-drop", "1%", "--search-budget", "60s", "--calib", digits_files["calib"],
                     "--eval", digits_files["eval"], "--out", out, *FAST])
    assert result.exit_code in (0, 3), result.output
    report = json.loads((out / "report.json").read_text())
    assert report["export"]["normalized"]["opset"] == [12, MIN_OPSET] and report["export"]["normalized"]["max_rel_error"] < 1e-5
    quantized = onnx.load(str(out / "model.int8.onnx"))
    assert sum(t.data_type == onnx.TensorProto.INT8 for t in quantized.graph.initializer) >= 2  # the weights are integer now
    rows = {r["name"]: r for r in report["results"]}
    assert rows["onnx-int8"]["retention"]["accuracy"] >= rows["onnx-fp32"]["retention"]["accuracy"] - 0.02
