import numpy as np
import pytest

from bench.measure.retention import cosine_retention, headline, relative_error, retention, top1_agreement


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_cosine_retention_matches_numpy_mean_and_worst(rng):
    ref = rng.standard_normal((20, 16)).astype(np.float32)
    cand = ref + 0.3 * rng.standard_normal((20, 16)).astype(np.float32)
    r64, c64 = ref.astype(np.float64), cand.astype(np.float64)
    cos = (r64 * c64).sum(1) / (np.linalg.norm(r64, axis=1) * np.linalg.norm(c64, axis=1))
    result = cosine_retention(ref, cand)
    assert result["metric"] == "cosine" and result["samples"] == 20
    assert result["mean_cosine"] == pytest.approx(cos.mean(), abs=2e-6)
    assert result["worst_cosine"] == pytest.approx(cos.min(), abs=2e-6)
    assert result["worst_cosine"] < result["mean_cosine"] < 1.0


def test_cosine_retention_flattens_each_sample_and_is_one_for_scaled_copies(rng):
    ref = rng.standard_normal((5, 3, 4)).astype(np.float32)
    result = cosine_retention(ref, 2.5 * ref)
    assert result["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert result["worst_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert cosine_retention(ref, -ref)["worst_cosine"] == pytest.approx(-1.0, abs=1e-6)


def test_top1_agreement_matches_hand_computed_counts():
    ref = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]], np.float32)
    cand = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]], np.float32)
    # top-1: ref = [0, 1, 2, 0], cand = [0, 0, 2, 0] -> 3/4 agree
    labels = np.array([0, 1, 1, 0])
    result = top1_agreement(ref, cand, labels)
    assert result["top1_agreement"] == 0.75
    assert result["reference_accuracy"] == 0.75  # [0,1,2,0] vs [0,1,1,0]
    assert result["accuracy"] == 0.5             # [0,0,2,0] vs [0,1,1,0]
    assert result["accuracy_drop"] == 0.25
    assert result["samples"] == 4


def test_top1_agreement_matches_numpy_on_random_logits(rng):
    ref = rng.standard_normal((200, 10))
    cand = ref + 0.5 * rng.standard_normal((200, 10))
    labels = rng.integers(0, 10, 200)
    result = top1_agreement(ref, cand, labels)
    assert result["top1_agreement"] == pytest.approx((ref.argmax(1) == cand.argmax(1)).mean(), abs=1e-6)
    assert result["accuracy"] == pytest.approx((cand.argmax(1) == labels).mean(), abs=1e-6)
    assert result["reference_accuracy"] == pytest.approx((ref.argmax(1) == labels).mean(), abs=1e-6)


def test_top1_agreement_has_no_accuracy_without_labels(rng):
    ref = rng.standard_normal((4, 3))
    assert "accuracy" not in top1_agreement(ref, ref)
    assert top1_agreement(ref, ref)["top1_agreement"] == 1.0


def test_top1_agreement_raises_value_error_when_label_count_differs(rng):
    ref = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="3 labels for 4 samples"):
        top1_agreement(ref, ref, np.array([0, 1, 2]))


def test_relative_error_matches_numpy_mean_and_worst(rng):
    ref = rng.standard_normal((12, 2, 5))
    cand = ref + 0.01 * rng.standard_normal((12, 2, 5))
    r, c = ref.astype(np.float32).astype(np.float64).reshape(12, -1), cand.astype(np.float32).astype(np.float64).reshape(12, -1)
    err = np.linalg.norm(c - r, axis=1) / np.linalg.norm(r, axis=1)
    result = relative_error(ref, cand)
    assert result["metric"] == "relative_error"
    assert result["mean_relative_error"] == pytest.approx(err.mean(), abs=2e-6)
    assert result["worst_relative_error"] == pytest.approx(err.max(), abs=2e-6)
    assert relative_error(ref, ref)["worst_relative_error"] == 0.0


@pytest.mark.parametrize("task, metric", [("embedding", "cosine"), ("classification", "top1_agreement"), ("generic", "relative_error")])
def test_retention_picks_the_metric_of_the_task(rng, task, metric):
    ref = rng.standard_normal((6, 4))
    assert retention(task, ref, ref + 0.01)["metric"] == metric


def test_retention_raises_value_error_when_shapes_differ(rng):
    with pytest.raises(ValueError, match="differ in shape"):
        retention("embedding", rng.standard_normal((4, 8)), rng.standard_normal((4, 7)))
    with pytest.raises(ValueError, match="differ in shape"):
        retention("classification", rng.standard_normal((4, 8)), rng.standard_normal((5, 8)))


def test_headline_summarises_each_metric():
    assert headline({"metric": "cosine", "mean_cosine": 0.99512, "worst_cosine": 0.98}) == "cos 0.9951 (worst 0.9800)"
    assert headline({"metric": "top1_agreement", "top1_agreement": 0.975, "accuracy": 0.9}) == "top-1 agree 97.5%, acc 90.0%"
    assert headline({"metric": "relative_error", "mean_relative_error": 1e-3, "worst_relative_error": 2e-3}) == "rel err 1.00e-03 (worst 2.00e-03)"
