"""Static post-training INT8: SmoothQuant in PyTorch, export, calibrate, and write the INT8 files.

``Int8StaticConfig`` says what to build; ``StaticInt8Builder`` builds it, caching the expensive
parts (the smoothed export and its calibration) so the accuracy-aware search and the
sensitivity analysis can try many configurations from one calibration per SmoothQuant alpha.
``quantize_`` is the one-call Python API.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import onnx

from compress.config import StepConfig, register_config
from compress.errors import ConfigError, QuantizationError
from compress.model import Model
from compress.passes.smoothquant import SmoothQuantConfig, smooth_quant_
from export.calibrate import ForwardLoop, calibrate_onnx
from export.int8_static import NodeGroup, node_groups, select_groups, write_cpu_integer, write_qdq, write_tensorrt_qdq
from export.observers import METHODS
from export.qdq import CPU_SCHEME

TARGETS = ("cpu", "tensorrt")


@register_config
class Int8StaticConfig(StepConfig):
    """Static INT8: weights symmetric per output channel, activations per tensor from calibration."""

    method: str = "minmax"  # activation range: minmax, percentile, entropy (KL) or mse
    percentile: float = 99.999  # for method="percentile"
    smoothquant_alpha: float | None = 0.85  # None: no SmoothQuant
    keep_float: tuple[str, ...] = ()  # layers (module paths, as report.json lists them) left in float
    keep_float_count: int = 0  # also leave the N most sensitive layers in float (sensitivity analysis)
    target: str = "cpu"  # cpu: integer ops for ONNX Runtime; tensorrt: also the QDQ file for TensorRT
    calibration_samples: int = 256

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"calibration method {self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile {self.percentile} must be in (50, 100], e.g. 99.999")
        if self.smoothquant_alpha is not None:
            SmoothQuantConfig(self.smoothquant_alpha)
        if self.target not in TARGETS:
            raise ConfigError(f"target {self.target!r} is unknown; use cpu or tensorrt")
        if self.keep_float_count < 0:
            raise ConfigError("keep_float_count must be 0 or more")
        if self.calibration_samples < 1:
            raise ConfigError("calibration_samples must be at least 1")

    def describe(self) -> str:
        sq = f"SmoothQuant {self.smoothquant_alpha}" if self.smoothquant_alpha is not None else "no SmoothQuant"
        method = f"percentile {self.percentile}" if self.method == "percentile" else self.method
        kept = len(self.keep_float) + self.keep_float_count
        return f"static {method}, {sq}" + (f", {kept} layer(s) float" if kept else "")


@dataclasses.dataclass
class Prepared:
    """An FP32 export (smoothed or not) and its calibration."""

    fp32_path: Path
    graph: onnx.ModelProto
    groups: list[NodeGroup]
    observers: dict
    smoothing: dict | None


class StaticInt8Builder:
    def __init__(self, model: Model, forward_loop: ForwardLoop, example: dict, work_dir: Path, threads: int | None = None,
                 plain_fp32: Path | None = None, in_place: bool = False):
        """``in_place``: smooth ``model`` itself (one alpha only) instead of a copy per alpha."""
        self.model, self.forward_loop, self.example = model, forward_loop, example
        self.work_dir, self.threads, self.plain_fp32, self.in_place = Path(work_dir), threads, plain_fp32, in_place
        self._prepared: dict[float | None, Prepared] = {}
        self.sensitivity: list[dict] | None = None

    def prepare(self, alpha: float | None) -> Prepared:
        if alpha in self._prepared:
            return self._prepared[alpha]
        folder = self.work_dir / ("plain" if alpha is None else f"smoothquant-{alpha}")
        folder.mkdir(parents=True, exist_ok=True)
        fp32_path, smoothing = folder / "model.onnx", None
        if alpha is None and self.plain_fp32 is not None:
            fp32_path = self.plain_fp32
        else:
            if self.model.module is None:
                raise QuantizationError("SmoothQuant needs the PyTorch model; this input is ONNX, so set smoothquant_alpha=None")
            model = self.model if alpha is None or self.in_place else clone_model(self.model)
            if alpha is not None:
                smoothing = smooth_quant_(model, SmoothQuantConfig(alpha), self.forward_loop, self.example)
            _export(model, fp32_path)
        graph = onnx.load(str(fp32_path))
        groups = node_groups(graph)
        if not groups:
            raise QuantizationError("the model has no MatMul, Gemm or Conv with constant weights; there is nothing to quantize")
        observers = calibrate_onnx(fp32_path, sorted({g.activation for g in groups}), self.forward_loop, self.threads)
        self._prepared[alpha] = Prepared(fp32_path, graph, groups, observers, smoothing)
        return self._prepared[alpha]

    def keep_set(self, config: Int8StaticConfig, ranking: list[str] | None = None) -> set[str]:
        keep = set(config.keep_float)
        if config.keep_float_count:
            if ranking is None:
                raise QuantizationError("keep_float_count needs a sensitivity ranking; run the sensitivity analysis first")
            keep |= set([r for r in ranking if r not in keep][: config.keep_float_count])
        return keep

    def write_cpu_qdq(self, config: Int8StaticConfig, out_path: Path, keep: set[str]) -> Prepared:
        """The CPU-scheme QDQ graph (ONNX Runtime fuses it at load): what the search measures."""
        prep = self.prepare(config.smoothquant_alpha)
        nodes, _ = select_groups(prep.groups, keep)
        write_qdq(prep.graph, prep.observers, nodes, config.method, config.percentile, CPU_SCHEME, out_path)
        return prep

    def build(self, config: Int8StaticConfig, cpu_path: Path, qdq_path: Path | None, keep: set[str],
              disabled_optimizers: tuple[str, ...] = ()) -> dict:
        prep = self.prepare(config.smoothquant_alpha)
        nodes, kept = select_groups(prep.groups, keep)
        if qdq_path is not None:  # first: a graph TensorRT would reject stops here, with every violation named
            write_tensorrt_qdq(prep.graph, prep.observers, nodes, config.method, config.percentile, qdq_path)
        staging = cpu_path.with_suffix(".qdq-cpu.onnx")
        write_qdq(prep.graph, prep.observers, nodes, config.method, config.percentile, CPU_SCHEME, staging)
        write_cpu_integer(staging, cpu_path, disabled_optimizers)
        staging.unlink()
        return {"config": config.to_json(), "describe": config.describe(), "quantized_layers": len(prep.groups) - len(kept),
                "float_layers": kept, "smoothquant": prep.smoothing}


def clone_model(model: Model) -> Model:
    """A deep copy whose ``hf_model`` points into the copied module (SmoothQuant edits the copy)."""
    module = copy.deepcopy(model.module)
    hf_model = model.hf_model
    if hf_model is not None:
        path = next((name for name, sub in model.module.named_modules() if sub is hf_model), None)
        hf_model = module.get_submodule(path) if path is not None else None
    return dataclasses.replace(model, module=module, hf_model=hf_model, notes=list(model.notes))


def _export(model: Model, path: Path) -> None:
    from compress.runner import parity_inputs
    from export.onnx_export import OnnxExportConfig, export_onnx
    from export.parity import check_parity

    cfg = OnnxExportConfig()
    inputs = parity_inputs(model)
    export_onnx(model, inputs[0], path, cfg)
    check_parity(model, path, inputs, cfg.atol, cfg.rtol)


def quantize_(model, config, forward_loop: ForwardLoop | None = None, out_dir: Path | None = None, *, force: bool = False,
              threads: int | None = None):
    """INT8 in one call.

    ``Int8DynamicConfig(backend="kernels")``: every Linear of ``model`` (an ``nn.Module`` or a
    loaded ``Model``) becomes an ``Int8Linear`` in place; returns ``model``, which now runs INT8 in
    PyTorch. No data or output directory is needed.

    ``Int8StaticConfig``: SmoothQuant is applied to ``model.module`` in place (the model's
    answers are unchanged in float), and ``out_dir`` receives model.onnx (the smoothed FP32
    export), model.int8.onnx (CPU integer ops), model.int8.qdq.onnx for ``target="tensorrt"``,
    and manifest.json recording the config; returns a summary. ``forward_loop(run_batch)`` calls
    ``run_batch`` on each calibration batch (a dict of numpy arrays named like the model's inputs)."""
    from compress.passes.int8_dynamic import Int8DynamicConfig, quantize_kernels_

    if isinstance(config, Int8DynamicConfig):
        return quantize_kernels_(model, config)
    if not isinstance(config, Int8StaticConfig):
        raise ConfigError(f"quantize_ takes Int8DynamicConfig or Int8StaticConfig, not {type(config).__name__}")
    if forward_loop is None or out_dir is None:
        raise ConfigError("static INT8 needs calibration data and an output directory: quantize_(model, config, forward_loop, out_dir)")
    return _quantize_static(model, config, forward_loop, out_dir, force=force, threads=threads)


def _quantize_static(model: Model, config: Int8StaticConfig, forward_loop: ForwardLoop, out_dir: Path, *, force: bool,
                     threads: int | None) -> dict:
    from compress.outputs import StagedDir, check_output_dir
    from export.manifest import write_manifest

    if config.keep_float_count:
        raise QuantizationError("quantize_ takes explicit keep_float layers; keep_float_count needs the search (compress MODEL --max-drop)")
    check_output_dir(Path(out_dir), model.source, force)
    example = _first_batch(forward_loop)
    with StagedDir(Path(out_dir)) as stage:
        builder = StaticInt8Builder(model, forward_loop, example, stage / "work", threads, in_place=True)
        prep = builder.prepare(config.smoothquant_alpha)  # smooths the caller's model itself
        import shutil

        shutil.copyfile(prep.fp32_path, stage / "model.onnx")
        qdq = stage / "model.int8.qdq.onnx" if config.target == "tensorrt" else None
        info = builder.build(config, stage / "model.int8.onnx", qdq, set(config.keep_float))
        shutil.rmtree(stage / "work")
        manifest = write_manifest(stage, recipe=[config.to_json()], model={"source": str(model.source), "format": model.format},
                                  inputs=[s.to_json() for s in model.inputs], outputs=list(model.output_names),
                                  extra={"int8": info})
    return {"out_dir": str(out_dir), "int8": info, "manifest": manifest}


def _first_batch(forward_loop: ForwardLoop) -> dict:
    first = []

    class _Stop(Exception):
        pass

    def grab(batch):
        first.append(batch)
        raise _Stop

    try:
        forward_loop(grab)
    except _Stop:
        pass
    if not first:
        raise QuantizationError("the forward loop ran no batches; calibration needs at least one")
    return first[0]
