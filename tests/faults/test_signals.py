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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    assert "Traceback" not in rest
    assert os.listdir(tmp_path) == []
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
