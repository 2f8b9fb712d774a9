"""What a run is told besides its recipe (where to write, which data, how to measure), what it
returns, and the recipe that ``compress MODEL --int8`` builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compress.core.registry import StepConfig
from export.int8.ort_quantize import OnnxInt8Config
from export.onnx.export import OnnxExportConfig


@dataclass(frozen=True)
class RunOptions:
    """How to run and measure; the recipe says what to do to the model."""

    out_dir: Path
    force: bool = False  # replace an existing output that compress wrote (or an empty directory)
    force_any: bool = False  # with force: replace any existing directory, also one compress did not write
    calib: Path | None = None
    eval: Path | None = None
    batch_sizes: tuple[int, ...] = (1, 16)
    seq_len: int = 128
    threads: int = 2
    eval_samples: int = 128
    min_seconds: float = 2.0  # per latency measurement
    metric: object = None  # the task metric: a name (bench.measure.task_metrics.BUILTIN), "module:function", a callable
                           # metric(reference, outputs, labels) -> score (higher is better), or None: the task's default
    max_drop: float | None = None  # the tolerance of the task metric [default: per metric, compress.pipeline.int8_guard]
    search_budget: float = 600.0  # seconds the guard may search when the default INT8 misses the tolerance
    charset: Path | None = None  # for the CTC metrics: one character per line [default: the ONNX file's metadata]
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
