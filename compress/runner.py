"""``run``: the one pipeline behind both the CLI and the Python API.

load → measure the original → export ONNX (verified) → INT8 → measure every artifact →
manifest + report, all written into a staged directory that replaces the output at the end.
PyTorch is timed before any ONNX Runtime session exists, so ORT's worker threads cannot
steal its cores.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench.environment import capture as capture_environment
from bench.backends import OrtBackend, TorchBackend, run_all, time_batches
from bench.report import add_speedups, artifact_row
from bench.retention import retention
from compress.config import StepConfig
from compress.data import Dataset, default_data, load_data_file
from compress.errors import InputError
from compress.model import Model, module_bytes
from compress.int8_kernels_step import torch_int8
from compress.int8_static_step import static_int8, validation_split
from compress.tensorrt_step import tensorrt_step
from compress.model_passes_step import apply_model_passes, checkpoint_dir_for, model_passes
from compress.passes.distill import DistillConfig
from compress.passes.int8_dynamic import Int8DynamicConfig
from compress.outputs import StagedDir, check_output_dir
from compress.passes.int8_search import Int8SearchConfig
from compress.passes.quantize import Int8StaticConfig
from compress.progress import Progress
from compress.spec import random_inputs
from export.calibrate import forward_loop_over
from export.manifest import write_manifest
from export.onnx_export import OnnxExportConfig, export_onnx
from export.ort_int8 import FusionHint, OnnxInt8Config, quantize_onnx_int8, resolve_mode
from export.tensorrt import TensorRTEngineConfig
from export.parity import check_parity

REPORT_NAME = "report.json"
REPORT_SCHEMA = "compress.report/1"


@dataclass(frozen=True)
class RunOptions:
    """How to run and measure; the recipe says what to do to the model."""

    out_dir: Path
    force: bool = False
    calib: Path | None = None
    eval: Path | None = None
    batch_sizes: tuple[int, ...] = (1, 16)
    seq_len: int = 128
    threads: int = 2
    eval_samples: int = 128
    min_seconds: float = 2.0  # per latency measurement
    metric: object = None  # for the INT8 search: metric(reference, outputs, labels) -> score, higher is better
    distill: Path | None = None  # unlabeled data for distillation [default: the built-in docstring text]
    checkpoint_dir: Path | None = None  # distillation checkpoints [default: OUT.checkpoints beside the output]
    resume: bool = False  # continue an interrupted distillation from its last checkpoint
    prune_samples: int = 64  # calibration samples for Taylor importance


@dataclass
class RunResult:
    out_dir: Path
    report: dict
    manifest: dict = field(default_factory=dict)
    tolerance_met: bool = True  # False when an INT8 search found nothing within --max-drop


def default_recipe(int8: bool) -> list[StepConfig]:
    return [OnnxExportConfig(), *([OnnxInt8Config()] if int8 else [])]


def run(model: Model, recipe: list[StepConfig], options: RunOptions, progress: Progress | None = None) -> RunResult:
    progress = progress or Progress(quiet=True)
    check_output_dir(options.out_dir, model.source, options.force)
    export_cfg = next((c for c in recipe if isinstance(c, OnnxExportConfig)), OnnxExportConfig())
    int8_cfg = next((c for c in recipe if isinstance(c, (OnnxInt8Config, Int8StaticConfig, Int8SearchConfig, Int8DynamicConfig))), None)
    if isinstance(int8_cfg, Int8DynamicConfig) and model.is_onnx:
        raise InputError("--backend torch quantizes the PyTorch model; this input is ONNX, so drop --backend torch "
                         "(ONNX Runtime INT8) or give the model's PyTorch form")
    static = isinstance(int8_cfg, (Int8StaticConfig, Int8SearchConfig))
    report = _report_header(model, recipe, options)

    with StagedDir(options.out_dir) as stage:
        with progress.step("Preparing evaluation data"):
            evaluation = _evaluation_data(model, options)
            validation = None
            if static:
                validation, evaluation = validation_split(model, evaluation, options.eval is not None, options.seq_len)
            latency_inputs = _latency_inputs(model, options)
            report["data"] = {"evaluation": evaluation.source, **({"validation": validation.source} if validation else {})}
        rows, reference = [], None
        if not model.is_onnx:
            with progress.step("Measuring PyTorch FP32"), TorchBackend(model.forward_numpy, options.threads) as torch_backend:
                reference = run_all(torch_backend, evaluation.batches)
                rows.append(artifact_row("pytorch-fp32", "torch", "fp32", None, module_bytes(model.module),
                                         time_batches(torch_backend, latency_inputs, options.min_seconds), None))
        if model_passes(recipe):
            if model.is_onnx:
                raise InputError("pruning and distillation change PyTorch weights; give the model's PyTorch form (HF dir, .pt2, .pt), not ONNX")
            calibration = _calibration_data(model, options, options.prune_samples)
            model, stage_rows, report["model_passes"] = apply_model_passes(
                model, recipe, options, progress, stage, evaluation, latency_inputs, reference, forward_loop_over(calibration.batches))
            rows.extend(stage_rows)
        if not model.is_onnx:
            with progress.step(f"Exporting ONNX (opset {export_cfg.opset}) and checking parity"):
                fp32_path = stage / "model.onnx"
                parity_sets = parity_inputs(model)
                export_onnx(model, parity_sets[0], fp32_path, export_cfg)
                parity = check_parity(model, fp32_path, parity_sets, export_cfg.atol, export_cfg.rtol)
                report["export"] = {"opset": export_cfg.opset, "parity": parity.to_json()}
                progress.say(f"  parity: max abs error {parity.max_abs_error:.2e}, max rel error {parity.max_rel_error:.2e}")
        else:
            fp32_path = stage / "model.onnx"
            shutil.copyfile(model.source, fp32_path)
            report["export"] = {"skipped": "the input is already ONNX; it is the reference"}

        int8_path = stage / "model.int8.onnx"
        if isinstance(int8_cfg, Int8DynamicConfig):  # before any ORT session: its threads would slow PyTorch
            with progress.step("Quantizing to INT8 in PyTorch (compress kernels) and measuring model.int8.pt2"):
                row, report["int8"] = torch_int8(model, int8_cfg, stage, parity_sets, evaluation, latency_inputs, reference, options)
                rows.append(row)
                kernels = report["int8"]["kernels"]
                progress.say(f"  {report['int8']['quantized_layers']} Linear layers INT8 ({len(report['int8']['fused_gelu'])} with GELU fused); "
                             f"kernels: {kernels['backend']} ({kernels['cpu_isa']})" + (f"; {kernels['reason']}" if kernels["reason"] else ""))
        elif static:
            title = "Searching INT8 configurations" if isinstance(int8_cfg, Int8SearchConfig) else "Quantizing to static INT8"
            with progress.step(title):
                calib = _calibration_data(model, options, int8_cfg.calibration_samples)
                report["data"]["calibration"] = calib.source
                largest = max(latency_inputs)
                report["int8"] = static_int8(
                    model, int8_cfg, fp32_path, stage, calib, validation, latency_inputs[largest][0], options.threads, progress,
                    options.metric, lambda path: _dynamic_candidate(fp32_path, path))
        elif int8_cfg is not None:
            with progress.step("Quantizing to INT8 (ONNX Runtime, CPU integer ops)"):
                report["int8"] = _quantize(model, fp32_path, int8_path, int8_cfg, options, latency_inputs, report)
                chosen = report["int8"]
                progress.say(f"  activations: {chosen['mode']}, transformer fusions: {chosen['transformer_fusions']}, "
                             f"ORT optimizers off at load: {chosen['onnxruntime_disabled_optimizers'] or 'none'}")

        engine_cfg = next((c for c in recipe if isinstance(c, TensorRTEngineConfig)), None)
        if engine_cfg is not None and (stage / "model.int8.qdq.onnx").exists():
            with progress.step("Building the TensorRT engine"):
                report["tensorrt"] = tensorrt_step(stage, stage / "model.int8.qdq.onnx", model.inputs, engine_cfg, progress)

        runtime = {}  # per file: how ONNX Runtime should load it (also in the manifest)
        if "int8" in report and not isinstance(int8_cfg, Int8DynamicConfig):
            runtime[int8_path.name] = {"onnxruntime": {"disabled_optimizers": report["int8"]["onnxruntime_disabled_optimizers"]}}
        qdq_path = stage / "model.int8.qdq.onnx"
        for name, path in (("onnx-fp32", fp32_path), ("onnx-int8", int8_path), ("onnx-int8-qdq", qdq_path)):
            if not path.exists():
                continue
            disabled = runtime.get(path.name, {}).get("onnxruntime", {}).get("disabled_optimizers", ())
            with progress.step(f"Measuring {name}"), OrtBackend(path, options.threads, disabled) as backend:
                outputs = run_all(backend, evaluation.batches)
                if reference is None:  # an ONNX input: its FP32 run is the reference
                    reference = outputs
                kept = retention(model.task, reference, outputs, evaluation.labels)
                rows.append(artifact_row(name, "onnxruntime", name.split("-")[1], path.name, path.stat().st_size,
                                         time_batches(backend, latency_inputs, options.min_seconds), kept))
        if evaluation.labels is not None and not model.is_onnx:
            rows[0]["retention"] = retention(model.task, reference, reference, evaluation.labels)
        add_speedups(rows)
        report["results"] = rows
        report["step_seconds"] = progress.timings
        (stage / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
        manifest = write_manifest(
            stage, recipe=[c.to_json() for c in recipe], model=report["model"],
            inputs=[s.to_json() for s in model.inputs], outputs=list(model.output_names),
            extra={"task": model.task, "settings": report["settings"], "runtime": runtime, "data_files": _data_files(options)},
        )
    if any(isinstance(c, DistillConfig) for c in recipe) and options.checkpoint_dir is None:
        shutil.rmtree(checkpoint_dir_for(options), ignore_errors=True)  # the run succeeded: nothing left to resume
    return RunResult(options.out_dir, report, manifest, report.get("int8", {}).get("tolerance_met", True))


def _data_files(options: RunOptions) -> dict:
    """The user's data files, so `compress bench run OUT` scores on the same held-out inputs."""
    return {name: str(Path(p).resolve()) for name, p in (("evaluation", options.eval), ("calibration", options.calib)) if p is not None}


