"""Distillation checkpoints: Accelerate's saved state plus where the run stood.

Each checkpoint is ``step-XXXXXX/`` in the checkpoint directory: what ``accelerator.save_state``
writes (student weights, optimizer, scheduler, every RNG) and ``distill.json`` (step, epoch,
position in the epoch, config, data fingerprint, hidden pairs, loss sums). It is written under a
hidden temporary name and renamed into place, so a checkpoint either exists whole or not at all;
only the newest two are kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from compress.core.errors import InputError, OutputError

META_FILE = "distill.json"
KEEP = 2
# Settings that only say when to stop or save: a resumed run may change them and still follows
# the same trajectory (the learning rate is constant after warmup, so it never depends on them).
MAY_CHANGE_ON_RESUME = ("max_steps", "epochs", "time_budget_s", "checkpoint_every")
_NAME = re.compile(r"step-(\d+)")


def checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if (m := _NAME.fullmatch(p.name)) and (p / META_FILE).is_file()]
    return [p for _, p in sorted(found)]


def open_directory(directory: Path, resume: bool) -> Path | None:
    """Check ``directory`` for a fresh or a resumed run; returns the checkpoint to resume from."""
    for stale in directory.glob(".step-*.tmp") if directory.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)  # a save cut short; the rename never happened
    existing = checkpoints(directory)
    if resume and not existing:
        raise InputError(f"there is nothing to resume: {directory} holds no distillation checkpoint; drop --resume to start afresh")
    if not resume and existing:
        raise OutputError(f"{directory} already holds checkpoints of an earlier distillation ({existing[-1].name}); "
                          "pass --resume to continue it, or delete them or choose another directory to start afresh")
    return existing[-1] if existing else None


def read_meta(checkpoint: Path) -> dict:
    try:
        return json.loads((checkpoint / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"checkpoint {checkpoint} cannot be read ({exc}); delete it to resume from the one before") from exc


def check_resumable(meta: dict, now: dict, checkpoint: Path) -> None:
    """Refuse to resume when anything that shapes the training trajectory differs from the checkpoint's."""
    then_config, now_config = meta["config"]["data"], now["config"]["data"]
    differ = [f"{k} (checkpoint {then_config.get(k)!r}, now {v!r})" for k, v in now_config.items()
              if k not in MAY_CHANGE_ON_RESUME and then_config.get(k) != v]
    if meta["data"] != now["data"]:
        differ.append(f"data (checkpoint {meta['data']['samples']} samples, sha256 {meta['data']['sha256'][:12]}; "
                      f"now {now['data']['samples']} samples, sha256 {now['data']['sha256'][:12]})")
    if meta["hidden_pairs"] != now["hidden_pairs"]:
        differ.append("hidden_pairs")
    if meta["processes"] != now["processes"]:
        differ.append(f"number of processes (checkpoint {meta['processes']}, now {now['processes']})")
    if differ:
        raise InputError(f"checkpoint {checkpoint} was made with different settings: {'; '.join(differ)}; "
                         "resume with the same settings, or start afresh in an empty checkpoint directory")


def save_checkpoint(accelerator, directory: Path, step: int, meta: dict) -> Path:
    """Write ``step-XXXXXX`` atomically on every process's behalf; keep the newest ``KEEP``."""
    final = directory / f"step-{step:06d}"
    temporary = directory / f".{final.name}.tmp"
    if accelerator.is_main_process:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()  # every process has written its RNG state
    if accelerator.is_main_process:
        (temporary / META_FILE).write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        for old in checkpoints(directory)[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
