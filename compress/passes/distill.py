"""Knowledge distillation: train a student (a pruned or smaller model) to answer like its teacher.

The loss is ``output_weight`` x the output loss plus ``hidden_weight`` x the mean hidden-state
loss over the paired submodules (see ``distill_losses``), plus ``attention_weight`` x the mean KL
between the paired layers' attention distributions (``distill_attention``; off by default). The
loop is built on Hugging Face Accelerate, so the same code runs on the CPU, one GPU, or several
under ``accelerate launch`` (each process then takes every n-th batch, so the effective batch is
batch_size x processes).

Choices a user should know:
- the data is concatenated and cut into ``batch_size`` batches, reshuffled every epoch from
  (seed, epoch); the last N mod batch_size samples of each epoch's order are left out, so every
  step sees a full batch;
- weights that are exactly zero at the start (a pruned student's) stay zero;
- AdamW, with weight decay on matrices and convolution kernels only (not on biases or norms);
  the learning rate rises linearly over ``warmup_steps`` and then stays constant, so a run with a
  time budget follows the same path as one with a step count;
- a checkpoint holds the step, the epoch and the position in it, and every RNG state, so a
  resumed run takes exactly the steps the uninterrupted one would have taken and ends with the
  same weights. A resumed run may change only when to stop or save (``MAY_CHANGE_ON_RESUME``);
  ``time_budget_s`` counts from the start of each call;
- Ctrl-C finishes the current step, saves a checkpoint and then raises KeyboardInterrupt (a
  second Ctrl-C stops at once). A KeyboardInterrupt raised inside a step rolls the step back
  (RNG and buffers) and saves the state before it.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from compress.core.errors import ConfigError, InputError
from compress.core.forward_loop import Batch
from compress.core.model import Model
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.core.spec import to_torch
from compress.load.distill_checkpoints import open_directory
from compress.passes.distill_attention import attention_pairs
from compress.passes.distill_augment import augment_tokens, default_copies
from compress.passes.distill_loop import DistillRun, Samples
from compress.passes.distill_losses import HIDDEN_LOSSES, default_hidden_pairs
from compress.passes.teacher_cache import TeacherCache


@register_config
class DistillConfig(StepConfig):
    """Train the student to match the teacher's outputs (and hidden states) on unlabeled data."""

    kind: ClassVar[StepKind] = MODEL_PASS

    temperature: float = 2.0  # softens both distributions for classification; 2-4 is typical
    output_weight: float = 1.0  # weight of the loss on the model's output
    hidden_weight: float = 1.0  # weight of the loss between paired hidden states
    hidden_loss: str = "mse"  # "mse" or "cosine"
    attention_weight: float = 0.0  # weight of the KL between paired layers' attention distributions
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    batch_size: int = 16
    max_steps: int | None = None  # at least one of max_steps, time_budget_s, epochs is needed
    time_budget_s: float | None = None  # stop at the first step boundary past it (per call)
    epochs: int | None = None
    warmup_steps: int = 0  # linear warmup, then constant
    checkpoint_every: int = 50  # steps
    seed: int = 0
    grad_clip: float | None = 1.0  # max gradient norm; None to leave gradients alone
    # Embedding tables stay as the teacher's: pruning leaves them intact, they are half of a
    # small encoder's parameters, and updating them costs about 15% of every step on CPU.
    freeze_embeddings: bool = True
    # The frozen teacher's answers kept per sample after the first epoch (``teacher_cache``): each
    # later step skips the teacher's forward pass. Hidden-state targets are stored in float16.
    cache_teacher: bool = True
    # Altered copies of each tokenized sample (``distill_augment``); None: enough to bring fewer
    # than 2000 samples up to about 2000 (at most 20 copies), none above; 0: never
    augment_copies: int | None = None
    augment_rate: float = 0.15  # of each copy's real tokens replaced

    def __post_init__(self):
        problems = [
            (self.temperature > 0, f"distillation temperature {self.temperature} must be above 0 (2-4 is typical)"),
            (min(self.output_weight, self.hidden_weight, self.attention_weight) >= 0,
             f"distillation loss weights must be 0 or more (output {self.output_weight}, hidden {self.hidden_weight}, "
             f"attention {self.attention_weight})"),
            (max(self.output_weight, self.hidden_weight, self.attention_weight) > 0,
             "distillation needs output_weight, hidden_weight or attention_weight above 0"),
            (self.hidden_loss in HIDDEN_LOSSES, f"distillation hidden_loss {self.hidden_loss!r} is unknown; use one of {', '.join(HIDDEN_LOSSES)}"),
            (self.learning_rate > 0, f"distillation learning rate {self.learning_rate} must be above 0 (1e-5 to 1e-4 is typical)"),
            (self.weight_decay >= 0, f"distillation weight decay {self.weight_decay} must be 0 or more"),
            (_count(self.batch_size, 1), f"distillation batch size {self.batch_size} must be a whole number of at least 1"),
            (self.max_steps is None or _count(self.max_steps, 1), f"distillation max_steps {self.max_steps} must be a whole number of at least 1"),
            (self.epochs is None or _count(self.epochs, 1), f"distillation epochs {self.epochs} must be a whole number of at least 1"),
            (self.time_budget_s is None or self.time_budget_s > 0, f"distillation time budget {self.time_budget_s}s must be above 0"),
            (any(v is not None for v in (self.max_steps, self.time_budget_s, self.epochs)),
             "distillation needs a stopping rule: set max_steps, time_budget_s or epochs"),
            (_count(self.warmup_steps, 0), f"distillation warmup_steps {self.warmup_steps} must be a whole number of 0 or more"),
            (_count(self.checkpoint_every, 1), f"distillation checkpoint_every {self.checkpoint_every} must be a whole number of steps, at least 1"),
            (_count(self.seed, 0), f"distillation seed {self.seed} must be a whole number of 0 or more"),
            (self.grad_clip is None or self.grad_clip > 0, f"distillation grad_clip {self.grad_clip} must be above 0, or None to turn clipping off"),
            (self.augment_copies is None or _count(self.augment_copies, 0),
             f"distillation augment_copies {self.augment_copies} must be a whole number of 0 or more, or None for the default"),
            (0 < self.augment_rate < 1, f"distillation augment_rate {self.augment_rate} must be a fraction between 0 and 1, e.g. 0.15"),
        ]
        for ok, message in problems:
            if not ok:
                raise ConfigError(message)


