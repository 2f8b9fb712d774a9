import json
import shutil

import numpy as np
import pytest

from compress.core.errors import InputError
from compress.core.spec import TensorSpec
from compress.load.data import tokenize
from compress.load.hf_dir import SentenceEmbedder, is_hf_dir
from compress.load.loaders import detect_format, load_model

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Quantization makes models smaller and faster on a CPU."]


def test_load_model_reads_minilm_dir_as_embedding_with_dynamic_text_inputs(minilm_model, minilm_path):
    assert detect_format(minilm_path) == "hf"
    assert minilm_model.format == "hf"
    assert minilm_model.task == "embedding"
    assert minilm_model.inputs == tuple(TensorSpec(n, ("batch", "sequence"), "int64")
                                        for n in ("input_ids", "token_type_ids", "attention_mask"))
    assert minilm_model.output_names == ("sentence_embedding",)
    assert isinstance(minilm_model.module, SentenceEmbedder)
    assert minilm_model.tokenizer is not None


def test_minilm_embedding_equals_sentence_transformers_encode(minilm_model, minilm_path):
    # sentence-transformers is the independent reference; it is not among the package's dependencies.
    SentenceTransformer = pytest.importorskip(
        "sentence_transformers", reason="the reference check needs sentence-transformers (add it to the dev extra)"
    ).SentenceTransformer
    expected = SentenceTransformer(str(minilm_path), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    got = minilm_model.forward_numpy(tokenize(minilm_model, SENTENCES, seq_len=64))[0]
    assert got.shape == expected.shape == (2, 384)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # the directory normalizes


def test_minilm_embedding_does_not_depend_on_padding_length(minilm_model):
    short = minilm_model.forward_numpy(tokenize(minilm_model, SENTENCES, seq_len=32))[0]
    long = minilm_model.forward_numpy(tokenize(minilm_model, SENTENCES, seq_len=96))[0]
    np.testing.assert_allclose(short, long, atol=1e-5)


def test_is_hf_dir_needs_config_json(tmp_path, minilm_path):
    assert is_hf_dir(minilm_path)
    assert not is_hf_dir(tmp_path)


def test_load_model_raises_input_error_when_hf_dir_has_no_weights(tmp_path, minilm_path):
    d = tmp_path / "noweights"
    d.mkdir()
    shutil.copy(minilm_path / "config.json", d / "config.json")
    with pytest.raises(InputError, match="no weights"):
        load_model(d)


def test_load_model_raises_input_error_when_pooling_unsupported(tmp_path, minilm_path):
    d = tmp_path / "twopool"
    d.mkdir()
    for entry in minilm_path.iterdir():
        if entry.name != "1_Pooling":
            (d / entry.name).symlink_to(entry)
    (d / "1_Pooling").mkdir()
    cfg = json.loads((minilm_path / "1_Pooling" / "config.json").read_text())
    cfg["pooling_mode_cls_token"] = True  # mean and cls at once
    (d / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="pooling"):
        load_model(d)
