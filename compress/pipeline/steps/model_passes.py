"""The PyTorch stages of a run: prune, distill with the original model as teacher, SmoothQuant.

They change a copy (the original stays the teacher and the reference). Each run of passes of
one sort is measured like every artifact (size, latency, retention against the original), so
the report shows what each stage bought: pytorch-pruned, then pytorch-pruned-distilled. After
the last model pass, a transformers model is also saved as a Hugging Face directory, model/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from compress.core.errors import InputError
from compress.core.forward_loop import forward_loop_over
from compress.core.registry import MODEL_PASS, StepConfig, register_handler
from compress.load.data import Dataset, default_data, load_data_file
from compress.load.hf_pruned import save_hf_dir
from compress.passes.distill import DistillConfig, distill
from compress.passes.prune import PRUNE_CONFIGS, prune_
from compress.passes.smoothquant import SmoothQuantConfig, smooth_quant_
from compress.pipeline.measure import measure_torch
from compress.pipeline.options import RunOptions
from compress.pipeline.state import RunState

DISTILL_SAMPLES = 100_000  # every text of the built-in corpus; a file is read whole
SMOOTHQUANT_SAMPLES = 256
HF_DIR = "model"


@register_handler(*PRUNE_CONFIGS)
def prune_step(config: StepConfig, state: RunState) -> None:
    student = state.model_to_change()
    with state.progress.step(f"Pruning ({type(config).__name__})"):
        calibration = state.data.calibration(state.options.prune_samples).batches if config.uses_calibration() else None
        section = prune_(student, config, forward_loop_over(calibration) if calibration is not None else None)
        before, after = section.get("parameters_before"), section.get("parameters_after")
        if before and after:
            state.progress.say(f"  parameters {before:,} -> {after:,}")
    _record(state, config, section, "pruned")


@register_handler(DistillConfig)
def distill_step(config: DistillConfig, state: RunState) -> None:
    options, student = state.options, state.model_to_change()
    with state.progress.step("Distilling from the original model"):
        data = distill_data(state.original, options)
        checkpoints = checkpoint_dir_for(options)
        if options.checkpoint_dir is None and options.force and not options.resume:
            shutil.rmtree(checkpoints, ignore_errors=True)  # --force starts over; --resume keeps them
        section = distill(state.original, student, config, data.batches, checkpoint_dir=checkpoints,
                          resume=options.resume, progress=state.progress)
        section["data"] = data.source
        state.progress.say(f"  {section['steps']} steps, stopped by {section['stopped_by']}")
    _record(state, config, section, "distilled")


@register_handler(SmoothQuantConfig)
def smoothquant_step(config: SmoothQuantConfig, state: RunState) -> None:
    """SmoothQuant on its own, before export: the exported (and then quantized) model is the smoothed one."""
    model = state.model_to_change()
    with state.progress.step(f"SmoothQuant (alpha {config.alpha})"):
        calibration = state.data.calibration(SMOOTHQUANT_SAMPLES)
        section = smooth_quant_(model, config, forward_loop_over(calibration.batches), calibration.batches[0])
        state.progress.say(f"  {len(section['groups'])} groups of Linear layers smoothed")
    _record(state, config, section, "smoothed")


def _record(state: RunState, config: StepConfig, section: dict, change: str) -> None:
    state.report.setdefault("model_passes", {"stages": []})["stages"].append({"step": type(config).__name__, **section})
    state.changes.append(change)


def after_model_pass(state: RunState, config: StepConfig, following: StepConfig | None, last_model_pass: bool) -> None:
    """Measure the changed model where a run of passes of one sort ends; save it after the last pass."""
    if following is None or _sort(following) != _sort(config):
        name = "pytorch-" + "-".join(dict.fromkeys(state.changes))
        measure_torch(state, name, state.model)
    if last_model_pass:
        _save_hf_dir(state)


def _sort(config: StepConfig) -> str | None:
    """Passes of one sort are measured together: every pruning, then every distillation."""
    if isinstance(config, PRUNE_CONFIGS):
        return "prune"
    return type(config).__name__ if config.kind is MODEL_PASS else None


def _save_hf_dir(state: RunState) -> None:
    section = state.report["model_passes"]
    if state.model.hf_model is None:
        return
    if "smoothed" in state.changes:  # explicit input scales are not a transformers layer: the directory would not load
        section["saved"] = None
        section["not_saved"] = "SmoothQuant's explicit input scales are not a transformers layer; model.onnx holds the smoothed model"
        return
    save_hf_dir(state.model, state.stage / HF_DIR, force=True)
    section["saved"] = f"{HF_DIR}/ (Hugging Face directory; compress and transformers-compatible loaders open it)"


def distill_data(model, options: RunOptions) -> Dataset:
    if options.distill is not None:
        if options.eval is not None and Path(options.distill).resolve() == Path(options.eval).resolve():
            raise InputError("--distill and --eval name the same file; evaluate on data the model was not distilled on")
        return load_data_file(options.distill, model, batch_size=16, seq_len=options.seq_len)
    if model.tokenizer is None:
        raise InputError("distillation needs unlabeled inputs for this model; give --distill FILE (.npz or .jsonl with its inputs)")
    return default_data(model, "calibration", DISTILL_SAMPLES, 16, options.seq_len)


def checkpoint_dir_for(options: RunOptions) -> Path:
    """Beside the output, not inside the staged directory, so an interrupted run keeps them
    (the run deletes this default one once it has succeeded)."""
    if options.checkpoint_dir is not None:
        return Path(options.checkpoint_dir)
    out = Path(options.out_dir)
    return out.parent / f"{out.name}.checkpoints"
