"""Scoring INT8 candidates on validation data: the task metric's drop, its bound on resampled data, and the trial latency."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.measure.task_metrics import TaskMetric
from compress.pipeline.fastest_variant import session_p50
from export.onnx.session import make_session, run_session

BOOTSTRAP_ROUNDS = 30


@dataclass
class Evaluator:
    """Scores and times a candidate file on validation data held out from calibration and evaluation."""

    batches: list[dict]
    reference: np.ndarray
    labels: np.ndarray | None
    metric: TaskMetric  # the drop is in its unit: points, or relative to the original's value
    timing_batches: list[dict]  # the trial latency cycles through them
    threads: int
    reference_score: float = field(init=False)
    last_outputs: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self):
        self.reference_score = self.metric.value(self.reference, self.reference, self.labels)

    @property
    def metric_name(self) -> str:
        return self.metric.name

    def __call__(self, path: Path, disabled_optimizers=()) -> tuple[float, float]:
        """(the task metric's drop, the trial p50 in ms)."""
        session = make_session(path, self.threads, disabled_optimizers=disabled_optimizers)
        try:
            drop, _ = self._score(session)
            p50 = session_p50(session, self.timing_batches)
        finally:
            del session
        return drop, p50

    def untimed(self, path: Path) -> tuple[float, float]:
        """(the task metric's drop, the outputs' relative error): what the sensitivity analysis ranks by, with no timing."""
        session = make_session(path, self.threads)
        try:
            return self._score(session)
        finally:
            del session

    def confidently_within(self, tolerance: float) -> tuple[bool, float]:
        """Whether the last scored candidate stays within ``tolerance`` on resampled validation data,
        and the bound it was judged by: the mean plus one standard deviation of its drop over a
        paired bootstrap of the validation samples.

        A metric that counts answers moves in steps of one sample: on 256 OCR lines a candidate
        that loses 2 lines net (0.8 points) may lose 8 on the next 320. Judging by the point drop
        alone, the search stopped at such a candidate and the file later missed the tolerance on
        fresh data; the bound asks for a margin in proportion to how much the answers changed."""
        rng, n = np.random.default_rng(0), len(self.reference)
        labels = None if self.labels is None else np.asarray(self.labels)
        drops = []
        for _ in range(BOOTSTRAP_ROUNDS):
            pick = rng.integers(0, n, n)
            reference, sampled = self.reference[pick], None if labels is None else labels[pick]
            drops.append(self.metric.drop(self.metric.value(reference, reference, sampled), self.metric.value(reference, self.last_outputs[pick], sampled)))
        bound = round(float(np.mean(drops) + np.std(drops)), 6)
        return bound <= tolerance, bound

    def judge(self, drop: float, tolerance: float) -> tuple[bool, float | None]:
        """(within the tolerance, the resampled bound) for the last scored candidate whose drop was
        ``drop``: a drop already over the tolerance needs no resampling, and has no bound."""
        return self.confidently_within(tolerance) if drop <= tolerance else (False, None)

    def subset(self, samples: int) -> Evaluator:
        """The same evaluator over the first batches holding at least ``samples`` samples (all where
        there are fewer): a cheaper screen for work that runs one evaluation per node group."""
        taken, count = [], 0
        for batch in self.batches:
            if count >= samples:
                break
            taken.append(batch)
            count += len(next(iter(batch.values())))
        if len(taken) == len(self.batches):
            return self
        labels = None if self.labels is None else np.asarray(self.labels)[:count]
        return replace(self, batches=taken, reference=self.reference[:count], labels=labels)

    @property
    def samples(self) -> int:
        return len(self.reference)

    def _score(self, session) -> tuple[float, float]:
        return self.score_outputs(np.concatenate([run_session(session, b)[0] for b in self.batches]))

    def score_outputs(self, outputs: np.ndarray) -> tuple[float, float]:
        """(the task metric's drop, the outputs' relative error) of a candidate's outputs on the
        validation batches, however they were computed (an ONNX file, a pruned PyTorch model);
        ``judge`` then resamples these."""
        self.last_outputs = outputs
        drop = self.metric.drop(self.reference_score, self.metric.value(self.reference, outputs, self.labels))
        error = float(np.linalg.norm(outputs - self.reference) / max(float(np.linalg.norm(self.reference)), 1e-12))
        return round(drop, 6), round(error, 6)


