"""Scoring INT8 candidates: the bound on resampled validation data, and the screening subset."""

from __future__ import annotations

import numpy as np

from bench.measure.task_metrics import builtin_metric
from compress.pipeline.static_int8.evaluator import Evaluator


def test_a_candidate_within_the_tolerance_by_luck_is_not_confidently_within_it():
    """256 answers: losing 2 net of 10 changed answers is 0.8 points, inside a 1-point tolerance,
    but not once the samples are resampled; an unchanged candidate is within it however resampled."""
    labels = np.arange(256) % 4
    reference = np.eye(4, dtype=np.float32)[labels]  # the original answers every sample right
    evaluator = Evaluator([], reference, labels, builtin_metric("accuracy"), [], 1)
    evaluator.last_outputs = reference.copy()
    assert evaluator.confidently_within(0.01) == (True, 0.0)
    changed = reference.copy()
    changed[:6] = np.roll(changed[:6], 1, axis=1)  # six answers lost...
    evaluator.last_outputs = changed  # (the original is right everywhere, so none can be gained: 6 lost is 2.3 points)
    met, bound = evaluator.confidently_within(0.03)
    assert not met and 0.023 < bound < 0.04
    evaluator.last_outputs = np.concatenate([changed[:2], reference[2:]])  # two lost: 0.8 points
    met, bound = evaluator.confidently_within(0.01)
    assert not met and bound > 0.01


def test_a_subset_takes_whole_leading_batches_and_scores_against_their_own_reference():
    labels = np.arange(40) % 4
    reference = np.eye(4, dtype=np.float32)[labels]
    batches = [{"x": np.zeros((8, 2), np.float32)} for _ in range(5)]
    reference[:8] = np.roll(reference[:8], 1, axis=1)  # the original gets the first batch wrong
    evaluator = Evaluator(batches, reference, labels, builtin_metric("accuracy"), [], 1)
    assert evaluator.reference_score == 0.8
    screen = evaluator.subset(10)  # two batches: whole batches, at least 10 samples
    assert len(screen.batches) == 2 and screen.samples == 16 and list(screen.labels) == list(labels[:16])
    assert screen.reference_score == 0.5 and screen.last_outputs is None
    assert evaluator.subset(1000) is evaluator