def _dynamic_candidate(fp32_path: Path, out_path: Path) -> Path | None:
    """Dynamic per-channel INT8 as the search's cheapest candidate, where ORT's quantizer can make it."""
    from compress.errors import QuantizationError

    try:
        quantize_onnx_int8(fp32_path, out_path, OnnxInt8Config(mode="dynamic", graph_optimization="off"))
    except QuantizationError:
        return None
    return out_path


def _report_header(model: Model, recipe: list[StepConfig], options: RunOptions) -> dict:
    return {
        "schema": REPORT_SCHEMA,
        "model": {"source": str(model.source), "format": model.format, "task": model.task,
                  "inputs": [str(s) for s in model.inputs], "outputs": list(model.output_names), "notes": model.notes},
        "recipe": [c.to_json() for c in recipe],
        "settings": {"threads": options.threads, "sequence_length": options.seq_len, "batch_sizes": list(options.batch_sizes)},
        "environment": capture_environment(options.threads),  # the same record `compress bench run` keeps
    }


def _evaluation_data(model: Model, options: RunOptions) -> Dataset:
    if options.eval is not None:
        data = load_data_file(options.eval, model, batch_size=16, seq_len=options.seq_len, samples=options.eval_samples)
    else:
        data = default_data(model, "evaluation", options.eval_samples, 16, options.seq_len)
    if options.calib is not None and options.eval is not None and Path(options.calib).resolve() == Path(options.eval).resolve():
        raise InputError("--eval and --calib name the same file; evaluate on data the model was not calibrated on")
    return data


