"""SIGTERM and SIGINT in the middle of a run: the exit code says which, one line says nothing was
written, no staged directory is left and the input is unchanged (issue 15, case 2)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import DIGITS_SPEC


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")])
@pytest.mark.parametrize("moment", ["Measuring PyTorch FP32", "Exporting ONNX", "Quantizing to INT8"])
def test_a_signal_mid_run_leaves_nothing_and_says_so(digits_files, tmp_path, sig, code, word, moment):
    source = digits_files["torchscript"]
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "compress", str(source), "--input", DIGITS_SPEC, "--out", str(out),
                             "--calib", str(digits_files["calib"]), "--batch", "1", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_in_a_terminal)
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # progress lines: wait for the moment, then signal
        lines.append(line)
        if moment in line:
            proc.send_signal(sig)
            break
        assert time.monotonic() < deadline, "".join(lines)
    else:
        pytest.fail("the run ended before the moment came:\n" + "".join(lines))
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == code, "".join(lines) + rest
    errors = [ln for ln in rest.splitlines() if not ln.startswith(("•", "  "))]
    assert len(errors) == 1 and errors[0].startswith(word) and "no output was written" in errors[0], rest
    assert "checkpoint" not in errors[0] and "--resume" not in errors[0]  # no distillation ran, so none was saved
    assert "Traceback" not in rest
    assert os.listdir(tmp_path) == []
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def _sigint_as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it. A test runner started in the background by a non-interactive
    shell passes SIGINT down ignored, and Python (rightly) keeps an inherited SIG_IGN."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_until(args: list[str], moment: str, sig, delay: float = 0.0) -> tuple[int, str]:
    """Start ``compress ARGS``, send ``sig`` ``delay`` seconds after a stderr line holds ``moment``;
    (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "compress", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if moment in line:
            time.sleep(delay)
            proc.send_signal(sig)
            break
    else:
        pytest.fail("the run ended before the moment came:\n" + "".join(seen))
    rest = proc.stderr.read()
    return proc.wait(timeout=120), "".join(seen) + rest


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_loading_leaves_nothing(minilm_path, tmp_path, sig, code):
    out = tmp_path / "out"
    status, stderr = _run_until([str(minilm_path), "--out", str(out), "--batch", "1", "--threads", "1"], "• Loading", sig)
    assert status == code, stderr
    assert "no output was written" in stderr and "Traceback" not in stderr and "checkpoint" not in stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_distillation_saves_a_checkpoint_and_names_it(digits_files, tmp_path, sig, code):
    source = digits_files["pt2"]
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "out"
    args = [str(source), "--prune", "channels=0.25", "--distill", str(digits_files["calib"]), "--distill-budget", "5m",
            "--distill-batch", "4", "--no-int8", "--out", str(out), "--batch", "1", "--threads", "1"]
    status, stderr = _run_until(args, "• Distilling", sig, delay=6.0)  # into the steps, past the set-up
    assert status == code, stderr
    last = stderr.strip().splitlines()[-1]
    assert "no output was written" in last and "--resume" in last and str(tmp_path / "out.checkpoints") in last, stderr
    assert "Traceback" not in stderr
    assert os.listdir(tmp_path) == ["out.checkpoints"]  # what --resume continues from; no staged output
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("interrupt, code", [("Terminated", 143), ("KeyboardInterrupt", 130)])
def test_a_signal_while_packing_leaves_no_partial_bundle(digits_run, tmp_path, monkeypatch, interrupt, code):
    """SIGTERM (as the guard raises it) or Ctrl-C between two members of the tar being written."""
    import tarfile

    from click.testing import CliRunner

    from compress.cli.guard import Terminated
    from compress.cli.main import main

    exc = Terminated if interrupt == "Terminated" else KeyboardInterrupt
    real_addfile, added = tarfile.TarFile.addfile, []

    def addfile_then_signal(self, tarinfo, fileobj=None, **kwargs):
        added.append(tarinfo.name)
        if len(added) == 2:
            raise exc()
        return real_addfile(self, tarinfo, fileobj, **kwargs)

    source = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in digits_run.out_dir.iterdir()}
    monkeypatch.setattr(tarfile.TarFile, "addfile", addfile_then_signal)
    result = CliRunner().invoke(main, ["pack", str(digits_run.out_dir), "-o", str(tmp_path / "digits.tar")])
    assert result.exit_code == code and len(added) == 2, (result.output, result.exception)
    assert result.stderr.count("\n") == 1 and "no output was written" in result.stderr
    assert os.listdir(tmp_path) == []  # neither the bundle nor its partial
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in digits_run.out_dir.iterdir()} == source
