"""The one registry of recipe steps: each config type, its kind, and the handler that runs it.

A recipe is a list of step configs: frozen dataclasses that validate themselves and round-trip
to JSON (``{"type", "version", "kind", "data"}``), so a recipe is data that a manifest records
and ``compress run --recipe`` replays. A config class declares its kind when it is defined
(``@register_config``); the pipeline registers the handler that runs it (``register_handler``).
The kind says what a step takes and what it gives, which is how the pipeline refuses a recipe it
cannot run as written before doing any work.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from compress.core.errors import InputError


@dataclasses.dataclass(frozen=True)
class StepKind:
    """What a step reads and what it makes, by artifact name (see ``ARTIFACTS``)."""

    name: str
    consumes: tuple[str, ...]  # any one of these must be available before the step
    produces: tuple[str, ...]


# The artifacts that flow through a run, and how a message names them.
ARTIFACTS = {
    "pytorch": "the PyTorch model",
    "onnx-source": "an ONNX input file",
    "onnx": "an FP32 ONNX file (made by OnnxExportConfig)",
    "onnx-int8": "an INT8 ONNX file (made by OnnxInt8Config, Int8StaticConfig or Int8SearchConfig)",
    "onnx-qdq": "a TensorRT QDQ file (made by Int8StaticConfig or Int8SearchConfig with target='tensorrt')",
    "pt2-int8": "an INT8 torch.export program (made by Int8DynamicConfig)",
    "engine": "a TensorRT engine (made by TensorRTEngineConfig)",
    "aoti": "an AOTInductor package (made by AotiPackageConfig)",
}

MODEL_PASS = StepKind("model pass", ("pytorch",), ("pytorch",))  # PyTorch -> PyTorch, in memory
ONNX_EXPORT = StepKind("export", ("pytorch", "onnx-source"), ("onnx",))
ONNX_INT8 = StepKind("ONNX INT8", ("onnx",), ("onnx-int8", "onnx-qdq"))  # file to file
TORCH_INT8 = StepKind("PyTorch INT8", ("pytorch",), ("pt2-int8",))
ENGINE_BUILD = StepKind("engine build", ("onnx-qdq",), ("engine",))
AOTI_BUILD = StepKind("AOTInductor build", ("pt2-int8",), ("aoti",))
KINDS = {k.name: k for k in (MODEL_PASS, ONNX_EXPORT, ONNX_INT8, TORCH_INT8, ENGINE_BUILD, AOTI_BUILD)}

_CONFIGS: dict[str, type["StepConfig"]] = {}
_HANDLERS: dict[type, "Handler"] = {}


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Base of every step config. Subclasses validate in ``__post_init__`` and set ``kind``."""

    version: ClassVar[int] = 1
    kind: ClassVar[StepKind]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True)(cls)

    def outputs(self) -> dict[str, str | None]:
        """Artifact name -> the file this step writes into the output directory (None: in memory)."""
        return {name: None for name in self.kind.produces}

    def uses_calibration(self) -> bool:
        """Whether the step may read calibration data (a run given --calib that no step reads refuses it)."""
        return False

    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "version": self.version, "kind": self.kind.name, "data": dataclasses.asdict(self)}


Handler = Callable[..., None]


def register_config(cls: type[StepConfig]) -> type[StepConfig]:
    """Class decorator: make a config findable by its name in recipes (its ``kind`` must be set)."""
    if not isinstance(getattr(cls, "kind", None), StepKind):
        raise TypeError(f"{cls.__name__} must declare its kind (kind: ClassVar[StepKind] = MODEL_PASS, ...)")
    if cls.__name__ in _CONFIGS and _CONFIGS[cls.__name__] is not cls:
        raise TypeError(f"two step configs are named {cls.__name__}")
    _CONFIGS[cls.__name__] = cls
    return cls


def register_handler(*config_types: type[StepConfig]):
    """Decorator for the function that runs steps of ``config_types``: ``handler(config, state)``."""

    def decorate(fn: Handler) -> Handler:
        for cls in config_types:
            if cls in _HANDLERS and _HANDLERS[cls] is not fn:
                raise TypeError(f"{cls.__name__} already has a handler ({_HANDLERS[cls].__name__})")
            _HANDLERS[cls] = fn
        return fn

    return decorate


def handler_for(config: StepConfig) -> Handler | None:
    return _HANDLERS.get(type(config))


def is_model_pass(step: dict) -> bool:
    """Whether a recipe entry (as JSON) changes the PyTorch model's weights: pruning, distillation, SmoothQuant."""
    return step.get("kind") == MODEL_PASS.name


def config_from_json(payload: dict[str, Any]) -> StepConfig:
    """Rebuild a config written by ``to_json``; unknown types and newer versions are refused clearly."""
    if not isinstance(payload, dict):
        raise InputError(f"a recipe step must be an object like {{\"type\": ..., \"data\": {{...}}}}, not {type(payload).__name__}")
    name = payload.get("type")
    cls = _CONFIGS.get(name)
    if cls is None:
        raise InputError(f"unknown step {name!r} in recipe; known steps: {', '.join(sorted(_CONFIGS))}")
    if payload.get("version", 1) > cls.version:
        raise InputError(f"step {name} version {payload['version']} is newer than this tool supports ({cls.version}); upgrade the tool")
    hints = typing.get_type_hints(cls)
    data = payload.get("data", {})
    if not isinstance(data, dict):
        raise InputError(f"step {name}: \"data\" must be an object of its settings")
    data = {k: tuple(v) if isinstance(v, list) and "tuple" in str(hints.get(k)) else v for k, v in data.items()}
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"step {name}: {exc}") from exc


def known_steps() -> dict[str, type[StepConfig]]:
    return dict(_CONFIGS)
