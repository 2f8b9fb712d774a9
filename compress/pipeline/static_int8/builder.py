"""Static post-training INT8: SmoothQuant in PyTorch, export, calibrate, and write the INT8 files.

``Int8StaticConfig`` says what to build; ``StaticInt8Builder`` builds it, caching the expensive
parts (the smoothed export and its calibration) so the accuracy-aware search and the
sensitivity analysis can try many configurations from one calibration per SmoothQuant alpha.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx

from compress.core.errors import QuantizationError
from compress.core.forward_loop import ForwardLoop
from compress.core.model import Model, clone_model
from compress.passes.smoothquant import SmoothQuantConfig, smooth_quant_
from compress.pipeline.static_int8.config import Int8StaticConfig
from export.int8.calibrate import calibrate_onnx
from export.int8.conv_outputs import conv_output_tensors
from export.int8.qdq import CPU_SCHEME
from export.int8.qdq_files import (
    NodeGroup,
    calibration_tensors,
    node_groups,
    select_groups,
    write_cpu_integer,
    write_qdq,
    write_tensorrt_qdq,
)
from export.onnx.export import export_verified


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
            export_verified(model, fp32_path)
        graph = onnx.load(str(fp32_path))
        groups = node_groups(graph)
        if not groups:
            raise QuantizationError("the model has no MatMul, Gemm or Conv with constant weights; there is nothing to quantize")
        observers = calibrate_onnx(fp32_path, calibration_tensors(graph, groups), self.forward_loop, self.threads)
        self._prepared[alpha] = Prepared(fp32_path, graph, groups, observers, smoothing)
        return self._prepared[alpha]

    def keep_set(self, config: Int8StaticConfig, ranking: list[str] | None = None) -> set[str]:
        keep = set(config.keep_float)
        if config.keep_float_count:
            if ranking is None:
                raise QuantizationError("keep_float_count needs a sensitivity ranking; run the sensitivity analysis first")
            keep |= set([r for r in ranking if r not in keep][: config.keep_float_count])
        return keep

    def has_conv_outputs(self, config: Int8StaticConfig, keep: set[str]) -> bool:
        """Whether quantizing the Convs' outputs changes this configuration's CPU file (the graph has quantized Convs)."""
        prep = self.prepare(config.smoothquant_alpha)
        return bool(conv_output_tensors(prep.graph, select_groups(prep.groups, keep)[0]))

    def write_cpu_qdq(self, config: Int8StaticConfig, out_path: Path, keep: set[str]) -> Prepared:
        """The CPU-scheme QDQ graph (ONNX Runtime fuses it at load): what the search measures. The
        Convs' outputs are quantized too: that makes a CNN's file integer, so it is the form the
        final build usually keeps, and the search scores and times the file it will most likely
        build. The final build also writes the plain form and keeps it where it is faster or the
        other costs accuracy (``compress.pipeline.steps.onnx_static_int8``)."""
        prep = self.prepare(config.smoothquant_alpha)
        nodes, _ = select_groups(prep.groups, keep)
        write_qdq(prep.graph, prep.observers, nodes, config.method, config.percentile, CPU_SCHEME, out_path, conv_outputs=True)
        return prep

    def build(self, config: Int8StaticConfig, cpu_path: Path, qdq_path: Path | None, keep: set[str],
              disabled_optimizers: tuple[str, ...] = (), conv_outputs: bool = False) -> dict:
        """``conv_outputs``: the CPU file quantizes the Convs' outputs too (QLinearConv); the TensorRT file never does."""
        prep = self.prepare(config.smoothquant_alpha)
        nodes, kept = select_groups(prep.groups, keep)
        if qdq_path is not None:  # first: a graph TensorRT would reject stops here, with every violation named
            write_tensorrt_qdq(prep.graph, prep.observers, nodes, config.method, config.percentile, qdq_path)
        staging = cpu_path.with_suffix(".qdq-cpu.onnx")
        write_qdq(prep.graph, prep.observers, nodes, config.method, config.percentile, CPU_SCHEME, staging, conv_outputs)
        write_cpu_integer(staging, cpu_path, disabled_optimizers)
        staging.unlink()
        return {"config": config.to_json(), "describe": config.describe(), "quantized_layers": len(prep.groups) - len(kept),
                "float_layers": kept, "smoothquant": prep.smoothing}
