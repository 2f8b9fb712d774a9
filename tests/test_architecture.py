"""The layers of ARCHITECTURE.md, checked by import-linter (the contracts are in pyproject.toml):
imports only go down, passes write no files, no two modules import each other. A violation
planted in a copy of the packages must break a contract, so the check cannot pass vacuously."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("compress", "export", "bench")
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def _lint(root: Path) -> subprocess.CompletedProcess:
    # cwd first on sys.path: the packages under ``root`` are the ones analysed, not the installed ones
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300)


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _modules(root: Path) -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_import_contracts_are_kept():
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{len(_contracts())} kept, 0 broken" in proc.stdout


def test_every_module_belongs_to_a_layer():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    members = [m.strip() for layer in layers for m in layer.split("#")[0].replace("|", ":").split(":")]
    unplaced = [m for m in _modules(REPO) if m not in PACKAGES and m != "compress.__main__"
                and not any(m == p or m.startswith(p + ".") for p in members)]
    assert unplaced == [], f"modules in no layer of pyproject.toml's contract (add them to one): {unplaced}"


def test_tests_mirror_the_packages():
    stray = [d.relative_to(REPO / "tests").as_posix() for d in (REPO / "tests").rglob("*") if d.is_dir()
             and d.name != "__pycache__" and d.relative_to(REPO / "tests").parts[0] in PACKAGES
             and not (REPO / d.relative_to(REPO / "tests")).is_dir()]
    assert stray == [], f"test folders with no package of the same path: {stray}"


PLANTED = {
    "a pass that imports the pipeline": ("compress/passes/planted.py", "import compress.pipeline.run\n", "Imports only go down"),
    "export that measures": ("export/onnx/planted.py", "from bench.measure.latency import measure\n", "Imports only go down"),
    "bench that runs the pipeline": ("bench/suite/planted.py", "from compress.pipeline.run import run\n", "Imports only go down"),
    "a pass that writes files": ("compress/passes/planted.py", "from compress.core.atomic import write_text_atomic\n", "Passes never write files"),
    "two files that import each other": ("compress/core/planted.py", "import compress.core.model\n", "No two modules import each other"),
}


@pytest.mark.parametrize("plant", sorted(PLANTED))
def test_a_planted_violation_breaks_a_contract(tmp_path, plant):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.so", "results", "baselines"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    path, source, contract = PLANTED[plant]
    (tmp_path / path).write_text(source)
    if plant == "two files that import each other":  # and the model imports it back
        model = tmp_path / "compress/core/model.py"
        model.write_text(model.read_text() + "\nfrom compress.core import planted  # noqa: E402\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0, proc.stdout[-2000:]
    broken = [line for line in proc.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), proc.stdout[-3000:]
