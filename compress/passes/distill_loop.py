"""The distillation training loop, on Hugging Face Accelerate, with exact checkpoint and resume.

A resumed run must take exactly the steps an uninterrupted one would: so the data order comes
from (seed, epoch) alone, the DataLoader has its own generator (making an iterator then never
draws from the global RNG that dropout uses), a checkpoint records the position within the epoch
(the resumed run skips the batches already seen), and ``accelerator.save_state`` keeps the
weights, AdamW moments, scheduler and every RNG state.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from compress.core.errors import InputError
from compress.core.model import Model, flatten_outputs
from compress.core.spec import DTYPES
from compress.load.distill_checkpoints import (
    check_resumable,
    read_meta,
    save_checkpoint,
)
from compress.load.no_code_unpickling import weights_only_loads
from compress.passes.distill_losses import (
    HiddenCapture,
    hidden_loss,
    output_loss,
    same_shape,
)
from compress.passes.distill_attention import AttentionCapture, attention_kl, eager_attention
from compress.passes.teacher_cache import OUTPUT, SQUARE, TeacherCache

INDEX = "_sample_index"  # which samples a batch holds: the key of the teacher cache


class Samples(torch.utils.data.Dataset):
    """All distillation samples, one tensor per input; a batch is gathered with one index."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.count = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.count

    @property
    def sequence(self) -> int | None:
        """The data's full sequence length, where an attention mask marks it."""
        return sequence_length(self.tensors)

    def __getitem__(self, index):
        return {**{k: v[index] for k, v in self.tensors.items()}, INDEX: torch.as_tensor(index)}

    def __getitems__(self, indices):  # one batch in one gather, not one sample at a time
        index = torch.as_tensor(indices)
        return {**trim_padding({k: v[index] for k, v in self.tensors.items()}), INDEX: index}


def trim_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cut the sequence columns that are padding in every sample of the batch: the teacher and
    the student see the same tokens, and short texts padded to 128 no longer cost 128 positions."""
    mask = batch.get("attention_mask")
    if mask is None or mask.dim() != 2 or not bool(mask.any()):
        return batch
    length = int(mask.any(0).nonzero().max()) + 1
    if length == mask.shape[1]:
        return batch
    return {k: v[:, :length] if v.dim() >= 2 and v.shape[1] == mask.shape[1] else v for k, v in batch.items()}


def sequence_length(batch: dict[str, torch.Tensor]) -> int | None:
    """The sequence length of a batch (or of all samples) as its [batch, sequence] attention mask gives it."""
    mask = batch.get("attention_mask")
    return int(mask.shape[1]) if mask is not None and mask.dim() == 2 else None


def as_is(batch):
    return batch


class EpochShuffle(torch.utils.data.Sampler):
    """A permutation drawn from (seed, epoch) alone, so any epoch's order can be replayed on resume."""

    def __init__(self, count: int, seed: int):
        self.count, self.seed, self.epoch = count, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.count).tolist())

    def __len__(self) -> int:
        return self.count


class Warmup:
    """Learning-rate factor: linear from 1/warmup up to 1 over ``warmup`` steps, then 1."""

    def __init__(self, warmup: int):
        self.warmup = warmup

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0


class StepSnapshot:
    """RNG states and buffers at the start of a step, to roll back a step interrupted half-way."""

    def __init__(self, module: torch.nn.Module):
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        self.buffers = [(b, b.detach().clone()) for b in module.buffers()]

    @torch.no_grad()
    def restore(self) -> None:
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        for buffer, saved in self.buffers:
            buffer.copy_(saved)


