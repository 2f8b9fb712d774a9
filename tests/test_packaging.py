"""pyproject.toml: the package accepts a range of torch versions and never replaces the one a
user already has (a GPU server's CUDA build), and its build does not fetch a torch of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _torch_requirement() -> Requirement:
    (torch,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == "torch"]
    return torch


def test_torch_is_a_range_covering_the_cpu_wheel_here_and_the_gpu_machines_cuda_build():
    allowed = _torch_requirement().specifier
    for version in ("2.11.0+cu130", "2.12.1", "2.13.0+cpu", "2.13.0"):
        assert allowed.contains(version, prereleases=False), version
    for version in ("2.10.0", "2.14.0"):  # outside what is tested
        assert not allowed.contains(version)


def test_the_build_does_not_require_torch():
    # an isolated build would otherwise download one (CUDA wheels, several GB) and compile against it
    assert not [r for r in PYPROJECT["build-system"]["requires"] if Requirement(r).name == "torch"]


@pytest.mark.skipif(sys.platform != "linux", reason="the venv layout below is Linux's")
def test_installing_into_a_venv_that_holds_another_supported_torch_leaves_that_torch_alone(tmp_path):
    """A venv holding torch 2.11.0+cu130 (as the lent GPU machines do; here a metadata-only stand-in,
    since only the 2.13 CPU wheel is available offline) and the other dependencies (this test's own
    environment, through a .pth file): a real `pip install` of the package, offline, must resolve
    torch to the one installed and keep it. The old pin (torch==2.13.0) fails this: offline, pip
    finds no 2.13.0 to replace 2.11 with."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    stand_in = site / "torch-2.11.0+cu130.dist-info"
    stand_in.mkdir()
    (stand_in / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.11.0+cu130\n")
    (stand_in / "INSTALLER").write_text("test\n")
    (stand_in / "RECORD").write_text("")
    # Everything else (pip and setuptools included) from this test's environment, through links to
    # its site-packages entries after the venv's own, leaving out torch and this package itself (so
    # pip cannot see, let alone touch, the environment the tests run in).
    outer = tmp_path / "outer"
    outer.mkdir()
    for directory in (Path(p) for p in sys.path if p.endswith("site-packages")):
        for entry in directory.iterdir():
            if not entry.name.lower().startswith(("torch", "compress", "__editable__", "_compress")) and not (outer / entry.name).exists():
                (outer / entry.name).symlink_to(entry)
    (site / "zz_outer_environment.pth").write_text(f"{outer}\n")
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "*.so",
                                                                  "results", ".pytest_cache"))
    env = {**os.environ, "COMPRESS_OPS_BUILD": "0", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "-q",
                           str(source)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = subprocess.check_output([python, "-c", "import importlib.metadata as m; print(m.version('torch'), m.version('compress-toolkit'))"],
                                     text=True).split()
    assert listed[0] == "2.11.0+cu130" and listed[1]  # torch untouched, the package installed beside it
    assert (stand_in / "METADATA").exists() and not any(p.name.startswith("torch-2.13") for p in site.iterdir())
