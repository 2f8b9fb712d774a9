"""``compress verify`` and safe unpacking: every file of a bundle checked against its manifest.

A bundle is flat: member names are plain file names, so nothing can land outside the
destination (no absolute paths, no ``..``, no links, no devices). A file that is missing,
has another size or sha256, or is not listed, is an error naming that file. Reading never
runs code: the manifest is JSON, and nothing is loaded (an AOTInductor package's shared library
is opened only by ``export.runtime.load`` when the caller allows compiled packages).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from compress.core.errors import InputError
from export.bundle.manifest import MANIFEST_NAME, sha256_file
from export.bundle.pack import BUNDLE_SCHEMA


class BundleError(InputError):
    """The bundle is damaged, tampered with, incomplete, or unsafe to unpack."""


def verify(bundle: Path) -> dict:
    """Check ``bundle`` (a .tar, or a directory it was unpacked into); return its manifest."""
    bundle = Path(bundle)
    if bundle.is_dir():
        return _verify_directory(bundle)
    return _scan_tar(bundle, dest=None)


def extract_verified(bundle: Path, dest: Path) -> dict:
    """Unpack ``bundle`` into the directory ``dest``, checking every file as it is written; the result
    is itself a verifiable bundle directory. On any problem, the files written so far are removed."""
    dest.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    try:
        manifest = _scan_tar(Path(bundle), dest, written)
    except BundleError:
        for name in written:
            (dest / name).unlink(missing_ok=True)
        raise
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _scan_tar(path: Path, dest: Path | None, written: list[str] | None = None) -> dict:
    if not path.is_file():
        raise BundleError(f"{path} does not exist; give a .tar written by `compress pack`")
    manifest = _manifest_from_tar(path)
    expected = manifest["files"]
    seen: set[str] = set()
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = _safe_name(member, path)
                if name == MANIFEST_NAME:
                    continue
                if name in seen:
                    raise BundleError(f"{path}: {name} appears twice; the bundle was altered")
                seen.add(name)
                if name not in expected:
                    raise BundleError(f"{path}: {name} is not listed in the manifest (an unknown file); the bundle was altered")
                if dest is not None:
                    written.append(name)
                _check_member(tar, member, expected[name], path, dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{path} is truncated or damaged ({exc}); copy it again") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise BundleError(f"{path}: {', '.join(missing)} listed in the manifest but missing (truncated or altered)")
    return manifest


def _manifest_from_tar(path: Path) -> dict:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if _safe_name(member, path) == MANIFEST_NAME:
                    return _parse_manifest(tar.extractfile(member).read(), path)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{path} is not a readable bundle ({exc}); is it truncated? copy it again") from None
    raise BundleError(f"{path} has no {MANIFEST_NAME}; it was not written by `compress pack`")


def _parse_manifest(data: bytes, where: Path) -> dict:
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: {MANIFEST_NAME} is corrupt ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != BUNDLE_SCHEMA or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{where}: {MANIFEST_NAME} is not a {BUNDLE_SCHEMA} manifest")
    for name in manifest["files"]:
        _check_plain_name(name, where)
    return manifest


def _safe_name(member: tarfile.TarInfo, path: Path) -> str:
    _check_plain_name(member.name, path)
    if not member.isfile():
        raise BundleError(f"{path}: {member.name} is a link or special file; bundles hold plain files only (refusing to unpack)")
    return member.name


def _check_plain_name(name: str, where: Path) -> None:
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("..") or "\0" in name:
        raise BundleError(f"{where}: member {name!r} is not a plain file name (path traversal?); refusing to unpack")


def _check_member(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict, path: Path, dest: Path | None) -> None:
    if member.size != entry["bytes"]:
        raise BundleError(f"{path}: {member.name} is {member.size} bytes, the manifest says {entry['bytes']} (truncated or altered)")
    digest, source = hashlib.sha256(), tar.extractfile(member)
    out = (dest / member.name).open("wb") if dest is not None else None
    try:
        while block := source.read(1 << 20):
            digest.update(block)
            if out is not None:
                out.write(block)
    finally:
        if out is not None:
            out.close()
    if digest.hexdigest() != entry["sha256"]:
        if dest is not None:
            (dest / member.name).unlink()
        raise BundleError(f"{path}: {member.name} does not match its sha256 in the manifest (tampered or damaged)")


def _verify_directory(directory: Path) -> dict:
    try:
        manifest = _parse_manifest((directory / MANIFEST_NAME).read_bytes(), directory)
    except FileNotFoundError:
        raise BundleError(f"{directory} has no {MANIFEST_NAME}; give a bundle .tar or the directory it was unpacked into") from None
    present = {p.name for p in directory.iterdir() if p.name != MANIFEST_NAME}
    unknown = sorted(present - set(manifest["files"]))
    if unknown:
        raise BundleError(f"{directory}: {', '.join(unknown)} not listed in the manifest (unknown files)")
    for name, entry in manifest["files"].items():
        file = directory / name
        if not file.is_file() or file.is_symlink():
            raise BundleError(f"{directory}: {name} is missing (or not a plain file)")
        if file.stat().st_size != entry["bytes"]:
            raise BundleError(f"{directory}: {name} is {file.stat().st_size} bytes, the manifest says {entry['bytes']} (truncated or altered)")
        if sha256_file(file) != entry["sha256"]:
            raise BundleError(f"{directory}: {name} does not match its sha256 in the manifest (tampered or damaged)")
    return manifest
