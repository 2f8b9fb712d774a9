"""ONNX → TensorRT engine (TensorRT 10.x and 11.x Python API), with what the engine really chose.

Strongly typed networks only: the precision comes from the graph (QDQ for INT8), as TensorRT
11 requires (it removed the implicit INT8 calibrator and the FP16/INT8 builder flags) and as
10.x allows. The engine is named after the GPU architecture and TensorRT version it is bound
to (``model.int8.sm90.trt10.9.plan``), and a sidecar ``.plan.json`` records that target, the
optimization profile and each layer's precision, so an "INT8" engine that runs mostly in FP16
is visible before it ships. Runs only where tensorrt and a CUDA GPU exist.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar

from compress.core.atomic import write_bytes_atomic
from compress.core.errors import ConfigError, ExportError, InputError
from compress.core.registry import ENGINE_BUILD, StepConfig, StepKind, register_config
from compress.core.spec import TensorSpec
from export.tensorrt.available import tensorrt_missing_reason
from export.tensorrt.shapes import parse_shapes

ENGINE_SCHEMA = "compress.engine/1"
HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")


@register_config
class TensorRTEngineConfig(StepConfig):
    """How to build a TensorRT engine from the (QDQ) ONNX."""

    kind: ClassVar[StepKind] = ENGINE_BUILD

    shapes: str | None = None  # --shapes batch=1:8:32,sequence=16:128:512 (see export/trt_shapes.py)
    optimization_level: int = 3  # builder optimization level 0..5: higher builds longer, may run faster
    workspace_mib: int | None = None  # cap on the builder's scratch memory
    timing_cache: str | None = None  # a file reused across builds (created if missing)
    version_compatible: bool = False  # runs on later TensorRT versions of the same major (lean runtime)
    hardware_compatibility: str = "none"  # ampere_plus: one engine for every GPU from Ampere on

    def outputs(self) -> dict[str, str | None]:
        return {"engine": "model.int8.*.plan"}  # named for the GPU and TensorRT version it is built on

    def __post_init__(self):
        if not 0 <= self.optimization_level <= 5:
            raise ConfigError(f"optimization level {self.optimization_level} must be 0 to 5 (3 is TensorRT's default)")
        if self.workspace_mib is not None and self.workspace_mib < 1:
            raise ConfigError("workspace must be at least 1 MiB, or left unset for TensorRT's default")
        if self.hardware_compatibility not in HARDWARE_LEVELS:
            raise ConfigError(f"hardware compatibility {self.hardware_compatibility!r} is unknown; use one of {', '.join(HARDWARE_LEVELS)}")


def engine_file_name(stem: str, compute_capability: str, trt_version: str) -> str:
    """``model.int8`` + 9.0 + 10.9.0.34 → ``model.int8.sm90.trt10.9.plan``."""
    major_minor = ".".join(trt_version.split(".")[:2])
    return f"{stem}.sm{compute_capability.replace('.', '')}.trt{major_minor}.plan"


def build_engine(onnx_path: Path, out_dir: Path, specs: tuple[TensorSpec, ...], config: TensorRTEngineConfig,
                 force: bool = False) -> dict:
    """Build, serialize and describe an engine; returns the sidecar's content."""
    missing = tensorrt_missing_reason()
    if missing:
        raise ExportError(missing)
    import tensorrt as trt
    import torch

    started = time.perf_counter()
    major, minor = torch.cuda.get_device_capability()
    cc = f"{major}.{minor}"
    plan = Path(out_dir) / engine_file_name(Path(onnx_path).name.removesuffix(".onnx").removesuffix(".qdq"), cc, trt.__version__)
    if plan.exists() and not force:
        raise InputError(f"{plan} already exists; pass --force to rebuild it")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"TensorRT could not parse {Path(onnx_path).name}: {'; '.join(errors) or 'no detail given'}")
    builder_config = _builder_config(trt, builder, network, specs, config)
    serialized = builder.build_serialized_network(network, builder_config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {Path(onnx_path).name}; its log above names the layer")
    _save_timing_cache(builder_config, config)
    write_bytes_atomic(plan, bytes(serialized))
    metadata = _describe(trt, logger, serialized, plan, onnx_path, cc, config, builder_config, network)
    metadata["build_seconds"] = round(time.perf_counter() - started, 1)
    write_bytes_atomic(plan.with_name(plan.name + ".json"), (json.dumps(metadata, indent=2) + "\n").encode())
    return metadata


def read_engine_metadata(plan: Path) -> dict:
    sidecar = Path(plan).with_name(Path(plan).name + ".json")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise InputError(f"{sidecar} is missing: the engine's target GPU and TensorRT version are unknown; rebuild with compress build-engine") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{sidecar} is corrupt ({exc}); rebuild with compress build-engine") from None
    if not isinstance(meta, dict) or meta.get("schema") != ENGINE_SCHEMA:
        raise InputError(f"{sidecar} is not a {ENGINE_SCHEMA} file")
    return meta


def _builder_config(trt, builder, network, specs, config: TensorRTEngineConfig):
    builder_config = builder.create_builder_config()
    builder_config.builder_optimization_level = config.optimization_level
    builder_config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # per-layer precisions in the inspector
    if config.workspace_mib:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if config.version_compatible:
        builder_config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if config.hardware_compatibility != "none":
        level = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}[config.hardware_compatibility]
        if not hasattr(trt.HardwareCompatibilityLevel, level):
            raise ExportError(f"this TensorRT ({trt.__version__}) has no hardware compatibility level {level}")
        builder_config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)
    cache_bytes = Path(config.timing_cache).read_bytes() if config.timing_cache and Path(config.timing_cache).exists() else b""
    builder_config.set_timing_cache(builder_config.create_timing_cache(cache_bytes), False)
    profile = builder.create_optimization_profile()
    network_inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    for name, (lo, opt, hi) in parse_shapes(config.shapes, specs).items():
        if name in network_inputs:
            profile.set_shape(name, lo, opt, hi)
    builder_config.add_optimization_profile(profile)
    return builder_config


