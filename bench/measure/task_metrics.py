"""Task metrics: what a user cares about in a model's answers, the same in the report, the INT8
search and the bench suite.

A metric scores outputs against the original's outputs (``reference``) and, where it needs
them, the labels. Its **drop** is how much worse a candidate is than the original, in points
(accuracy, exact match, character error rate) or relative (cosine, perplexity), the unit a
tolerance such as ``--max-drop 1%`` is read in. A few points of error on logits can flip no
answer or every answer; a task metric says which.

Built in: ``top1`` and ``top5`` agreement with the original, ``accuracy`` (labels),
``cosine`` (embeddings), ``ctc-exact`` and ``cer`` (greedy CTC decoding against text labels or
the original's decoding), ``perplexity`` (next-token logits against label ids), and
``relative-error``. ``module:function`` names the user's own: ``function(reference, outputs,
labels) -> float``, higher is better, counted in points.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from compress.core.errors import InputError

ScoreFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


@dataclass(frozen=True)
class TaskMetric:
    name: str
    description: str
    fn: ScoreFn  # the metric's value for ``outputs`` given the reference outputs and labels
    higher_is_better: bool = True
    relative: bool = False  # the drop is relative to the original's value (cosine, perplexity), not in points
    needs_labels: bool = False
    percent: bool = True  # shown as a percentage (accuracy-like), else as a plain number

    def value(self, reference: np.ndarray, outputs: np.ndarray, labels: np.ndarray | None) -> float:
        if self.needs_labels and labels is None:
            raise InputError(f"the {self.name} metric needs labels; give --eval data with labels (labels in .npz, label in .jsonl)")
        return float(self.fn(reference, outputs, labels))

    def drop(self, reference_value: float, value: float) -> float:
        worse = reference_value - value if self.higher_is_better else value - reference_value
        return worse / max(abs(reference_value), 1e-12) if self.relative else worse

    def score(self, reference: np.ndarray, outputs: np.ndarray, labels: np.ndarray | None) -> dict:
        """The report's entry: the value, the original's value on the same data, and the drop."""
        reference_value, value = self.value(reference, reference, labels), self.value(reference, outputs, labels)
        scored = {"name": self.name, "description": self.description, "value": round(value, 6),
                  "reference_value": round(reference_value, 6), "drop": round(self.drop(reference_value, value), 6),
                  "drop_unit": "relative" if self.relative else "points", "samples": len(outputs)}
        return {**scored, "headline": self.headline(scored)}

    def headline(self, scored: dict) -> str:
        def shown(v: float) -> str:
            return f"{100 * v:.1f}%" if self.percent else f"{v:.4g}"

        return f"{self.name} {shown(scored['value'])} (FP32 {shown(scored['reference_value'])})"


def _rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _top1(reference, outputs, _labels) -> float:
    return float((_rows(reference).argmax(1) == _rows(outputs).argmax(1)).mean())


def _top5(reference, outputs, _labels) -> float:
    """How often the original's top class is among the candidate's five best."""
    ref_top = _rows(reference).argmax(1)
    cand_top5 = np.argsort(-_rows(outputs), axis=1)[:, :5]
    return float((cand_top5 == ref_top[:, None]).any(1).mean())


def _accuracy(_reference, outputs, labels) -> float:
    labels = np.asarray(labels).reshape(-1)
    top = _rows(outputs).argmax(1)
    if len(labels) != len(top):
        raise InputError(f"{len(labels)} labels for {len(top)} samples; give one label per sample")
    return float((top == labels).mean())


def _cosine(reference, outputs, _labels) -> float:
    ref, cand = _rows(reference), _rows(outputs)
    denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    return float((np.sum(ref * cand, axis=1) / np.maximum(denom, 1e-12)).mean())


def _one_minus_relative_error(reference, outputs, _labels) -> float:
    ref, cand = _rows(reference).astype(np.float64), _rows(outputs).astype(np.float64)
    return 1.0 - float((np.linalg.norm(cand - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-12)).mean())


def ctc_greedy_decode(outputs: np.ndarray, blank: int = 0) -> list[tuple[int, ...]]:
    """Per sample (time, classes): the best class per step, repeats collapsed, blanks removed.
    A (classes, time) layout is not guessed: transpose it before."""
    best = np.asarray(outputs).argmax(-1)
    if best.ndim != 2:
        raise InputError(f"CTC decoding needs outputs of shape (batch, time, classes); got {list(np.asarray(outputs).shape)}")
    decoded = []
    for row in best:
        keep = np.ones(len(row), dtype=bool)
        keep[1:] = row[1:] != row[:-1]
        decoded.append(tuple(int(c) for c in row[keep] if c != blank))
    return decoded


class CtcText:
    """Greedy CTC decoding into text with a charset (index 0 is the blank; charset[i - 1] is class i)."""

    def __init__(self, charset: Sequence[str] | None):
        self.charset = list(charset) if charset is not None else None

    def texts(self, outputs: np.ndarray) -> list:
        decoded = ctc_greedy_decode(outputs)
        if self.charset is None:
            return decoded  # class sequences: enough to compare with the original's decoding
        n = len(self.charset)
        return ["".join(self.charset[c - 1] if 0 < c <= n else "" for c in seq) for seq in decoded]

    def truth(self, reference: np.ndarray, labels: np.ndarray | None) -> list:
        if labels is None:
            return self.texts(reference)  # no labels: truth by construction, the original's reading
        if self.charset is None:
            raise InputError("text labels need the model's charset to compare with; give --charset FILE (one character per line)")
        return [str(t) for t in np.asarray(labels).reshape(-1)]

    def exact(self, reference, outputs, labels) -> float:
        truth, read = self.truth(reference, labels), self.texts(outputs)
        return float(np.mean([t == r for t, r in zip(truth, read)]))

    def cer(self, reference, outputs, labels) -> float:
        truth, read = self.truth(reference, labels), self.texts(outputs)
        edits = sum(Levenshtein.distance(t, r) for t, r in zip(truth, read))
        return edits / max(sum(len(t) for t in truth), 1)


def _perplexity(_reference, outputs, labels) -> float:
    """exp(mean next-token negative log-likelihood): logits (batch, time, vocab) at position t
    predict label id t + 1; label ids below 0 (padding, -100 as Hugging Face writes it) are skipped."""
    logits = np.asarray(outputs, dtype=np.float64)
    ids = np.asarray(labels).astype(np.int64)
    if logits.ndim != 3 or ids.shape != logits.shape[:2]:
        raise InputError(f"perplexity needs logits (batch, time, vocab) and label ids (batch, time); got {list(logits.shape)} "
                         f"and {list(ids.shape)}")
    logits, targets = logits[:, :-1], ids[:, 1:]
    mask = targets >= 0
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, np.where(mask, targets, 0)[..., None], -1)[..., 0]
    return float(np.exp(-(picked * mask).sum() / max(mask.sum(), 1)))


BUILTIN = ("top1", "top5", "accuracy", "cosine", "ctc-exact", "cer", "perplexity", "relative-error")


def builtin_metric(name: str, charset: Sequence[str] | None = None) -> TaskMetric:
    if name == "top1":
        return TaskMetric("top1", "top-1 agreement with the original", _top1)
    if name == "top5":
        return TaskMetric("top5", "the original's top class within the top 5", _top5)
    if name == "accuracy":
        return TaskMetric("accuracy", "top-1 accuracy against the labels", _accuracy, needs_labels=True)
    if name == "cosine":
        return TaskMetric("cosine", "mean cosine similarity to the original", _cosine, relative=True, percent=False)
    if name == "relative-error":
        return TaskMetric("relative-error", "1 - mean relative error against the original", _one_minus_relative_error, percent=False)
    if name in ("ctc-exact", "cer"):
        ctc = CtcText(charset)
        if name == "ctc-exact":
            return TaskMetric("ctc-exact", "greedy CTC decoding: exact text match", ctc.exact)
        return TaskMetric("cer", "greedy CTC decoding: character error rate", ctc.cer, higher_is_better=False)
    if name == "perplexity":
        return TaskMetric("perplexity", "perplexity of the label ids", _perplexity, higher_is_better=False, relative=True,
                          needs_labels=True, percent=False)
    raise InputError(f"unknown metric {name!r}; use one of {', '.join(BUILTIN)}, or module:function for your own")


def resolve_metric(spec: str | Callable | TaskMetric | None, task: str, labels: np.ndarray | None,
                   charset: Sequence[str] | None = None) -> TaskMetric:
    """``--metric`` (a built-in name, ``module:function``, a callable, or None for the task's default)."""
    if isinstance(spec, TaskMetric):
        return spec
    if callable(spec):
        return TaskMetric(getattr(spec, "__name__", "custom"), "the user's metric", spec)
    if spec is None:
        return default_metric(task, labels)
    if re.fullmatch(r"[\w.]+:\w+", spec):
        return TaskMetric(spec, "the user's metric", _import_function(spec))
    return builtin_metric(spec, charset)


def default_metric(task: str, labels: np.ndarray | None) -> TaskMetric:
    if task == "embedding":
        return builtin_metric("cosine")
    if task == "classification":
        return builtin_metric("accuracy" if labels is not None else "top1")
    return builtin_metric("relative-error")


def _import_function(spec: str) -> ScoreFn:
    module_name, function_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--metric {spec}: cannot import {module_name} ({exc}); put it on PYTHONPATH") from exc
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise InputError(f"--metric {spec}: {module_name} has no function {function_name}")
    return fn


def read_charset(path) -> list[str]:
    """One character (or token) per line, class i + 1 on line i; blank lines are a space."""
    try:
        lines = open(path, encoding="utf-8").read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--charset {path} cannot be read as UTF-8 text ({exc}); give one character per line") from exc
    if lines and lines[-1] == "":
        lines.pop()
    return [ln if ln else " " for ln in lines]
