"""The PyTorch stages of a run: prune, then distill with the original model as teacher.

They work on a copy (the caller's model stays the teacher and the reference), and each stage is
measured like every artifact (size, latency, retention against the original), so the report
shows what each stage bought. A transformers model is also saved as a Hugging Face directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.backends import TorchBackend, run_all, time_batches
from bench.report import artifact_row
from bench.retention import retention
from compress.data import Dataset, default_data, load_data_file
from compress.errors import InputError
from compress.model import Model, module_bytes
from compress.passes.distill import DistillConfig, distill
from compress.passes.prune import PRUNE_CONFIGS, prune_
from compress.passes.quantize import clone_model
from compress.progress import Progress

MODEL_PASSES = (*PRUNE_CONFIGS, DistillConfig)
DISTILL_SAMPLES = 100_000  # every text of the built-in corpus; a file is read whole


def model_passes(recipe) -> list:
    return [c for c in recipe if isinstance(c, MODEL_PASSES)]


def apply_model_passes(model: Model, recipe, options, progress: Progress, stage: Path, evaluation: Dataset,
                       latency_inputs: dict, reference, calibration) -> tuple[Model, list[dict], dict]:
    """Run the prune and distill steps in recipe order on a copy of ``model``; returns
    (the changed copy, a result row per stage, the report section)."""
    passes = model_passes(recipe)
    student, rows, report = clone_model(model), [], {"stages": []}
    pending: list[str] = []
    for i, config in enumerate(passes):
        if isinstance(config, DistillConfig):
            with progress.step("Distilling from the original model"):
                data = _distill_data(model, options)
                checkpoints = checkpoint_dir_for(options)
                if options.checkpoint_dir is None and options.force and not options.resume:
                    shutil.rmtree(checkpoints, ignore_errors=True)  # --force starts over; --resume keeps them
                section = distill(model, student, config, data.batches, checkpoint_dir=checkpoints,
                                  resume=options.resume, progress=progress)
                section["data"] = data.source
                progress.say(f"  {section['steps']} steps, stopped by {section['stopped_by']}")
            pending.append("distilled")
        else:
            with progress.step(f"Pruning ({type(config).__name__})"):
                section = prune_(student, config, calibration)
                before, after = section.get("parameters_before"), section.get("parameters_after")
                if before and after:
                    progress.say(f"  parameters {before:,} -> {after:,}")
            pending.append("pruned")
        report["stages"].append({"step": type(config).__name__, **section})
        last_of_kind = i + 1 == len(passes) or isinstance(passes[i + 1], DistillConfig) != isinstance(config, DistillConfig)
        if last_of_kind:
            name = "pytorch-" + "-".join(dict.fromkeys(pending))
            rows.append(_measure(name, student, evaluation, latency_inputs, reference, options, progress))
    if student.hf_model is not None:
        from compress.hf_pruned import save_hf_dir

        save_hf_dir(student, stage / "model", force=True)
        report["saved"] = "model/ (Hugging Face directory; compress and transformers-compatible loaders open it)"
    return student, rows, report


def _measure(name, model: Model, evaluation, latency_inputs, reference, options, progress: Progress) -> dict:
    with progress.step(f"Measuring {name}"), TorchBackend(model.forward_numpy, options.threads) as backend:
        outputs = run_all(backend, evaluation.batches)
        kept = retention(model.task, reference, outputs, evaluation.labels)
        return artifact_row(name, "torch", "fp32", None, module_bytes(model.module), time_batches(backend, latency_inputs, options.min_seconds), kept)


def _distill_data(model: Model, options) -> Dataset:
    if options.distill is not None:
        if options.eval is not None and Path(options.distill).resolve() == Path(options.eval).resolve():
            raise InputError("--distill and --eval name the same file; evaluate on data the model was not distilled on")
        return load_data_file(options.distill, model, batch_size=16, seq_len=options.seq_len)
    if model.tokenizer is None:
        raise InputError("distillation needs unlabeled inputs for this model; give --distill FILE (.npz or .jsonl with its inputs)")
    return default_data(model, "calibration", DISTILL_SAMPLES, 16, options.seq_len)


def checkpoint_dir_for(options) -> Path:
    """Beside the output, not inside the staged directory, so an interrupted run keeps them
    (the runner deletes this default one once the whole run has succeeded)."""
    if options.checkpoint_dir is not None:
        return Path(options.checkpoint_dir)
    out = Path(options.out_dir)
    return out.parent / f"{out.name}.checkpoints"
