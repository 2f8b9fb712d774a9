"""``compress pack``: a `compress` output directory → one .tar that ships.

The bundle holds the ONNX models, any TensorRT engines (with their ``.plan.json`` target
metadata), any AOTInductor packages (with their ``.pt2.json``: torch version and device), the report, and a ``manifest.json`` written for the receiving machine: input and
output specs, each file's sha256, size, kind and precision, the hardware each engine was built
for, library versions, the recipe, and the retention and latency figures of the report. The
tar is deterministic (sorted members, zeroed owners and times: pack twice, same bytes), written under a temporary name
and renamed, and never replaces an existing file unless asked.
"""

from __future__ import annotations

import io
import json
import tarfile
from fnmatch import fnmatch
from pathlib import Path

from compress.core.atomic import atomic_path
from compress.core.errors import InputError, OutputError
from compress.core.versions import library_versions
from export.bundle.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, sha256_file

BUNDLE_SCHEMA = "compress.bundle/1"
ENGINE_SUFFIXES = (".plan", ".engine")
SHIPPED_SUFFIXES = (".onnx", ".data", *ENGINE_SUFFIXES)  # .data: ONNX external weights
REPORT_NAME = "report.json"
AOTI_GLOB = "*.aoti.*.pt2"  # AOTInductor packages, named for their device and torch (export.aoti.package)