def _calibration_data(model: Model, options: RunOptions, samples: int) -> Dataset:
    if options.calib is not None:
        return load_data_file(options.calib, model, batch_size=16, seq_len=options.seq_len, samples=samples)
    return default_data(model, "calibration", samples, 16, options.seq_len)


def _latency_inputs(model: Model, options: RunOptions) -> dict[int, list[dict]]:
    """Four different batches per size, from held-out evaluation text when there is a tokenizer."""
    out = {}
    for bs in options.batch_sizes:
        data = default_data(model, "evaluation", 4 * bs, bs, options.seq_len)
        out[bs] = data.batches[:4]
    return out


def parity_inputs(model: Model) -> list[dict]:
    """Two shapes, so the check also proves the dynamic axes work."""
    sets = []
    for batch, seq, seed in ((2, 16, 11), (3, 24, 12)):
        if model.tokenizer is not None:
            from compress.data import tokenize
            from compress.text_corpus import evaluation_texts

            sets.append(tokenize(model, list(evaluation_texts()[seed:seed + batch]), seq))
        else:
            sets.append(random_inputs(model.inputs, {"batch": batch, "sequence": seq}, seed=seed))
    return sets


def _quantize(model, fp32_path, int8_path, cfg: OnnxInt8Config, options: RunOptions, latency_inputs, report) -> dict:
    import onnx

    mode = resolve_mode(onnx.load(str(fp32_path), load_external_data=False), cfg.mode)
    calibration = None
    if mode == "static":
        calib = _calibration_data(model, options, cfg.calibration_samples)
        calibration = calib.batches
        report["data"]["calibration"] = calib.source
    elif options.calib is not None:
        report["data"]["calibration"] = f"{options.calib} not used: dynamic INT8 computes activation ranges at run time"
    largest = max(latency_inputs)
    result = quantize_onnx_int8(fp32_path, int8_path, cfg, calibration, fusion_hint(model), latency_inputs[largest][0], options.threads)
    return result.to_json()


def fusion_hint(model: Model) -> FusionHint | None:
    config = getattr(model.hf_model, "config", None)
    heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
    if config is None or not heads or not hidden:
        return None
    pruned = {len(v) for v in (getattr(config, "pruned_heads", None) or {}).values()}
    if pruned:  # fused attention needs one head count for every layer: the kept one
        if len(pruned) > 1 or len(config.pruned_heads) != getattr(config, "num_hidden_layers", len(config.pruned_heads)):
            return None
        head_dim, heads = hidden // heads, heads - pruned.pop()
        hidden = heads * head_dim
    return FusionHint(config.model_type, heads, hidden)
