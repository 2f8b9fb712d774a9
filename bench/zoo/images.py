"""Natural photographs for the ImageNet CNN: the colour photos that ship inside scikit-image and matplotlib.

There is no ImageNet validation set on the package registries, so the CNN is scored by top-1
agreement with its own FP32 answers on random crops (scale, position, flip) of real photos.
Calibration and evaluation crops come from different photos, so no evaluation pixel was seen
while calibrating.

Most crops of these few photos show no ImageNet class clearly: the FP32 model's median top-1
probability on them is about 0.3, where input noise of 0.005 alone flips 6% of its answers, so
agreement would measure the data's ambiguity more than the quantization. Evaluation crops are
therefore kept only where the FP32 model is confident (``confident_crops``), as it is on most of
an ImageNet validation set; calibration crops are not filtered.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

CALIBRATION_PHOTOS = ("skimage:astronaut.png", "skimage:coffee.png", "skimage:motorcycle_right.png", "skimage:ihc.png",
                      "skimage:hubble_deep_field.jpg")
EVALUATION_PHOTOS = ("skimage:chelsea.png", "skimage:rocket.jpg", "skimage:motorcycle_left.png", "skimage:retina.jpg",
                     "matplotlib:grace_hopper.jpg", "matplotlib:Minduka_Present_Blue_Pack.png", "skimage:brick.png",
                     "skimage:camera.png", "skimage:coins.png", "skimage:page.png")


def photo_path(spec: str) -> Path:
    package, name = spec.split(":")
    if package == "skimage":
        return Path(str(resources.files("skimage") / "data" / name))
    return Path(str(resources.files("matplotlib") / "mpl-data" / "sample_data" / name))


def random_crops(photos: tuple[str, ...], count: int, seed: int, size: int = 224) -> np.ndarray:
    """``count`` crops (N, 3, size, size), ImageNet-normalized, spread evenly over ``photos``."""
    rng = np.random.default_rng(seed)
    images = [Image.open(photo_path(p)).convert("RGB") for p in photos]
    out = np.empty((count, 3, size, size), np.float32)
    for i in range(count):
        image = images[i % len(images)]
        side = int(min(image.size) * rng.uniform(0.35, 1.0))
        left, top = rng.integers(0, image.width - side + 1), rng.integers(0, image.height - side + 1)
        crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = (np.asarray(crop, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        out[i] = pixels.transpose(2, 0, 1)
    return out


def confident_crops(photos: tuple[str, ...], count: int, seed: int, classify, min_probability: float = 0.5,
                    max_tries: int = 20) -> np.ndarray:
    """``count`` crops on which ``classify`` (a batch -> class probabilities, the FP32 model) gives
    its top class at least ``min_probability``; fewer if ``max_tries`` rounds do not find enough."""
    kept: list[np.ndarray] = []
    for round_ in range(max_tries):
        crops = random_crops(photos, 4 * count, seed * 1000 + round_)
        probabilities = classify(crops)
        kept.extend(crops[probabilities.max(axis=1) >= min_probability])
        if len(kept) >= count:
            break
    return np.stack(kept[:count]) if kept else np.empty((0, *random_crops(photos, 1, seed).shape[1:]), np.float32)
