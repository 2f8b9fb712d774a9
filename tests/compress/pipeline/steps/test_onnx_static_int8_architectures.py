"""Other transformer families, built from a transformers config with random weights, go through the
same static-INT8 path (SmoothQuant, calibration, CPU and TensorRT files) with no special case."""

import onnx
import pytest

from compress.core.spec import parse_input_spec
from compress.load.loaders import load_model
from compress.pipeline.options import RunOptions
from compress.pipeline.run import run
from compress.pipeline.static_int8.config import Int8StaticConfig
from export.int8.qdq_files import calibration_tensors, node_groups
from export.onnx.export import OnnxExportConfig
from export.tensorrt.qdq_check import check_tensorrt_qdq


def _distilbert(path):
    from transformers import DistilBertConfig, DistilBertModel

    DistilBertModel(DistilBertConfig(vocab_size=500, dim=64, hidden_dim=128, n_layers=2, n_heads=4, max_position_embeddings=64)).save_pretrained(path)


def _gpt2(path):
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(vocab_size=500, n_embd=64, n_layer=2, n_head=4, n_positions=64)).save_pretrained(path)


@pytest.mark.parametrize("build", [_distilbert, _gpt2], ids=["distilbert", "gpt2"])
def test_transformer_from_config_goes_through_static_int8_for_cpu_and_tensorrt(build, tmp_path):
    import torch

    torch.manual_seed(0)
    src = tmp_path / "model"
    build(src)
    specs = (parse_input_spec("input_ids:1x32:int64"),)  # random 0/1 masks would mask whole rows, where eager and SDPA attention legitimately differ
    model = load_model(src, specs)
    options = RunOptions(out_dir=tmp_path / "out", batch_sizes=(2,), seq_len=32, threads=1, min_seconds=0.05, eval_samples=16)
    result = run(model, [OnnxExportConfig(), Int8StaticConfig(target="tensorrt", calibration_samples=32)], options)
    int8 = result.report["int8"]
    assert int8["quantized_layers"] >= 4 and int8["smoothquant"]["groups"], int8
    # no Conv: no Conv-output variant, nothing scored to choose, no extra tensor calibrated
    assert set(int8["variant_trial_p50_ms"]) == {"plain", "plain, without SkipLayerNorm fusion"} and "variant_validation_drop" not in int8
    graph = onnx.load(str(tmp_path / "out" / "model.onnx"))
    groups = node_groups(graph)
    assert calibration_tensors(graph, groups) == sorted({g.activation for g in groups})
    assert check_tensorrt_qdq(onnx.load(str(tmp_path / "out" / "model.int8.qdq.onnx"))) == []
    rows = {r["name"]: r for r in result.report["results"]}
    assert rows["onnx-int8"]["retention"]["mean_relative_error"] < 0.1
    assert rows["onnx-int8-qdq"]["retention"]["mean_relative_error"] < 0.1
