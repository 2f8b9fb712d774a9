"""Installed library versions: recorded in every manifest, report and benchmark result."""

from __future__ import annotations

import platform
from importlib import metadata

_LIBRARIES = ("compress-toolkit", "torch", "onnx", "onnxruntime", "onnxscript", "transformers", "numpy")


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> dict[str, str | None]:
    """Installed versions of ``names`` (None where one is not installed), and Python's."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
