from pathlib import Path

import numpy as np
import pytest

from compress.pipeline import fastest_variant
from compress.pipeline.fastest_variant import pick_fastest, session_p50


def test_the_trial_times_every_batch_it_is_given(monkeypatch):
    seen = []
    monkeypatch.setattr(fastest_variant, "run_session", lambda session, x: seen.append(x["ids"].shape[1]))
    batches = [{"ids": np.zeros((1, length), np.int64)} for length in (5, 9, 17, 33)]
    assert session_p50(object(), batches) >= 0
    assert set(seen) == {5, 9, 17, 33}
    assert all(seen.count(length) >= 3 for length in (5, 9, 17, 33))  # warmed once, timed at least twice each


@pytest.fixture
def timed(monkeypatch):
    def use(times: dict[str, float]):
        monkeypatch.setattr(fastest_variant, "trial_p50", lambda path, inputs, threads, disabled: times[path.name])
    return use


def _variants(*names):
    return {name: (Path(name), ()) for name in names}


def test_another_variant_must_beat_the_plain_one_by_the_margin(timed):
    timed({"plain": 10.0, "fused": 9.8})
    assert pick_fastest(_variants("plain", "fused"), [{}], 1, margin=0.03)[0] == "plain"
    timed({"plain": 10.0, "fused": 9.0})
    best, times = pick_fastest(_variants("plain", "fused"), [{}], 1, margin=0.03)
    assert best == "fused" and times == {"plain": 10.0, "fused": 9.0}


def test_only_allowed_variants_may_win_but_all_are_timed(timed):
    timed({"plain": 10.0, "fused": 5.0, "other": 9.0})
    best, times = pick_fastest(_variants("plain", "fused", "other"), [{}], 1, margin=0.03, allowed={"plain", "other"})
    assert best == "other" and set(times) == {"plain", "fused", "other"}
