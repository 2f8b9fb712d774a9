"""``quantize_``: INT8 in one call from Python, dynamic (PyTorch, in place) or static (files).

Static INT8 writes files, so it lives here in the pipeline layer rather than among the passes,
which only change PyTorch modules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from compress.core.atomic import StagedDir
from compress.core.errors import ConfigError, QuantizationError
from compress.core.forward_loop import ForwardLoop
from compress.core.model import Model
from compress.core.output_dir import check_output_dir
from compress.passes.int8_kernels import Int8DynamicConfig, quantize_kernels_
from compress.pipeline.static_int8.builder import StaticInt8Builder
from compress.pipeline.static_int8.config import Int8StaticConfig
from export.bundle.manifest import write_manifest


def quantize_(model, config, forward_loop: ForwardLoop | None = None, out_dir: Path | None = None, *, force: bool = False,
              force_any: bool = False, threads: int | None = None):
    """INT8 in one call.

    ``Int8DynamicConfig(backend="kernels")``: every Linear of ``model`` (an ``nn.Module`` or a
    loaded ``Model``) becomes an ``Int8Linear`` in place; returns ``model``, which now runs INT8 in
    PyTorch. No data or output directory is needed.

    ``Int8StaticConfig``: SmoothQuant is applied to ``model.module`` in place (the model's
    answers are unchanged in float), and ``out_dir`` receives model.onnx (the smoothed FP32
    export), model.int8.onnx (CPU integer ops), model.int8.qdq.onnx for ``target="tensorrt"``,
    and manifest.json recording the config; returns a summary. ``forward_loop(run_batch)`` calls
    ``run_batch`` on each calibration batch (a dict of numpy arrays named like the model's inputs)."""
    if isinstance(config, Int8DynamicConfig):
        return quantize_kernels_(model, config)
    if not isinstance(config, Int8StaticConfig):
        raise ConfigError(f"quantize_ takes Int8DynamicConfig or Int8StaticConfig, not {type(config).__name__}")
    if forward_loop is None or out_dir is None:
        raise ConfigError("static INT8 needs calibration data and an output directory: quantize_(model, config, forward_loop, out_dir)")
    return _quantize_static(model, config, forward_loop, out_dir, force=force, force_any=force_any, threads=threads)


def _quantize_static(model: Model, config: Int8StaticConfig, forward_loop: ForwardLoop, out_dir: Path, *, force: bool,
                     force_any: bool, threads: int | None) -> dict:
    if config.keep_float_count:
        raise QuantizationError("quantize_ takes explicit keep_float layers; keep_float_count needs the search (compress MODEL --max-drop)")
    check_output_dir(Path(out_dir), model.source, force, force_any)
    example = _first_batch(forward_loop)
    with StagedDir(Path(out_dir)) as stage:
        builder = StaticInt8Builder(model, forward_loop, example, stage / "work", threads, in_place=True)
        prep = builder.prepare(config.smoothquant_alpha)  # smooths the caller's model itself
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
