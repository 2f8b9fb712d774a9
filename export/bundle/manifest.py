"""manifest.json: what is in an output directory, how it was made, and how to check it."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

from compress.core.output_dir import MANIFEST_NAME, MANIFEST_SCHEMA
from compress.core.versions import library_versions
from compress.ops.cpu_features import cpu_info, cpu_isa

__all__ = ["MANIFEST_NAME", "MANIFEST_SCHEMA", "file_entries", "sha256_file", "write_manifest"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entries(directory: Path) -> dict[str, dict]:
    """sha256 and size of every file under ``directory`` except the manifest itself."""
    entries = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):
        entries[path.relative_to(directory).as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return entries


def write_manifest(directory: Path, *, recipe: list[dict], model: dict, inputs: list[dict], outputs: list[str], extra: dict | None = None) -> dict:
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe,
        "model": model,
        "inputs": inputs,
        "outputs": outputs,
        "versions": library_versions(),
        # the CPU the files were made (and any speeds in the report measured) on, and its INT8 kernel path
        "built_on": {"cpu": cpu_info()["model"], "isa": cpu_isa()},
        "files": file_entries(directory),
        **(extra or {}),
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
