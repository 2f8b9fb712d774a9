"""Inputs for calibration, parity and evaluation: from the user's files, the built-in text, or the spec.

Every source yields batches as ``{input name: numpy array}``. Files are checked as they are
read, and errors name the file and the first bad record.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.core.errors import InputError
from compress.core.forward_loop import Batch
from compress.core.model import Model
from compress.core.spec import random_inputs
from compress.load.batch_memory import check_batches_fit, check_sequence_length
from compress.load.text_corpus import calibration_texts, evaluation_texts


@dataclass
class Dataset:
    batches: list[Batch]
    labels: np.ndarray | None
    source: str  # what the report says the data was

    @property
    def num_samples(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)


def tokenize(model: Model, texts: list[str], seq_len: int) -> Batch:
    """Tokenize to exactly ``seq_len`` tokens (padded or truncated), keeping only the model's inputs."""
    enc = model.tokenizer(list(texts), padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    return {n: np.asarray(enc[n]).astype(np.int64) for n in model.input_names}


def _batched(texts: list[str], batch_size: int) -> list[list[str]]:
    return [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]


def builtin_text(model: Model, purpose: str, samples: int, batch_size: int, seq_len: int) -> Dataset:
    """``validation`` (what a search selects on) takes the evaluation source's last texts, so it
    never overlaps the evaluation texts, which come from the front."""
    if purpose == "calibration":
        texts = list(calibration_texts()[:samples])
    elif purpose == "validation":
        texts = list(evaluation_texts()[-samples:])
    else:
        texts = list(evaluation_texts()[:samples])
    source = "Python standard-library docstrings" if purpose == "calibration" else "Python language reference (pydoc_data)"
    if purpose == "validation":
        source += ", the texts at its end"
    return Dataset([tokenize(model, b, seq_len) for b in _batched(texts, batch_size)], None, f"{source}, {len(texts)} texts")


def synthetic(model: Model, purpose: str, samples: int, batch_size: int, seq_len: int) -> Dataset:
    """Random inputs from the spec; evaluation and calibration use different seeds, so they never coincide."""
    seed = {"calibration": 0, "evaluation": 1}.get(purpose, 2)
    batches = []
    for i, start in enumerate(range(0, samples, batch_size)):
        n = min(batch_size, samples - start)
        batches.append(random_inputs(model.inputs, {"batch": n, "sequence": seq_len}, seed=seed * 100_003 + i))
    return Dataset(batches, None, f"synthetic inputs from the input spec, {samples} samples")


def default_data(model: Model, purpose: str, samples: int, batch_size: int, seq_len: int) -> Dataset:
    if model.tokenizer is not None:
        return builtin_text(model, purpose, samples, batch_size, seq_len)
    return synthetic(model, purpose, samples, batch_size, seq_len)


def latency_batches(model: Model, batch_sizes, seq_len: int, data: Dataset | None = None) -> dict[int, list[Batch]]:
    """Four different held-out batches of exactly each batch size, so latency is not timed on one
    cached input, nor a "batch 1000" on the few hundred texts the built-in source has left.

    A model without a tokenizer is timed on ``data`` (the user's held-out file) where given: its
    inputs have the real shapes, where the spec's dynamic axes (an OCR model's height and width)
    would otherwise be filled with a guess."""
    check_sequence_length(model, seq_len)
    check_batches_fit(model, batch_sizes, seq_len)
    if model.tokenizer is None:
        cut = {bs: batches_from(data, bs) for bs in batch_sizes} if data is not None and data.batches else {}
        if cut and all(cut.values()):
            return cut
        return {bs: synthetic(model, "evaluation", 4 * bs, bs, seq_len).batches for bs in batch_sizes}
    texts = evaluation_texts()
    return {bs: [tokenize(model, [texts[(b * bs + i) % len(texts)] for i in range(bs)], seq_len) for b in range(4)]
            for bs in batch_sizes}


def batches_from(data: Dataset, batch_size: int, count: int = 4) -> list[Batch]:
    """``count`` batches of exactly ``batch_size`` samples, cycling through ``data``; empty where its
    samples differ in shape and cannot be stacked."""
    samples = [{name: batch[name][i] for name in batch} for batch in data.batches for i in range(len(next(iter(batch.values()))))]
    try:
        return [{name: np.stack([samples[(b * batch_size + i) % len(samples)][name] for i in range(batch_size)]) for name in samples[0]}
                for b in range(count)]
    except ValueError:
        return []


def split_off(data: Dataset, samples: int) -> tuple[Dataset, Dataset]:
    """(the first ``samples`` samples, the rest): a search validates on the first part of the user's
    evaluation file and the report scores the rest. A batch is cut where the split falls, so a file
    that fits in one batch still splits; both parts keep at least one sample."""
    total = data.num_samples
    if total < 2:
        raise InputError(f"{data.source}: the search needs held-out samples to validate on and others to score; "
                         "give --eval at least 8 records")
    samples = min(max(samples, 1), total - 1)
    head, tail, seen = [], [], 0
    for batch in data.batches:
        n = len(next(iter(batch.values())))
        take = min(n, samples - seen)
        if take > 0:
            head.append({k: v[:take] for k, v in batch.items()})
        if take < n:
            tail.append({k: v[max(take, 0):] for k, v in batch.items()})
        seen += max(take, 0)
    labels = data.labels
    first = Dataset(head, labels[:samples] if labels is not None else None, f"{data.source}, first {samples} for validation")
    rest = Dataset(tail, labels[samples:] if labels is not None else None, f"{data.source}, after the first {samples}")
    return first, rest


def load_data_file(path: str | Path, model: Model, batch_size: int, seq_len: int, samples: int | None = None) -> Dataset:
    """Text lines (.txt, needs a tokenizer), ``.npz`` (keys are input names; one array for a one-input
    model; optional ``labels``) or ``.jsonl`` (``{"text": ...}`` or input-name fields; optional ``label``)."""
    path = require_data_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        records, labels = _read_npz(path, model)
    elif suffix == ".jsonl":
        records, labels = _read_jsonl(path, model)
    elif suffix in (".txt", ".text", ""):
        records, labels = _read_text(path, model), None
    else:
        raise InputError(f"data file {path}: unknown type {suffix!r}; use .txt (one text per line), .npz or .jsonl")
    if not len(records):
        raise InputError(f"data file {path} holds no records; give it at least one")
    if samples is not None:
        records, labels = records[:samples], (labels[:samples] if labels is not None else None)
    if isinstance(records[0], str):
        batches = [tokenize(model, b, seq_len) for b in _batched(records, batch_size)]
    else:
        batches = [{n: np.stack([r[n] for r in chunk]) for n in model.input_names} for chunk in _batched(records, batch_size)]
    return Dataset(batches, labels, f"{path.name}, {len(records)} records")


def require_data_file(path: str | Path, label: str = "data file") -> Path:
    """``path`` as a Path, refused in one line unless it is one existing file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{label} {path} is a directory; give one file: .txt (one text per line), .npz or .jsonl")
    if not path.is_file():
        raise InputError(f"{label} {path} does not exist; check the path")
    return path


def _read_text(path: Path, model: Model) -> list[str]:
    if model.tokenizer is None:
        raise InputError(f"data file {path} is text, but the model has no tokenizer; give .npz or .jsonl with input arrays")
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as exc:
        raise InputError(f"data file {path} is not UTF-8 text (byte {exc.start}); convert it or give .npz/.jsonl") from exc
    return [ln for ln in lines if ln]


def _read_npz(path: Path, model: Model):
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"data file {path} is not a readable .npz ({exc}); save it with numpy.savez") from exc
    labels = arrays.pop("labels", None)
    names = model.input_names
    if len(arrays) == 1 and len(names) == 1 and names[0] not in arrays:
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise InputError(f"data file {path} lacks arrays for inputs {missing}; its keys are {sorted(arrays)}, the model's inputs {names}")
    unused = sorted(set(arrays) - set(names))
    if unused:  # labels under another name would otherwise give a report without accuracy, silently
        raise InputError(f"data file {path} holds arrays {unused} that are neither inputs of the model {names} nor 'labels'; "
                         "save labels as 'labels' and leave other arrays out")
    count = len(arrays[names[0]])
    if labels is not None and len(labels) != count:
        raise InputError(f"data file {path} holds {len(labels)} labels for {count} records; give one label per record")
    records = [_checked_record(path, i, {n: arrays[n][i] for n in names}, model) for i in range(count)]
    return records, labels


def _read_jsonl(path: Path, model: Model):
    records, labels = [], []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"data file {path} line {lineno} is not JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise InputError(f"data file {path} line {lineno}: expected an object like {{\"text\": ...}}")
            if "label" in obj:
                labels.append(obj.pop("label"))
            if "text" in obj:
                if model.tokenizer is None:
                    raise InputError(f"data file {path} line {lineno} has text, but the model has no tokenizer")
                records.append(str(obj["text"]))
            else:
                missing = [n for n in model.input_names if n not in obj]
                if missing:
                    raise InputError(f"data file {path} line {lineno} lacks {missing}; give \"text\" or every input of {model.input_names}")
                try:
                    record = {n: np.asarray(obj[n]) for n in model.input_names}
                except ValueError as exc:
                    raise InputError(f"data file {path} line {lineno}: an input is not a rectangular array of numbers ({exc})") from exc
                if any(not np.issubdtype(v.dtype, np.number) and v.dtype != bool for v in record.values()):
                    raise InputError(f"data file {path} line {lineno}: input values must be numbers")
                records.append(_checked_record(path, lineno, record, model))
            unused = sorted(set(obj) - {"text", *model.input_names})
            if unused:
                raise InputError(f"data file {path} line {lineno} has fields {unused} that are neither \"text\", inputs of the model "
                                 f"{model.input_names} nor \"label\"; name the label field \"label\" and leave other fields out")
    if labels and len(labels) != len(records):
        raise InputError(f"data file {path}: {len(labels)} records have a label and {len(records)} do not all; label every record or none")
    return records, (np.asarray(labels) if labels else None)


def _checked_record(path: Path, index: int, record: Batch, model: Model) -> Batch:
    """The record checked against the input spec (shape, float or integer, finite) and cast to the
    spec's dtype: float64 data for a float32 model, int32 ids for an int64 input."""
    for spec in model.inputs:
        value = record[spec.name]
        want = spec.shape[1:]
        if value.ndim != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want, value.shape)):
            raise InputError(f"data file {path} record {index}: input {spec.name} has shape {list(value.shape)}, the model expects one sample of {list(want)}")
        if np.issubdtype(value.dtype, np.floating) != spec.dtype.startswith(("float", "bfloat")):
            raise InputError(f"data file {path} record {index}: input {spec.name} is {value.dtype}, the model expects {spec.dtype}")
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            raise InputError(f"data file {path} record {index}: input {spec.name} holds NaN or Inf; clean the data")
    return {s.name: np.asarray(record[s.name]).astype(_NUMPY_DTYPES.get(s.dtype, s.dtype), copy=False) for s in model.inputs}


_NUMPY_DTYPES = {"bfloat16": "float32"}  # numpy has no bfloat16: the cast to the model's dtype happens in torch