def pack(directory: Path, out: Path, force: bool = False, force_any: bool = False) -> dict:
    """Write ``out`` from ``directory``; returns the bundle manifest. An existing ``out`` is
    replaced with ``force`` only when it is a compress bundle, with ``force_any`` whatever it is."""
    directory, out = Path(directory), Path(out)
    source = _read_source_manifest(directory)
    if out.exists() and not force:
        raise OutputError(f"{out} already exists; pass --force to replace it or choose another -o")
    if out.is_dir():
        raise OutputError(f"{out} is a directory; give -o a file name such as model.tar")
    if out.exists() and not force_any and not is_bundle(out):
        raise OutputError(f"{out} is not a compress bundle, so --force will not replace it; choose another -o, "
                          "or add --force-any to replace it")
    if out.resolve().is_relative_to(directory.resolve()):
        raise OutputError(f"{out} is inside {directory}; write the bundle outside the directory it packs")
    files = _shipped_files(directory, source)
    manifest = bundle_manifest(directory, source, files)
    with atomic_path(out) as partial, tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
        for rel in sorted(files):
            with (directory / rel).open("rb") as fh:
                tar.addfile(_member(rel, (directory / rel).stat().st_size), fh)
    return manifest


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a tar whose manifest.json says ``compress.bundle/...`` (read as JSON, nothing unpacked)."""
    try:
        with tarfile.open(path, "r:") as tar:
            member = tar.getmember(MANIFEST_NAME)
            if not member.isfile() or member.size > 64 << 20:
                return False
            manifest = json.loads(tar.extractfile(member).read())
    except (OSError, KeyError, ValueError, tarfile.TarError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("schema", "")).startswith("compress.bundle/")


def bundle_manifest(directory: Path, source: dict, files: list[str]) -> dict:
    report = _read_json(directory / REPORT_NAME) if REPORT_NAME in files else {}
    return {
        "schema": BUNDLE_SCHEMA,
        "created": source.get("created"),  # when compress made the files: packing twice gives the same bytes
        "packed_from": directory.name,
        "model": source.get("model"),
        "task": source.get("task"),
        "inputs": source.get("inputs", []),
        "outputs": source.get("outputs", []),
        "recipe": source.get("recipe", []),
        "built_with": source.get("versions", {}),
        "packed_with": library_versions(),
        "files": {rel: _file_entry(directory, rel, source) for rel in files},
        "results": [_result_summary(row) for row in report.get("results", [])],
    }


def _read_source_manifest(directory: Path) -> dict:
    if not (directory / MANIFEST_NAME).is_file():
        raise InputError(f"{directory} has no {MANIFEST_NAME}; pack a directory written by `compress MODEL ...`")
    source = _read_json(directory / MANIFEST_NAME)
    if source.get("schema") != MANIFEST_SCHEMA:
        raise InputError(f"{directory}/{MANIFEST_NAME} is not a compress output manifest (schema {source.get('schema')!r})")
    for rel, entry in source.get("files", {}).items():  # pack only what compress wrote, unchanged since
        path = directory / rel
        if not path.is_file():
            raise InputError(f"{directory}/{rel} is listed in its manifest but missing; re-run compress")
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise InputError(f"{directory}/{rel} changed after compress wrote it (sha256 differs); re-run compress")
    return source


def _shipped_files(directory: Path, source: dict) -> list[str]:
    """The ONNX files and report compress recorded, plus engines and AOTInductor packages (compress
    wrote them, or `compress build-engine` did later), each with its metadata sidecar."""
    files = [rel for rel in source.get("files", {}) if "/" not in rel and (rel.endswith(SHIPPED_SUFFIXES) or rel == REPORT_NAME)]
    for plan in sorted(p for p in directory.iterdir() if p.suffix in ENGINE_SUFFIXES and p.is_file()):
        sidecar = plan.with_name(plan.name + ".json")
        if not sidecar.is_file():
            raise InputError(f"{plan} has no {sidecar.name} (the target GPU and TensorRT version); rebuild it with compress build-engine")
        files += [plan.name, sidecar.name]
    # imported here: verifying and loading a bundle need no torch
    from export.aoti.package import read_aoti_metadata, sidecar_path

    for package in sorted(p for p in directory.glob(AOTI_GLOB) if p.is_file()):
        read_aoti_metadata(package)  # its sidecar says which torch and device it needs: no sidecar, no shipping
        files += [package.name, sidecar_path(package).name]
    if not any(rel.endswith((".onnx", *ENGINE_SUFFIXES)) or fnmatch(rel, AOTI_GLOB) for rel in files):
        raise InputError(f"{directory} holds no ONNX model, engine or AOTInductor package to ship")
    return sorted(set(files))


def _file_entry(directory: Path, rel: str, source: dict) -> dict:
    path = directory / rel
    entry = {"sha256": sha256_file(path), "bytes": path.stat().st_size, "kind": _kind(rel)}
    if entry["kind"] in ("onnx", "engine"):
        entry["precision"] = "int8" if ".int8" in rel else "fp32"
    if entry["kind"] == "onnx":
        entry["onnxruntime"] = source.get("runtime", {}).get(rel, {}).get("onnxruntime", {})
        entry["role"] = "qdq-for-tensorrt" if rel.endswith(".qdq.onnx") else "onnxruntime"
    if entry["kind"] == "aoti-package":
        from export.aoti.package import read_aoti_metadata

        meta = read_aoti_metadata(path)
        entry["precision"] = "int8"
        # what the receiving machine needs: the same torch minor version, the device (CPU kernel path or
        # GPU), and compress's ops (the runtime loads or builds them: the package calls them by name)
        entry["target"] = {key: meta.get(key) for key in ("device", "device_tag", "torch_version", "gpu")}
        entry["compress_ops"] = meta.get("compress_ops", {})
        entry["checked"] = {key: meta.get(key) for key in ("max_abs_error", "min_cosine", "shapes_checked")}
    if entry["kind"] == "engine":
        meta = _read_json(path.with_name(path.name + ".json"))
        entry["target"] = {key: meta.get(key) for key in ("compute_capability", "gpu", "tensorrt_version", "version_compatible",
                                                          "hardware_compatibility")}
        entry["profiles"] = meta.get("profiles")
        entry["layer_precisions"] = meta.get("layer_precisions")
    return entry


def _kind(rel: str) -> str:
    if fnmatch(rel, AOTI_GLOB):
        return "aoti-package"
    if fnmatch(rel, AOTI_GLOB + ".json"):
        return "aoti-metadata"
    if rel.endswith(".onnx"):
        return "onnx"
    if rel.endswith(ENGINE_SUFFIXES):
        return "engine"
    if rel.endswith(".plan.json") or rel.endswith(".engine.json"):
        return "engine-metadata"
    if rel.endswith(".data"):
        return "onnx-weights"
    return "report" if rel == REPORT_NAME else "data"


def _result_summary(row: dict) -> dict:
    return {"name": row.get("name"), "file": row.get("file"), "backend": row.get("backend"), "precision": row.get("precision"),
            "retention": row.get("retention"),
            "latency_ms": {bs: {k: lat.get(k) for k in ("p50_ms", "p90_ms")} for bs, lat in (row.get("latency") or {}).items()}}


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_member(name, len(data)), io.BytesIO(data))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} cannot be read as JSON ({exc})") from None
