"""The OCR zoo entries: rendered data the real PP-OCRv4 models read, and the detector's line F1."""

import numpy as np
import pytest

pytest.importorskip("scipy")
from bench.zoo import ocr  # noqa: E402


def _map_with(boxes, shape=(320, 480)):
    """A DB-like probability map: each true box shrunk as DB shrinks text regions."""
    probability = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in boxes:
        h = y1 - y0
        probability[int(y0 + 0.25 * h): int(y1 - 0.25 * h), int(x0 + 0.25 * h): int(x1 - 0.25 * h)] = 0.9
    return probability[None, None]


def test_line_f1_finds_true_lines_and_misses_absent_ones():
    truth = np.full((1, ocr.MAX_LINES, 4), -1, np.float32)
    truth[0, :2] = [(20, 20, 300, 44), (40, 80, 420, 110)]
    assert ocr.line_f1(None, _map_with(truth[0, :2]), truth) == pytest.approx(1.0)
    assert ocr.line_f1(None, _map_with(truth[0, :1]), truth) == pytest.approx(2 / 3)  # one of two lines found
    assert ocr.line_f1(None, np.zeros((1, 1, 320, 480), np.float32), truth) == 0.0
    shifted = [(x0 + 200, y0 + 150, x1 + 200, y1 + 150) for x0, y0, x1, y1 in truth[0, :2] if x1 + 200 < 480]
    assert ocr.line_f1(None, _map_with(shifted), truth) == 0.0  # boxes in the wrong place are false positives


def test_low_scoring_regions_are_not_boxes():
    probability = np.zeros((64, 64), np.float32)
    probability[10:20, 10:40] = 0.35  # over the binary threshold, under the box threshold
    assert ocr.detected_boxes(probability) == []


def test_recogniser_data_and_the_real_model_reads_it():
    ort = pytest.importorskip("onnxruntime")
    from bench.measure.task_metrics import builtin_metric
    from compress.load.onnx_file import charset_from_metadata

    data = ocr.recogniser_data(24, seed=5)
    assert data["x"].shape == (24, 3, *ocr.LINE_SHAPE) and data["x"].dtype == np.float32
    assert all(" " not in t and t for t in data["labels"])
    path = ocr.model_file("ch_PP-OCRv4_rec_infer.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": data["x"]})[0]
    exact = builtin_metric("ctc-exact", charset_from_metadata(path)).value(logits, logits, data["labels"])
    assert exact >= 0.6  # the rendering and normalization are what the model was trained on


def test_detector_data_boxes_lie_on_the_page():
    data = ocr.detector_data(6, seed=3)
    boxes = data["labels"]
    assert data["x"].shape == (6, 3, *ocr.PAGE_SHAPE)
    real = boxes[boxes[..., 0] >= 0]
    assert len(real) >= 6 and (real[:, 2] <= ocr.PAGE_SHAPE[1]).all() and (real[:, 3] <= ocr.PAGE_SHAPE[0]).all()
    assert (real[:, 2] > real[:, 0]).all() and (real[:, 3] > real[:, 1]).all()
