"""A busy CPU during a run (issue 15, case 9): the report used to print speed-ups of 1860x-3999x
over a reference that took 80 ms instead of 0.1 ms. Reproduced here with two busy-looping
processes on the core the run is pinned to; the speed-ups are then marked as untrustworthy in
the table, on stderr and in report.json, and the run still writes its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CORE = 0


def _pin():
    os.sched_setaffinity(0, {CORE})


@pytest.fixture
def busy_core():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("pinning processes to a core needs os.sched_setaffinity (Linux)")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=_pin) for _ in range(2)]
    try:
        yield CORE
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_speedups_timed_on_a_busy_core_are_marked_untrustworthy(digits_files, tmp_path, busy_core):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "compress", str(digits_files["pt2"]), "--no-int8", "--out", str(out),
                           "--batch", "1", "--threads", "1", "--quiet"],
                          capture_output=True, text=True, timeout=600, preexec_fn=_pin)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["timing"]["trustworthy"] is False and report["timing"]["problems"]
    assert any("busy CPU" in p or "p90 is" in p or "last third" in p for p in report["timing"]["problems"])
    assert all(row["speedup_untrusted"] for row in report["results"])
    assert "x?" in proc.stdout and "? not to be trusted, the timing was too noisy" in proc.stdout
    assert "warning: speed-ups marked ? are not to be trusted" in proc.stderr
    assert any("not to be trusted" in w for w in report["warnings"])