def _save_timing_cache(builder_config, config: TensorRTEngineConfig) -> None:
    if config.timing_cache:
        write_bytes_atomic(Path(config.timing_cache), bytes(builder_config.get_timing_cache().serialize()))


def _describe(trt, logger, serialized, plan: Path, onnx_path: Path, cc: str, config, builder_config, network) -> dict:
    import torch

    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    counts: dict[str, int] = {}
    for layer in info.get("Layers", []):
        precision = _layer_precision(layer)
        counts[precision] = counts.get(precision, 0) + 1
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    io = {n: str(engine.get_tensor_dtype(n)).split(".")[-1].lower() for n in names}
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    profiles = {}
    for n in inputs:
        lo, opt, hi = engine.get_tensor_profile_shape(n, 0)
        profiles[n] = {"min": list(lo), "opt": list(opt), "max": list(hi)}
    meta = {"schema": ENGINE_SCHEMA, "file": plan.name, "source_onnx": Path(onnx_path).name, "tensorrt_version": trt.__version__,
            "compute_capability": cc, "gpu": torch.cuda.get_device_name(), "version_compatible": config.version_compatible,
            "hardware_compatibility": config.hardware_compatibility, "strongly_typed": True, "profiles": profiles,
            "inputs": [{"name": n, "dtype": io[n]} for n in inputs],
            "outputs": [{"name": n, "dtype": io[n]} for n in names if n not in inputs], "layer_precisions": counts}
    compute = sum(counts.values()) - counts.get("other", 0)
    if ".int8" in plan.name and compute and counts.get("INT8", 0) < compute / 2:
        meta["warning"] = (f"only {counts.get('INT8', 0)} of {compute} layers run in INT8; the rest fell back to "
                           f"{', '.join(k for k in counts if k not in ('INT8', 'other'))} (check the QDQ placement)")
    return meta


def _layer_precision(layer) -> str:
    """The precision of a layer's first output, from the inspector's JSON ("Int8", "Half", "Float", "FP8", "BFloat16")."""
    if not isinstance(layer, dict) or not layer.get("Outputs"):
        return "other"
    text = str(layer["Outputs"][0].get("Format/Datatype", "")).lower()
    for key, name in (("int8", "INT8"), ("fp8", "FP8"), ("half", "FP16"), ("bfloat16", "BF16"), ("float", "FP32"), ("int32", "INT32")):
        if key in text:
            return name
    return "other"


def _parser_error(error) -> str:
    node = getattr(error, "node_name", None)
    where = node() if callable(node) else ""
    return f"{where + ': ' if where else ''}{error.desc()}"