def _count(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def distill(teacher: Model, student: Model, config: DistillConfig, batches: list[Batch], *,
            checkpoint_dir: Path | None = None, resume: bool = False, progress=None,
            hidden_pairs: list[tuple[str, str]] | None = None, teacher_cache: TeacherCache | None = None) -> dict:
    """Train ``student.module`` in place to imitate ``teacher`` (frozen) on ``batches``; returns a report.

    ``hidden_pairs`` lists (teacher submodule, student submodule) whose outputs are compared; by
    default transformers layers are paired one to one when both models have as many.
    ``teacher_cache`` is one to share between calls with the same teacher and data (its targets
    are reused); a cache built for other samples is left alone and a fresh one used.
    """
    started = time.perf_counter()
    _check_models(teacher, student)
    if resume and checkpoint_dir is None:
        raise InputError("resuming needs the checkpoint directory of the earlier run; give it, or drop --resume")
    samples, data = _samples(teacher, student, batches, config)
    if hidden_pairs is None:
        layer_pairs, layer_note = default_hidden_pairs(teacher, student)
    else:
        layer_pairs, layer_note = [(str(t), str(s)) for t, s in hidden_pairs], None
    pairs, hidden_note = (layer_pairs, layer_note) if config.hidden_weight else ([], "no hidden-state loss: hidden_weight is 0")
    attention = attention_pairs(teacher, student, layer_pairs) if config.attention_weight else ([], "no attention loss: attention_weight is 0")
    if config.output_weight == 0 and not pairs and not attention[0]:
        raise InputError(f"output_weight is 0 and there is no hidden or attention pair to learn from ({hidden_note}; {attention[1]}); "
                         "raise output_weight or pass hidden_pairs")
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    latest = open_directory(checkpoint_dir, resume) if checkpoint_dir is not None else None
    return DistillRun(teacher, student, config, samples, data, pairs, hidden_note, checkpoint_dir, latest, progress, started,
                     teacher_cache, attention).train()


def _check_models(teacher: Model, student: Model) -> None:
    for who, model in (("teacher", teacher), ("student", student)):
        if model.module is None:
            raise InputError(f"distillation trains PyTorch models; the {who} is an ONNX file, so give its PyTorch form")
    if teacher.module is student.module:
        raise InputError("the student is the teacher's own module; distill into a copy (e.g. a pruned clone)")
    if teacher.task != student.task:
        raise InputError(f"the teacher's task is {teacher.task} and the student's {student.task}; load both for the same task")


def _samples(teacher: Model, student: Model, batches: list[Batch], config: DistillConfig) -> tuple[Samples, dict]:
    """Every batch concatenated into one tensor per input (in the spec's dtype), augmented where
    the config says, and the fingerprint of the data as given."""
    batch_size = config.batch_size
    specs = {s.name: s for s in (*teacher.inputs, *student.inputs)}
    if not batches:
        raise InputError("distillation got no data; give a data file or let it use the built-in text")
    arrays, digest = {}, hashlib.sha256()
    for name in specs:
        lacking = [i for i, b in enumerate(batches) if name not in b]
        if lacking:
            raise InputError(f"distillation batch {lacking[0]} lacks input {name!r}; every batch needs {sorted(specs)}")
        try:
            arrays[name] = np.ascontiguousarray(np.concatenate([np.asarray(b[name]) for b in batches]))
        except ValueError as exc:
            raise InputError(f"distillation batches disagree on the shape of {name!r} ({exc}); give them one sequence length") from exc
        digest.update(f"{name}:{arrays[name].dtype}:{arrays[name].shape}".encode())
        digest.update(arrays[name].tobytes())
    counts = sorted({len(a) for a in arrays.values()})
    if len(counts) > 1:
        raise InputError(f"distillation inputs hold different numbers of samples ({counts}); give every input one row per sample")
    if counts[0] < batch_size:
        raise InputError(f"distillation data has {counts[0]} samples, fewer than one batch of {batch_size}; give more data or a smaller --distill-batch")
    arrays, augmented = _augment(teacher, arrays, counts[0], config)
    return Samples(to_torch(arrays, tuple(specs.values()))), {"samples": counts[0], "sha256": digest.hexdigest(), "augmentation": augmented}


def _augment(teacher: Model, arrays: dict[str, np.ndarray], count: int, config: DistillConfig) -> tuple[dict[str, np.ndarray], dict]:
    copies = default_copies(count) if config.augment_copies is None else config.augment_copies
    if copies == 0:
        return arrays, {"copies": 0}
    tokenizer = teacher.tokenizer
    if tokenizer is None or "input_ids" not in arrays:
        return arrays, {"copies": 0, "note": "not augmented: the data is not tokenized text (no input_ids and tokenizer)"}
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    out = augment_tokens(arrays, copies, mask_id=getattr(tokenizer, "mask_token_id", None), special_ids=special,
                         rate=config.augment_rate, seed=config.seed)
    return out, {"copies": copies, "rate": config.augment_rate, "samples_after": count * (copies + 1)}
