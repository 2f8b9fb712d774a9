"""The data a run measures and calibrates on, kept apart: held-out evaluation inputs, validation
inputs for the INT8 search (held out from both), latency batches, and calibration sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.measure.task_metrics import TaskMetric, read_charset, resolve_metric
from compress.core.errors import InputError
from compress.core.model import Model
from compress.load.batch_memory import check_sequence_length
from compress.load.data import (
    Dataset,
    default_data,
    latency_batches,
    load_data_file,
    require_data_file,
    split_off,
)
from compress.pipeline.options import RunOptions

VALIDATION_SAMPLES = 64  # from the built-in source, or the least taken from a short --eval file
# The most read from the head of --eval for validation: a task metric that counts answers needs
# hundreds of samples before a 1-point tolerance means anything (on 64, one answer is 1.6 points).
MAX_VALIDATION_SAMPLES = 512


@dataclass
class RunData:
    evaluation: Dataset
    validation: Dataset | None
    latency: dict[int, list[dict]]  # four different batches per batch size
    model: Model
    options: RunOptions
    metric: TaskMetric  # what the report, the search and the guard score answers with
    _calibration: dict[int, Dataset] = field(default_factory=dict)

    @classmethod
    def prepare(cls, model: Model, options: RunOptions, with_validation: bool) -> "RunData":
        check_sequence_length(model, options.seq_len)  # before any text is tokenized to it
        # the user's file gives the validation samples too: read them on top of the evaluation samples
        extra = MAX_VALIDATION_SAMPLES if with_validation and options.eval is not None else 0
        evaluation, validation = evaluation_data(model, options, extra), None
        if with_validation:
            validation, evaluation = validation_split(model, evaluation, options.eval is not None, options.seq_len, options.eval_samples)
        metric = resolve_metric(options.metric, model.task, evaluation.labels, _charset(model, options))
        if metric.needs_labels and evaluation.labels is None:  # said now, not after export and quantization
            raise InputError(f"the {metric.name} metric needs labels; give --eval data with labels (labels in .npz, label in .jsonl)")
        timed_on = (validation or evaluation) if options.eval is not None else None  # real inputs in their real shapes
        return cls(evaluation, validation, latency_batches(model, options.batch_sizes, options.seq_len, timed_on), model, options, metric)

    def calibration(self, samples: int) -> Dataset:
        """The first ``samples`` calibration samples: from --calib, else the built-in calibration source."""
        if samples not in self._calibration:
            self._calibration[samples] = calibration_data(self.model, self.options, samples)
        return self._calibration[samples]

    @property
    def calibration_used(self) -> bool:
        return bool(self._calibration)

    def trial_batches(self) -> list[dict]:
        """The batches of the largest size timed (four different ones), for the short trials that
        choose between INT8 variants: at batch 1 one batch is one sentence, and a variant faster on
        one short sentence need not be faster on the lengths the report times."""
        return self.latency[max(self.latency)]


def evaluation_data(model: Model, options: RunOptions, extra: int = 0) -> Dataset:
    if options.calib is not None and options.eval is not None and Path(options.calib).resolve() == Path(options.eval).resolve():
        raise InputError("--eval and --calib name the same file; evaluate on data the model was not calibrated on")
    if options.eval is not None:
        return load_data_file(options.eval, model, batch_size=16, seq_len=options.seq_len, samples=options.eval_samples + extra)
    return default_data(model, "evaluation", options.eval_samples, 16, options.seq_len)


def calibration_data(model: Model, options: RunOptions, samples: int) -> Dataset:
    if options.calib is not None:
        return load_data_file(options.calib, model, batch_size=16, seq_len=options.seq_len, samples=samples)
    return default_data(model, "calibration", samples, 16, options.seq_len)


def validation_split(model: Model, evaluation: Dataset, user_eval: bool, seq_len: int, eval_samples: int = 128) -> tuple[Dataset, Dataset]:
    """(validation, evaluation): from the user's --eval file its first part, else the built-in held-out source."""
    if user_eval:  # the file's first samples validate, the rest (up to --eval's sample count) score the report
        return split_off(evaluation, max(evaluation.num_samples - eval_samples, min(VALIDATION_SAMPLES, evaluation.num_samples // 4)))
    return default_data(model, "validation", VALIDATION_SAMPLES, 16, seq_len), evaluation


def check_data_paths(options: RunOptions) -> None:
    """Every data file named is a file, checked before any work (a wrong --calib otherwise fails after export)."""
    for flag, path in (("--eval", options.eval), ("--calib", options.calib), ("--distill", options.distill)):
        if path is not None:
            require_data_file(path, flag)


def data_files(options: RunOptions) -> dict:
    """The user's data files, so `compress bench run OUT` scores on the same held-out inputs and a
    replay (`compress run --recipe OUT/manifest.json`) calibrates and distills on the same data."""
    files = (("evaluation", options.eval), ("calibration", options.calib), ("distillation", options.distill), ("charset", options.charset))
    return {name: str(Path(p).resolve()) for name, p in files if p is not None}


def _charset(model: Model, options: RunOptions) -> list[str] | None:
    """The CTC metrics' characters: --charset, else what the ONNX file's metadata records."""
    if options.charset is not None:
        return read_charset(options.charset)
    if model.is_onnx:
        from compress.load.onnx_file import charset_from_metadata

        return charset_from_metadata(model.source)
    return None
