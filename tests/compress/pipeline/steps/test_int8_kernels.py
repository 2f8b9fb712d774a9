"""compress MODEL --int8 --backend torch: MiniLM quantized with the kernels, saved as a .pt2,
loaded back and measured; then the benchmark suite runs that file on torch-kernels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compress.load.loaders import load_model
from compress.ops import kernels
from compress.passes.int8_kernels import Int8DynamicConfig
from export.onnx.export import OnnxExportConfig


@pytest.fixture(scope="module")
def torch_int8_run(tmp_path_factory, minilm_model):
    from compress.pipeline.options import RunOptions
    from compress.pipeline.run import run

    out = tmp_path_factory.mktemp("torch_int8") / "out"
    options = RunOptions(out_dir=out, batch_sizes=(1, 4), min_seconds=0.05, eval_samples=32, threads=1, seq_len=64)
    return run(minilm_model, [OnnxExportConfig(), Int8DynamicConfig(backend="kernels")], options)


def test_run_writes_a_pt2_that_loads_with_the_kernels_and_keeps_the_embeddings(torch_int8_run):
    out = torch_int8_run.out_dir
    rows = {r["name"]: r for r in torch_int8_run.report["results"]}
    row = rows["pytorch-int8-kernels"]
    assert row["file"] == "model.int8.pt2" and row["backend"] == "torch-kernels" and row["precision"] == "int8"
    assert row["retention"]["mean_cosine"] > 0.99 and row["retention"]["worst_cosine"] > 0.98
    assert row["size_bytes"] < 0.7 * rows["pytorch-fp32"]["size_bytes"]
    section = torch_int8_run.report["int8"]
    assert section["quantized_layers"] == 37 and len(section["fused_gelu"]) == 6
    assert section["export"]["max_abs_error"] <= 1e-4 and section["kernels"]["backend"] in ("extension", "reference")
    manifest = json.loads((out / "manifest.json").read_text())
    assert "model.int8.pt2" in manifest["files"] and "model.int8.onnx" not in manifest["files"]
    assert manifest["recipe"][-1]["type"] == "Int8DynamicConfig"


def test_the_saved_program_calls_the_ops_and_answers_at_new_shapes(torch_int8_run, minilm_model):
    loaded = load_model(torch_int8_run.out_dir / "model.int8.pt2")
    assert loaded.input_names == minilm_model.input_names
    targets = {str(n.target) for n in loaded.module.graph.nodes if n.op == "call_function"}
    # the CPU kernels read weights packed once, at quantization; the reference ops take them unpacked
    packed = kernels.status().backend == "extension"
    assert ("compress.int8_linear_packed.default" if packed else "compress.int8_linear.default") in targets
    ids = np.random.default_rng(0).integers(1000, 2000, size=(3, 21))
    batch = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
    got, want = loaded.forward_numpy(batch)[0], minilm_model.forward_numpy(batch)[0]
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert got.shape == want.shape == (3, 384) and cos.min() > 0.98


def test_the_suite_measures_the_pt2_on_torch_kernels_only(torch_int8_run):
    from bench.backends.registry import parse_backends
    from bench.suite.runner import SuiteOptions, run_suite
    from compress.ops import kernels as ops

    if ops.status().backend != "extension":
        pytest.skip(f"the compiled kernels are not loaded: {ops.status().reason}")
    chosen, explicit = parse_backends("torch-cpu-fp32,kernels")
    result = run_suite([torch_int8_run.out_dir], SuiteOptions(backends=chosen, explicit_backends=explicit, batch_sizes=(1,),
                                                             min_seconds=0.05, threads=1, samples=32, peers=False))
    rows = {(r["artifact"], r["backend"]): r for r in result.data["jobs"][0]["results"]}
    assert ("model.int8.pt2", "torch-kernels") in rows and ("model.int8.pt2", "torch-cpu-fp32") not in rows
    kernel_row = rows[("model.int8.pt2", "torch-kernels")]
    assert kernel_row["retention"]["mean_cosine"] > 0.99 and kernel_row["latency"]["1"]["p50_ms"] > 0
    assert result.failures == []


@pytest.mark.parametrize("flags,match", [
    (["--target", "tensorrt"], "--target tensorrt configures ONNX INT8"),
    (["--max-drop", "1%", "--smoothquant", "0.5"], "--smoothquant, --max-drop configure ONNX INT8"),
])
def test_cli_refuses_onnx_only_flags_with_backend_torch(minilm_path, tmp_path, flags, match):
    from click.testing import CliRunner

    from compress.cli.main import main

    result = CliRunner().invoke(main, [str(minilm_path), "--backend", "torch", "--out", str(tmp_path / "o"), *flags])
    assert result.exit_code == 1 and match in result.stderr and not (tmp_path / "o").exists()


def test_cli_refuses_backend_torch_for_an_onnx_input(digits_onnx, tmp_path):
    from click.testing import CliRunner

    from compress.cli.main import main

    result = CliRunner().invoke(main, [str(digits_onnx), "--backend", "torch", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "--backend torch quantizes a PyTorch model; this input is ONNX" in result.stderr
    assert torch.cuda.is_available() or not (tmp_path / "o").exists()