class DeferredInterrupt:
    """Turns the first Ctrl-C or SIGTERM into a request honoured at the next step boundary (main
    thread only). A signal landing mid-update would otherwise leave weights no checkpoint can hold."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, say):
        self.requested, self.say, self.previous, self.signum = False, say, {}, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, _frame):
        if self.requested:
            self.fire()
        self.requested, self.signum = True, signum
        self.say("distillation: stopping after this step to save a checkpoint (Ctrl-C again to stop at once)")

    def fire(self):
        """Stop as the signal would have without the deferral: the handler that was there before
        (the CLI's turns SIGTERM into its own KeyboardInterrupt, exit 143), else KeyboardInterrupt."""
        previous = self.previous.get(self.signum)
        if callable(previous) and self.signum == signal.SIGTERM:
            previous(self.signum, None)
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class DistillRun:
    """One call of ``distill``: the prepared objects and where the run stands (step, epoch, position)."""

    def __init__(self, teacher: Model, student: Model, config, samples: Samples, data: dict,
                 pairs: list[tuple[str, str]], hidden_note: str | None, checkpoint_dir: Path | None,
                 latest: Path | None, progress, started: float, teacher_cache: TeacherCache | None = None,
                 attention: tuple[list[tuple[str, str]], str | None] = ([], None)):
        self.teacher, self.student, self.config, self.samples, self.data = teacher, student, config, samples, data
        self.pairs, self.hidden_note, self.checkpoint_dir, self.latest = pairs, hidden_note, checkpoint_dir, latest
        self.progress, self.started = progress, started
        self.attention_pairs, self.attention_note = attention
        self.step = self.epoch = self.position = self.steps_this_run = 0
        self.sums: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.saved_step, self.last_checkpoint = None, None
        self.snapshot, self.updating, self.saving = None, False, False
        self.captures: list[HiddenCapture] = []
        self.attention_captures: list[AttentionCapture] = []
        self.zero_masks: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        self.teacher_cache = _cache_for(teacher_cache, samples, data) if config.cache_teacher else None
        self.cache_counts = (self.teacher_cache.hits, self.teacher_cache.misses) if self.teacher_cache is not None else (0, 0)

    def train(self) -> dict:
        import accelerate
        from accelerate.utils import set_seed

        config, student_module, teacher_module = self.config, self.student.module, self.teacher.module
        self.accelerator = accelerator = accelerate.Accelerator()
        set_seed(config.seed)
        self.sampler = EpochShuffle(len(self.samples), config.seed)
        loader = torch.utils.data.DataLoader(self.samples, batch_size=config.batch_size, sampler=self.sampler, drop_last=True,
                                             collate_fn=as_is, generator=torch.Generator().manual_seed(config.seed))
        frozen = [p for m in student_module.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()
                  if p.requires_grad] if config.freeze_embeddings else []
        for p in frozen:
            p.requires_grad_(False)
        try:
            optimizer = torch.optim.AdamW(_parameter_groups(student_module, config.weight_decay), lr=config.learning_rate)
        except InputError:
            for p in frozen:
                p.requires_grad_(True)
            raise
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, Warmup(config.warmup_steps))
        student_training, teacher_training, teacher_device = student_module.training, teacher_module.training, _device_of(teacher_module)
        self.module = student_module
        try:
            self.module, self.optimizer, self.loader, self.scheduler = accelerator.prepare(student_module, optimizer, loader, scheduler)
            _set_training(teacher_module.to(accelerator.device), False)
            _set_training(self.module, True)
            self.zero_masks = _zero_masks(self.module)
            if self.pairs:
                self.captures.append(HiddenCapture(teacher_module, [t for t, _ in self.pairs], "teacher"))
                self.captures.append(HiddenCapture(student_module, [s for _, s in self.pairs], "student"))
            if self.attention_pairs:
                self.attention_captures = [AttentionCapture(teacher_module, [t for t, _ in self.attention_pairs], "teacher"),
                                           AttentionCapture(student_module, [s for _, s in self.attention_pairs], "student")]
                self.captures += self.attention_captures
            self.steps_per_epoch = len(self.loader)
            if not self.steps_per_epoch:
                raise InputError(f"distillation data makes no full batch of {config.batch_size} per process; give more data or a smaller --distill-batch")
            resumed_from = self._resume() if self.latest is not None else None
            compared = [s for _, s in self.attention_pairs]
            with eager_attention([self.teacher, self.student], self.student, compared) if compared else contextlib.nullcontext():
                stopped_by = self._loop()
        finally:
            for capture in self.captures:
                capture.remove()
            self.student.module = _set_training(accelerator.unwrap_model(self.module, keep_fp32_wrapper=False).cpu(), student_training)
            _set_training(teacher_module.to(teacher_device), teacher_training)
            accelerator.free_memory()
            for p in frozen:  # Module.to() moves parameters in place, so these are the student's own
                p.requires_grad_(True)
        return self._report(stopped_by, resumed_from, accelerate.__version__)

    def _loop(self) -> str:
        from tqdm import tqdm

        show = self.progress is not None and not getattr(self.progress, "quiet", False) and self.accelerator.is_main_process
        bar = tqdm(total=self._total_steps(), initial=self.step, disable=not show, file=getattr(self.progress, "stream", None) or sys.stderr,
                   desc="distill", unit="step", dynamic_ncols=True)
        with DeferredInterrupt(self._say) as interrupt:
            try:
                stop = self._stop_reason()
                while stop is None:
                    stop = self._epoch(interrupt, bar)
                self._save()  # the end, whatever ended it
            except KeyboardInterrupt as exc:
                self._save_on_interrupt()
                exc.checkpoint = self.last_checkpoint  # the CLI names it, and says nothing of checkpoints where none exists
                raise
            finally:
                bar.close()
        return stop

    def _epoch(self, interrupt: "DeferredInterrupt", bar) -> str | None:
        self.loader.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch)  # also where accelerate's set_epoch cannot reach it (skipping, sharded)
        loader = self.accelerator.skip_first_batches(self.loader, self.position) if self.position else self.loader
        stop = None
        try:
            for batch in loader:
                self._step(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{self.last['total']:.4g}", **self._time_left(), refresh=False)
                stop = self._stop_reason()
                if interrupt.requested:
                    self._save()
                    interrupt.fire()
                if stop is None and self.step % self.config.checkpoint_every == 0:
                    self._save()
                if stop is not None or self.position == 0:
                    break
        finally:
            getattr(loader, "end", lambda: None)()  # leaving early would keep the loader in accelerate's gradient state
        return stop

    def _step(self, batch: dict[str, torch.Tensor]) -> None:
        config = self.config
        self.snapshot = StepSnapshot(self.module)
        self.optimizer.zero_grad(set_to_none=True)
        teacher_out, teacher_hidden, teacher_attention = self._teacher(batch)
        student_out = flatten_outputs(self.module(*_inputs(batch, self.student)))[0]
        mask = batch.get("attention_mask")
        terms = {"output": output_loss(self.student.task, student_out, teacher_out, config.temperature, mask)}
        total = config.output_weight * terms["output"]
        if self.pairs:
            per_pair = []
            for (t_path, s_path), t_hidden in zip(self.pairs, teacher_hidden):
                s_hidden = self.captures[1].take(s_path)
                same_shape(s_hidden, t_hidden, f"the student's {s_path!r} output", f"the teacher's {t_path!r}")
                per_pair.append(hidden_loss(config.hidden_loss, s_hidden, t_hidden, mask))
            terms["hidden"] = torch.stack(per_pair).mean()
            total = total + config.hidden_weight * terms["hidden"]
        if self.attention_pairs:
            per_pair = [attention_kl(self.attention_captures[1].take(s_path), t_probs, mask)
                        for (_, s_path), t_probs in zip(self.attention_pairs, teacher_attention)]
            terms["attention"] = torch.stack(per_pair).mean()
            total = total + config.attention_weight * terms["attention"]
        self.accelerator.backward(total)
        if config.grad_clip is not None:
            self.accelerator.clip_grad_norm_(self.module.parameters(), config.grad_clip)
        self.updating = True
        self.optimizer.step()
        with torch.no_grad():
            for weight, keep in self.zero_masks:
                weight.mul_(keep)
        self.scheduler.step()
        self.step, self.steps_this_run, self.position = self.step + 1, self.steps_this_run + 1, self.position + 1
        if self.position == self.steps_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        self.updating, self.snapshot = False, None
        values = {"total": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        self.last = values
        self.sums = {k: self.sums.get(k, 0.0) + v for k, v in values.items()}

    def _teacher(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The teacher's output, paired hidden states and paired attention probabilities for the
        batch: from the cache where every sample of it is there, else computed (and stored)."""
        index, length = batch.pop(INDEX).cpu(), sequence_length(batch)
        cache, hidden_count = self.teacher_cache, len(self.pairs)
        names = [OUTPUT, *(t for t, _ in self.pairs), *(t + SQUARE for t, _ in self.attention_pairs)]
        cached = cache.get(index, length, names) if cache is not None else None
        if cached is None:
            with torch.no_grad(), self.accelerator.autocast():
                out = flatten_outputs(self.teacher.module(*_inputs(batch, self.teacher)))[0]
                hidden = [self.captures[0].take(t) for t, _ in self.pairs]
                attention = [self.attention_captures[0].take(t) for t, _ in self.attention_pairs]
            computed = [out, *hidden, *attention]
            cached = cache.put(index, names, computed, length) if cache is not None else computed
        out, *rest = [t.to(self.accelerator.device) for t in cached]
        return out, rest[:hidden_count], rest[hidden_count:]

    def _stop_reason(self) -> str | None:
        config = self.config
        if config.max_steps is not None and self.step >= config.max_steps:
            return "max_steps"
        if config.epochs is not None and self.epoch >= config.epochs:
            return "epochs"
        if config.time_budget_s is not None and self.steps_this_run and self._agree(time.perf_counter() - self.started >= config.time_budget_s):
            return "time_budget"
        return None

    def _time_left(self) -> dict[str, str]:
        """The ETA of a time-budgeted run, which the bar cannot know from a step count."""
        if self.config.time_budget_s is None:
            return {}
        left = max(0.0, self.config.time_budget_s - (time.perf_counter() - self.started))
        return {"left": f"{int(left // 60)}m{int(left % 60):02d}s"}

    def _agree(self, flag: bool) -> bool:
        """The main process's answer, on every process (clocks differ; all must stop at the same step)."""
        if self.accelerator.num_processes == 1:
            return flag
        from accelerate.utils import broadcast

        return bool(broadcast(torch.tensor([int(flag)], device=self.accelerator.device)).item())

    def _total_steps(self) -> int | None:
        limits = [self.config.max_steps, self.config.epochs * self.steps_per_epoch if self.config.epochs else None]
        limits = [n for n in limits if n is not None]
        return min(limits) if limits else None

    def _meta(self) -> dict:
        import accelerate

        return {"step": self.step, "epoch": self.epoch, "position": self.position, "config": self.config.to_json(),
                "data": self.data, "hidden_pairs": [list(p) for p in self.pairs], "processes": self.accelerator.num_processes,
                "loss_sums": self.sums, "loss_last": self.last, "accelerate_version": accelerate.__version__}

    def _resume(self) -> int:
        meta = read_meta(self.latest)
        check_resumable(meta, self._meta(), self.latest)
        with weights_only_loads():  # tensors and RNG states only, even where accelerate would unpickle an object
            self.accelerator.load_state(str(self.latest))
        self.step, self.epoch, self.position = meta["step"], meta["epoch"], meta["position"]
        self.sums, self.last = meta["loss_sums"], meta["loss_last"]
        self.saved_step, self.last_checkpoint = self.step, self.latest
        self._say(f"distillation: resuming from {self.latest} (step {self.step})")
        return self.step

    def _save(self) -> None:
        if self.checkpoint_dir is None or self.saved_step == self.step:
            return
        self.saving = True
        self.last_checkpoint = save_checkpoint(self.accelerator, self.checkpoint_dir, self.step, self._meta())
        self.saved_step, self.saving = self.step, False

    def _save_on_interrupt(self) -> None:
        if self.checkpoint_dir is None or self.saving:
            return
        if self.updating:
            self._say(f"distillation: interrupted while updating the weights; resume from {self.last_checkpoint or 'the start'}")
            return
        if self.snapshot is not None:  # half a step ran: undo what it drew from the RNG and wrote to buffers
            self.snapshot.restore()
            self.snapshot = None
        self._save()
        self._say(f"distillation: interrupted; saved {self.last_checkpoint}, continue with --resume")

    def _say(self, text: str) -> None:
        if self.progress is not None and self.accelerator.is_main_process:
            self.progress.say(text)

    def _report(self, stopped_by: str, resumed_from: int | None, version: str) -> dict:
        return {
            "steps": self.step,
            "steps_this_run": self.steps_this_run,
            "epochs_seen": round(self.step / self.steps_per_epoch, 3),
            "steps_per_epoch": self.steps_per_epoch,
            "samples": self.data["samples"],
            "augmentation": self.data.get("augmentation", {"copies": 0}),
            "batch_size": self.config.batch_size,
            "loss": {k: {"final": round(v, 6), "mean": round(self.sums[k] / max(self.step, 1), 6)} for k, v in self.last.items()},
            "hidden_pairs": [list(p) for p in self.pairs],
            "hidden_note": self.hidden_note,
            "attention_pairs": [list(p) for p in self.attention_pairs],
            "attention_note": self.attention_note,
            "teacher_cache": self.teacher_cache.report(*self.cache_counts) if self.teacher_cache is not None else {"used": False, "note": "cache_teacher is off"},
            "zeros_kept": sum(int((~keep).sum()) for _, keep in self.zero_masks),
            "learning_rate_schedule": f"linear warmup over {self.config.warmup_steps} steps, then constant {self.config.learning_rate}",
            "wall_s": round(time.perf_counter() - self.started, 2),
            "stopped_by": stopped_by,
            "resumed_from_step": resumed_from,
            "checkpoint": str(self.last_checkpoint) if self.last_checkpoint is not None else None,
            "accelerate_version": version,
            "device": str(self.accelerator.device),
            "processes": self.accelerator.num_processes,
        }


def _inputs(batch: dict[str, torch.Tensor], model: Model) -> list[torch.Tensor]:
    return [batch[s.name].to(DTYPES[s.dtype]) for s in model.inputs]


def _set_training(module: torch.nn.Module, training: bool) -> torch.nn.Module:
    """``module.train(training)``, except for a torch.export module (a .pt2 input), which refuses
    both train() and eval(): its dropout and batch-norm behaviour was fixed when it was exported
    (in eval mode, as models are exported), and its weights still take gradients."""
    try:
        module.train(training)
    except NotImplementedError:
        pass
    return module


def _device_of(module: torch.nn.Module) -> torch.device:
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _zero_masks(module: torch.nn.Module) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """(weight, nonzero mask) of every trainable matrix or kernel holding exact zeros: a pruned
    student's zeros must stay zeros, which AdamW would otherwise regrow. Dense weights hold none."""
    return [(p, p.detach() != 0) for p in module.parameters() if p.requires_grad and p.dim() >= 2 and not bool(p.detach().all())]


def _parameter_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only: decaying biases and norm scales only hurts."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable:
        raise InputError("the student has no trainable parameters; nothing can be distilled into it")
    groups = [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _cache_for(shared: TeacherCache | None, samples: Samples, data: dict) -> TeacherCache:
    """The cache the caller shares where it was built for these very samples, else a fresh one."""
    digest = f"{data.get('sha256')} {sorted(data.get('augmentation', {}).items())}"  # the same texts, augmented alike
    if shared is not None and shared.serves(len(samples), samples.sequence, digest):
        return shared
    return TeacherCache(len(samples), samples.sequence, digest)
