"""``run``: the one pipeline behind both the CLI and the Python API.

It walks the recipe in order, calling each step's handler from the registry, after refusing a
recipe it cannot run as written (``plan_recipe``) and before writing anything. Measurement
order keeps timings honest: the original on PyTorch first (before any ONNX Runtime session
exists, so ORT's worker threads cannot steal its cores), PyTorch artifacts as their steps make
them, the ONNX files last. Everything goes into a staged directory that replaces the output
only when the run succeeds, with report.json and a manifest.json whose recipe replays the run.
"""

from __future__ import annotations

import shutil

from compress.core.atomic import StagedDir
from compress.core.errors import ConfigError
from compress.core.model import Model
from compress.core.output_dir import check_output_dir
from compress.core.progress import Progress
from compress.core.registry import MODEL_PASS, StepConfig
from compress.passes.distill import DistillConfig
from compress.pipeline.int8_guard import check_tolerance
from compress.pipeline.measure import measure_onnx, measure_torch
from compress.pipeline.options import RunOptions, RunResult
from compress.pipeline.plan import plan_recipe
from compress.pipeline.report import report_header, write_report
from compress.pipeline.int8_decisions import int8_decisions
from compress.pipeline.run_data import RunData, check_data_paths, data_files
from compress.pipeline.state import RunState
from compress.pipeline.steps.model_passes import after_model_pass, checkpoint_dir_for
from export.bundle.manifest import write_manifest

# The ONNX files a run can make, in the order they are measured, and their report names.
ONNX_ROWS = (("onnx-fp32", "onnx"), ("onnx-int8", "onnx-int8"), ("onnx-int8-qdq", "onnx-qdq"))


def run(model: Model, recipe: list[StepConfig], options: RunOptions, progress: Progress | None = None) -> RunResult:
    progress = progress or Progress(quiet=True)
    recipe = list(recipe)
    planned = plan_recipe(recipe, model)  # refuses, before any work, a recipe it cannot run as written
    check_output_dir(options.out_dir, model.source, options.force, options.force_any)
    check_data_paths(options)
    if options.calib is not None and not any(step.config.uses_calibration() for step in planned):
        raise ConfigError(f"--calib {options.calib} would not be used: no step of this recipe calibrates (dynamic INT8 measures "
                          "activation ranges as it runs); drop --calib, or ask for a step that calibrates (--int8-mode static)")
    report = report_header(model, recipe, options)
    with StagedDir(options.out_dir) as stage:
        with progress.step("Preparing evaluation data"):
            data = RunData.prepare(model, options, with_validation=any(getattr(s.handler, "uses_validation", False) for s in planned))
            report["data"] = {"evaluation": data.evaluation.source, **({"validation": data.validation.source} if data.validation else {})}
        state = RunState(model, options, progress, stage, report, data)
        if not model.is_onnx:
            measure_torch(state, "pytorch-fp32", model, title="Measuring PyTorch FP32")
        for i, step in enumerate(planned):
            step.handler(step.config, state)
            if step.config.kind is MODEL_PASS:
                following = planned[i + 1].config if i + 1 < len(planned) else None
                after_model_pass(state, step.config, following, step.ends_model_passes)
        if options.calib is not None and not data.calibration_used:  # e.g. auto mode chose dynamic INT8 for an ONNX transformer
            report["data"]["calibration"] = f"{options.calib} not used: dynamic INT8 measures activation ranges as it runs"
            progress.warn(f"--calib {options.calib} was not used: auto mode quantized this graph (no convolutions) with dynamic "
                          "INT8 and the accuracy guard did not need calibrated INT8; pass --int8-mode static to calibrate on it")
        for name, artifact in ONNX_ROWS:
            if artifact in state.files:
                disabled = state.runtime.get(state.files[artifact].name, {}).get("onnxruntime", {}).get("disabled_optimizers", ())
                measure_onnx(state, name, state.files[artifact], disabled)
        tolerance = check_tolerance(state)
        if tolerance is not None:
            report["tolerance"] = tolerance
        write_report(stage, report, state.rows, progress)
        manifest = write_manifest(
            stage, recipe=[c.to_json() for c in recipe], model=report["model"],
            inputs=[s.to_json() for s in model.inputs], outputs=list(model.output_names),
            extra={"task": model.task, "settings": report["settings"], "runtime": state.runtime, "data_files": data_files(options),
                   **({"int8": int8_decisions(report["int8"])} if "int8" in report else {})},
        )
    if any(isinstance(c, DistillConfig) for c in recipe) and options.checkpoint_dir is None:
        shutil.rmtree(checkpoint_dir_for(options), ignore_errors=True)  # the run succeeded: nothing left to resume
    met = report.get("int8", {}).get("tolerance_met", True) and report.get("tolerance", {}).get("met", True)
    return RunResult(options.out_dir, report, manifest, met)
