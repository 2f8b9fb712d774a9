"""Step configs: frozen dataclasses that validate themselves and round-trip to JSON.

A recipe is a list of these, so it is data: it is written into every manifest and can be
read back to reproduce an artifact. Each config is found by its class name in one registry.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

from compress.errors import InputError

_REGISTRY: dict[str, type["StepConfig"]] = {}


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Base of every pass and export-step config. Subclasses validate in ``__post_init__``."""

    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True)(cls)

    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "version": self.version, "data": dataclasses.asdict(self)}


def register_config(cls: type[StepConfig]) -> type[StepConfig]:
    if cls.__name__ in _REGISTRY and _REGISTRY[cls.__name__] is not cls:
        raise TypeError(f"two step configs are named {cls.__name__}")
    _REGISTRY[cls.__name__] = cls
    return cls


def config_from_json(payload: dict[str, Any]) -> StepConfig:
    """Rebuild a config written by ``to_json``; unknown types and newer versions are refused clearly."""
    name = payload.get("type")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InputError(f"unknown step {name!r} in recipe; known steps: {', '.join(sorted(_REGISTRY))}")
    if payload.get("version", 1) > cls.version:
        raise InputError(f"step {name} version {payload['version']} is newer than this tool supports ({cls.version}); upgrade the tool")
    hints = typing.get_type_hints(cls)
    data = {k: tuple(v) if isinstance(v, list) and "tuple" in str(hints.get(k)) else v for k, v in payload.get("data", {}).items()}
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"step {name}: {exc}") from exc
