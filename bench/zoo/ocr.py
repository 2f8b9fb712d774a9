"""PP-OCRv4 from the `rapidocr-onnxruntime` package (Apache-2.0): its text recogniser and its text detector, as ONNX.

Both files are opset 12 with their weights in Constant nodes, written by paddle2onnx: the way
exporters other than PyTorch's write ONNX. The recogniser (a CNN with an attention neck and a
CTC head) is scored by greedy-decoded exact match against the rendered text; the detector (DB,
a probability map of text regions) by line-level F1 against the rendered line boxes.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench.zoo.text_images import random_line, render_line, render_page

LINE_SHAPE = (48, 320)  # the recogniser's input height and width (rapidocr's rec_img_shape)
PAGE_SHAPE = (320, 480)  # detector pages: height, width (multiples of 32)
MAX_LINES = 8
BINARY_THRESHOLD, BOX_THRESHOLD, UNCLIP_RATIO, MATCH_IOU = 0.3, 0.5, 1.6, 0.5  # rapidocr's DB settings


def model_file(name: str) -> Path:
    """A model inside the installed package, found without importing it (its __init__ pulls OpenCV)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package rapidocr-onnxruntime is not installed; pip install -e '.[zoo]'")
    return Path(spec.submodule_search_locations[0]) / "models" / name


def recogniser_data(count: int, seed: int) -> dict[str, np.ndarray]:
    """``x`` (N, 3, 48, 320) in PP-OCR's normalization, padded right as PaddleOCR pads; ``labels`` the text
    without its spaces: the Chinese model writes none, and PaddleOCR's own metric ignores them."""
    rng = random.Random(seed)
    height, width = LINE_SHAPE
    x = np.zeros((count, 3, height, width), np.float32)  # zero after normalization: PaddleOCR's padding
    texts = []
    for i in range(count):
        text = random_line(rng)
        image = render_line(text, rng, height)
        pixels = (np.asarray(image, np.float32)[:, :width] / 255.0 - 0.5) / 0.5
        if image.width > width:  # squeezed to fit, as PaddleOCR does for wide lines
            pixels = (np.asarray(image.resize((width, height)), np.float32) / 255.0 - 0.5) / 0.5
        x[i, :, :, : pixels.shape[1]] = pixels.transpose(2, 0, 1)
        texts.append(text.replace(" ", ""))
    return {"x": x, "labels": np.array(texts)}


def detector_data(count: int, seed: int) -> dict[str, np.ndarray]:
    """``x`` (N, 3, 320, 480) pages; ``labels`` (N, 8, 4) line boxes x0, y0, x1, y1, rows of -1 where a page has fewer lines."""
    rng = random.Random(seed)
    height, width = PAGE_SHAPE
    x = np.empty((count, 3, height, width), np.float32)
    boxes = np.full((count, MAX_LINES, 4), -1, np.float32)
    for i in range(count):
        page, lines = render_page([random_line(rng) for _ in range(rng.randint(2, MAX_LINES))], rng, (width, height))
        x[i] = ((np.asarray(page, np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
        if lines:
            boxes[i, : len(lines)] = lines
    return {"x": x, "labels": boxes}


def line_f1(_reference: np.ndarray, outputs: np.ndarray, labels: np.ndarray) -> float:
    """Line-level F1 of DB's boxes against the true line boxes (IoU >= 0.5), over all pages.

    A `compress --metric bench.zoo.ocr:line_f1` function: higher is better, counted in points."""
    found = truth = matched = 0
    for probability, page_boxes in zip(outputs.reshape(len(outputs), *outputs.shape[-2:]), labels):
        true_boxes = [tuple(b) for b in page_boxes if b[0] >= 0]
        boxes = detected_boxes(probability)
        found, truth = found + len(boxes), truth + len(true_boxes)
        matched += _greedy_matches(boxes, true_boxes)
    return 2 * matched / (found + truth) if found + truth else 1.0


def detected_boxes(probability: np.ndarray) -> list[tuple[float, float, float, float]]:
    """DB's post-processing with axis-aligned boxes: threshold, components, score, unclip."""
    regions, _ = ndimage.label(probability > BINARY_THRESHOLD)
    boxes = []
    for index, window in enumerate(ndimage.find_objects(regions), start=1):
        if window is None:
            continue
        ys, xs = window
        w, h = xs.stop - xs.start, ys.stop - ys.start
        if min(w, h) < 3 or probability[window][regions[window] == index].mean() < BOX_THRESHOLD:
            continue
        pad = w * h * UNCLIP_RATIO / (2 * (w + h))  # the offset DB's unclip gives a rectangle
        boxes.append((xs.start - pad, ys.start - pad, xs.stop + pad, ys.stop + pad))
    return boxes


def _greedy_matches(boxes: list, true_boxes: list) -> int:
    pairs = sorted(((_iou(b, t), i, j) for i, b in enumerate(boxes) for j, t in enumerate(true_boxes)), reverse=True)
    used_b, used_t, matches = set(), set(), 0
    for iou, i, j in pairs:
        if iou < MATCH_IOU:
            break
        if i not in used_b and j not in used_t:
            used_b.add(i)
            used_t.add(j)
            matches += 1
    return matches


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
