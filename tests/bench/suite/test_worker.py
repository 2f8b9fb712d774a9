import numpy as np

from bench.suite.worker import load_inputs, peak_rss_bytes, save_inputs


def test_inputs_round_trip_through_the_worker_file(tmp_path):
    rng = np.random.default_rng(0)
    evaluation = [{"input_ids": rng.integers(0, 100, (4, 8)), "attention_mask": np.ones((4, 8), np.int64)} for _ in range(3)]
    latency = {1: [{"input_ids": rng.integers(0, 100, (1, 8)), "attention_mask": np.ones((1, 8), np.int64)}] * 4,
               16: [{"input_ids": rng.integers(0, 100, (16, 8)), "attention_mask": np.ones((16, 8), np.int64)}] * 4}
    save_inputs(tmp_path / "inputs.npz", evaluation, latency)
    ev, lat = load_inputs(tmp_path / "inputs.npz")
    assert len(ev) == 3 and all(np.array_equal(a["input_ids"], b["input_ids"]) for a, b in zip(ev, evaluation))
    assert sorted(lat) == [1, 16] and lat[16][0]["input_ids"].shape == (16, 8) and len(lat[1]) == 4


def test_peak_rss_is_at_least_the_current_rss():
    import psutil

    assert peak_rss_bytes() >= psutil.Process().memory_info().rss * 0.99
