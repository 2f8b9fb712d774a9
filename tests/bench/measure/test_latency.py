import time

import numpy as np
import pytest

from bench.measure.latency import Latency, measure


def test_measure_runs_at_least_min_iters_and_orders_percentiles():
    calls = []
    inputs = [{"x": np.zeros((3, 2))}, {"x": np.ones((3, 2))}]

    def fn(batch):
        calls.append(batch)
        time.sleep(0.0005 * (1 + len(calls) % 3))

    lat = measure(fn, inputs, warmup=2, min_iters=12, min_seconds=0.0)
    assert lat.iterations >= 12
    assert len(calls) == 2 + lat.iterations  # warm-up calls are not timed
    assert 0 < lat.p50_ms <= lat.p90_ms <= lat.p99_ms
    assert lat.p50_ms >= 0.4  # each call sleeps at least 0.5 ms
    assert lat.batch_size == 3


def test_measure_rotates_inputs():
    seen = []
    inputs = [{"x": np.full((1,), i)} for i in range(3)]
    measure(lambda b: seen.append(int(b["x"][0])), inputs, warmup=0, min_iters=6, min_seconds=0.0)
    assert seen[:6] == [0, 1, 2, 0, 1, 2]


def test_measure_keeps_going_until_min_seconds():
    start = time.perf_counter()
    lat = measure(lambda b: time.sleep(0.001), [{"x": np.zeros((5, 1))}], warmup=0, min_iters=1, min_seconds=0.05)
    assert time.perf_counter() - start >= 0.05
    assert lat.iterations > 1
    assert lat.batch_size == 5


def test_measure_stops_at_max_iters():
    lat = measure(lambda b: None, [{"x": np.zeros((1, 1))}], warmup=0, min_iters=1, min_seconds=60.0, max_iters=50)
    assert lat.iterations == 50


def test_measure_raises_value_error_when_no_inputs():
    with pytest.raises(ValueError):
        measure(lambda b: None, [])


def test_latency_throughput_is_samples_per_second_at_median():
    lat = Latency(batch_size=8, iterations=10, p50_ms=4.0, p90_ms=5.0, p99_ms=6.0, mean_ms=4.5)
    assert lat.throughput == pytest.approx(2000.0)
    assert lat.to_json()["throughput_per_s"] == 2000.0
    assert lat.to_json()["p90_ms"] == 5.0


def _spin(ms: float) -> None:
    """Busy work for ``ms`` milliseconds: CPU-bound, like a model's forward."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def test_a_steady_cpu_bound_measurement_is_trusted():
    lat = measure(lambda b: _spin(1.0), [{"x": np.zeros((1, 1))}], warmup=2, min_iters=30, min_seconds=0.1)
    assert lat.trust_problem() is None, lat
    assert lat.cpu_share > 0.5 and 0.8 < lat.drift < 1.25
    assert lat.to_json()["untrusted"] is None


def test_a_measurement_that_slows_down_is_not_trusted_for_its_drift():
    calls = []

    def slowing(_):  # a neighbour gradually taking the core: each call a little slower than the last
        calls.append(1)
        _spin(1.0 + 0.8 * len(calls) / 30)

    lat = measure(slowing, [{"x": np.zeros((1, 1))}], warmup=0, min_iters=30, min_seconds=0.0, max_iters=30)
    assert lat.drift > 1.35 and lat.p90_ms < 1.5 * lat.p50_ms  # a spread that passes, a drift that does not
    assert "last third ran at" in lat.trust_problem()


def test_a_process_that_waits_for_the_cpu_is_not_trusted_but_a_gpu_wait_is_not_judged():
    lat = measure(lambda b: time.sleep(0.002), [{"x": np.zeros((1, 1))}], warmup=0, min_iters=10, min_seconds=0.0)
    assert lat.cpu_share < 0.5 and "busy CPU" in lat.trust_problem()  # how a process starved of its core looks
    gpu = measure(lambda b: time.sleep(0.002), [{"x": np.zeros((1, 1))}], warmup=0, min_iters=10, min_seconds=0.0, cpu_bound=False)
    assert gpu.cpu_share is None and gpu.trust_problem() is None


def test_a_wide_spread_is_not_trusted():
    lat = Latency(batch_size=1, iterations=30, p50_ms=0.1, p90_ms=80.0, p99_ms=90.0, mean_ms=30.0)
    assert lat.trust_problem() == "p90 is 800.0x p50"
