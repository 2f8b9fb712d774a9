"""How much data and time one zoo run spends: the full benchmark, or the small version the tests run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    calib: int  # calibration samples
    # the head of the file given to compress --eval: its guard and search validate on it. The guard
    # asks for the drop to stay within the tolerance on resampled data too, so the full run gives it
    # as many as it reads (512): on 256 OCR lines, 10 answers flipping both ways already put the
    # bound over 1 point with no net loss
    validation: int
    eval: int  # samples compress's own report scores after them, and the zoo's test file (which compress never sees)
    train: int  # fine-tuning examples for the classifier
    epochs: int
    batch_sizes: tuple[int, ...]
    min_seconds: float  # per timed batch size in the suite
    search_budget: str  # compress --search-budget when the guard escalates


FULL = Scale("full", calib=128, validation=512, eval=320, train=4000, epochs=2, batch_sizes=(1, 8), min_seconds=1.5, search_budget="6m")
SMALL = Scale("small", calib=16, validation=16, eval=48, train=256, epochs=1, batch_sizes=(1,), min_seconds=0.2, search_budget="45s")
