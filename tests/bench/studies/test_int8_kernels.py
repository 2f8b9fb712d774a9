"""The CPU kernel benchmark on tiny shapes: every path this CPU runs is checked and timed against
the same run's ceilings, and the targets are judged from those figures."""

import os

import pytest
import torch

from bench.studies import int8_kernels
from compress.ops import kernels as ops
from compress.ops.cpu_features import runnable_isas

pytestmark = pytest.mark.skipif(ops.status().backend != "extension", reason=f"the compiled kernels are not loaded: {ops.status().reason}")


def test_every_runnable_path_is_timed_against_fp32_fbgemm_and_its_instruction_peak(monkeypatch):
    monkeypatch.setattr(int8_kernels, "CPU_SHAPES", ((32, 64, 48), (1, 64, 48)))
    isas = runnable_isas()
    torch.set_num_threads(1)
    peaks = int8_kernels.cpu_peaks(isas, seconds=0.01)
    assert set(peaks) == set(isas) - {"portable"} and all(p > 0 for p in peaks.values())
    rows = int8_kernels.cpu_rows(1, isas, peaks)
    assert [(r["m"], r["k"], r["n"]) for r in rows] == [(32, 64, 48), (1, 64, 48)]
    for row in rows:
        assert list(row["paths"]) == isas
        for isa, path in row["paths"].items():
            assert path["gmacs_per_s"] > 0 and path["over_fbgemm"] > 0
            assert (path["of_peak"] is None) == (isa == "portable")
    assert set(rows[0]["targets_met"]) == {"over_fbgemm", "of_peak"} or isas == ["portable"]
    assert set(rows[1]["targets_met"]) == {"m1_at_least_fp32"}


def test_targets_are_judged_from_the_measured_ratios():
    good = {"over_fbgemm": 0.95, "over_fp32": 3.0, "of_peak": 0.75}
    assert all(int8_kernels._cpu_targets(128, good).values())
    assert int8_kernels._cpu_targets(128, {**good, "of_peak": 0.5}) == {"over_fbgemm": True, "of_peak": False}
    assert int8_kernels._cpu_targets(1, {**good, "over_fp32": 0.9}) == {"m1_at_least_fp32": False}


def test_forcing_a_path_restores_the_environment(monkeypatch):
    monkeypatch.delenv(int8_kernels.ISA_ENV, raising=False)
    with int8_kernels.forced_isa("portable"):
        assert os.environ[int8_kernels.ISA_ENV] == "portable"
    assert int8_kernels.ISA_ENV not in os.environ
