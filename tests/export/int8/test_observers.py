import time

import numpy as np
import pytest

from export.int8.observers import METHODS, RangeObserver, _kl_per_threshold

BINS = 2048


def observe(x: np.ndarray, batches: int = 1, bins: int = BINS) -> RangeObserver:
    obs = RangeObserver(bins)
    for batch in np.array_split(x, batches):
        obs.update(batch)
    return obs


def fake_quant_mse(x: np.ndarray, lo: float, hi: float, symmetric: bool) -> float:
    """Actual error of INT8 fake quantization: 255 levels on [-hi, hi] or 256 on [lo, hi] with a zero point."""
    if symmetric:
        scale = hi / 127
        deq = np.clip(np.round(x / scale), -127, 127) * scale
    else:
        scale = (hi - lo) / 255
        zero_point = np.round(-lo / scale)
        deq = (np.clip(np.round(x / scale) + zero_point, 0, 255) - zero_point) * scale
    return float(np.mean((x - deq) ** 2))


def naive_kl(hist: np.ndarray, levels: int) -> np.ndarray:
    """TensorRT's entropy calibration as a plain loop: one threshold, one level at a time."""
    out = []
    for i in range(128, len(hist) + 1):
        p = hist[:i].astype(np.float64)
        p[-1] += hist[i:].sum()
        level = np.arange(i) * levels // i
        q = np.zeros(i)
        for k in range(levels):
            members = (level == k) & (hist[:i] > 0)
            if members.any():
                q[members] = hist[:i][members].sum() / members.sum()
        if q.sum() == 0 or np.any((p > 0) & (q == 0)):
            out.append(np.inf)
            continue
        p, q = p / p.sum(), q / q.sum()
        out.append(float(np.sum(p[p > 0] * np.log(p[p > 0] / q[p > 0]))))
    return np.array(out)


def test_range_minmax_equals_numpy_min_max_over_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i / 10, scale=1 + i, size=(4, 8, 8)).astype(np.float32) for i in range(20)]
    obs = RangeObserver()
    for b in batches:
        obs.update(b)
    x = np.concatenate([b.ravel() for b in batches]).astype(np.float64)
    assert obs.count == x.size
    assert (obs.min, obs.max) == (x.min(), x.max())
    assert obs.range("minmax", symmetric=False) == (x.min(), x.max())
    assert obs.range("minmax", symmetric=True) == (-np.abs(x).max(), np.abs(x).max())


def test_range_percentile_streamed_matches_single_update_within_one_bin_when_fed_50_batches():
    rng = np.random.default_rng(1)
    x = rng.standard_t(3, 200_000) * np.repeat(np.geomspace(0.1, 10, 50), 4000)  # range grows batch by batch
    streamed, once = observe(x, batches=50), observe(x)
    bin_width = 2 * np.abs(x).max() / BINS  # the grown span is < 2 max|x|
    for symmetric in (False, True):
        for p in (99.0, 99.9, 99.99):
            np.testing.assert_allclose(streamed.range("percentile", symmetric, p), once.range("percentile", symmetric, p), atol=bin_width, rtol=0)


@pytest.mark.parametrize("p", [90.0, 99.0, 99.9])
def test_range_percentile_is_within_two_bins_of_numpy_percentile_on_student_t(p):
    rng = np.random.default_rng(2)
    x = rng.standard_t(3, 500_000)
    obs = observe(x, batches=50)
    tol = 2 * (2 * np.abs(x).max() / BINS)
    lo, hi = obs.range("percentile", symmetric=False, percentile=p)
    assert abs(hi - np.percentile(x, p)) <= tol
    assert abs(lo - np.percentile(x, 100 - p)) <= tol
    lo, hi = obs.range("percentile", symmetric=True, percentile=p)
    assert abs(hi - np.percentile(np.abs(x), p)) <= tol and lo == -hi


def test_range_percentile_100_equals_minmax():
    x = np.random.default_rng(3).normal(size=10_000)
    obs = observe(x, batches=7)
    assert obs.range("percentile", False, 100.0) == obs.range("minmax", False)
    assert obs.range("percentile", True, 100.0) == obs.range("minmax", True)


@pytest.mark.parametrize("levels", [128, 256])
def test_kl_per_threshold_matches_naive_loop(levels):
    rng = np.random.default_rng(4)
    hist = np.histogram(np.abs(rng.standard_t(3, 20_000)), bins=512)[0].astype(np.float64)
    hist[rng.random(512) < 0.1] = 0  # empty bins inside the range exercise the inf and nnz paths
    fast, slow = _kl_per_threshold(hist, levels), naive_kl(hist, levels)
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(slow))
    np.testing.assert_allclose(fast[np.isfinite(slow)], slow[np.isfinite(slow)], rtol=1e-9, atol=1e-12)


def test_range_entropy_keeps_most_gaussian_mass_and_usually_clips_the_tail():
    clipped = 0
    for seed in range(10):
        x = np.random.default_rng(seed).normal(size=100_000)
        amax = np.abs(x).max()
        for symmetric in (True, False):
            lo, hi = observe(x).range("entropy", symmetric)
            # Sparse tail bins make the KL minimum land at max|x| for some samples, so "clips" is
            # asserted over seeds; 3 sigma keeps 99.7% of the mass.
            assert 3.0 < hi <= amax and -amax <= lo < -3.0
            clipped += hi < amax
    assert clipped >= 10


def test_range_entropy_clips_heavy_tail_and_single_outlier():
    rng = np.random.default_rng(5)
    t = rng.standard_t(4, 100_000)
    assert observe(t, batches=10).range("entropy", True)[1] < 0.8 * np.abs(t).max()
    x = np.append(rng.normal(size=100_000), 50.0)
    for symmetric in (True, False):
        lo, hi = observe(x, batches=10).range("entropy", symmetric)
        assert 3.0 < hi < 10.0 and lo < -3.0


def test_range_entropy_takes_well_under_a_second_for_2048_bins():
    obs = observe(np.random.default_rng(6).standard_t(3, 100_000))
    start = time.perf_counter()
    obs.range("entropy", True)
    obs.range("entropy", False)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("symmetric", [True, False])
def test_range_mse_beats_minmax_on_heavy_tail_and_is_near_best_candidate(symmetric):
    x = np.random.default_rng(7).standard_t(3, 200_000) + 0.5  # offset so asymmetric differs
    obs = observe(x, batches=20)
    mse_err = fake_quant_mse(x, *obs.range("mse", symmetric), symmetric)
    assert mse_err < 0.8 * fake_quant_mse(x, *obs.range("minmax", symmetric), symmetric)
    lo, hi = obs.range("minmax", symmetric)
    best = min(fake_quant_mse(x, s * lo, s * hi, symmetric) for s in np.linspace(1.0, 0.01, 100))
    assert mse_err <= 1.2 * best


@pytest.mark.parametrize("symmetric", [True, False])
def test_range_mse_is_no_worse_than_minmax_when_data_is_uniform(symmetric):
    x = np.random.default_rng(8).uniform(-1.0, 3.0, 200_000)
    obs = observe(x, batches=20)
    minmax_err = fake_quant_mse(x, *obs.range("minmax", symmetric), symmetric)
    assert fake_quant_mse(x, *obs.range("mse", symmetric), symmetric) <= 1.05 * minmax_err


@pytest.mark.parametrize("method", METHODS)
def test_range_is_zero_when_tensor_is_all_zeros(method):
    obs = RangeObserver()
    for _ in range(3):
        obs.update(np.zeros((2, 3), dtype=np.float32))
    assert obs.count == 18
    assert obs.range(method, True) == (0.0, 0.0)
    assert obs.range(method, False) == (0.0, 0.0)


def test_update_keeps_zeros_seen_before_the_first_nonzero_batch():
    obs = RangeObserver()
    obs.update(np.zeros(950))
    obs.update(np.random.default_rng(9).uniform(1.0, 2.0, 50))
    lo, hi = obs.range("percentile", symmetric=True, percentile=90.0)
    assert hi <= obs.max / BINS  # the 90th percentile of |x| is 0, up to one bin


@pytest.mark.parametrize("bad, name", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_update_raises_value_error_naming_the_problem_when_not_finite(bad, name):
    with pytest.raises(ValueError, match=name):
        RangeObserver().update(np.array([1.0, bad, 2.0]))


def test_range_raises_value_error_when_method_or_percentile_is_invalid():
    obs = observe(np.arange(-5.0, 6.0))
    with pytest.raises(ValueError, match="unknown range method"):
        obs.range("kl", True)
    for p in (50.0, 10.0, 100.5):
        with pytest.raises(ValueError, match="percentile must be in"):
            obs.range("percentile", False, p)
    with pytest.raises(ValueError, match="before any values"):
        RangeObserver().range("minmax", True)
    with pytest.raises(ValueError, match="bins"):
        RangeObserver(bins=100)


@pytest.mark.parametrize("method", METHODS)
def test_range_contains_zero_and_is_symmetric_when_asked(method):
    rng = np.random.default_rng(10)
    for x in (rng.uniform(2.0, 5.0, 10_000), -rng.uniform(2.0, 5.0, 10_000), rng.standard_t(3, 10_000)):
        obs = observe(x, batches=5)
        lo, hi = obs.range(method, symmetric=False)
        assert min(obs.min, 0.0) <= lo <= 0.0 <= hi <= max(obs.max, 0.0)
        lo, hi = obs.range(method, symmetric=True)
        assert lo == -hi and 0.0 <= hi <= max(-obs.min, obs.max)


def test_update_keeps_memory_constant_when_range_grows_over_many_batches():
    obs = RangeObserver()
    rng = np.random.default_rng(11)

    def held_bytes():
        return sum(v.nbytes for v in vars(obs).values() if isinstance(v, np.ndarray))

    obs.update(rng.normal(size=1000))
    before = held_bytes()
    for i in range(200):
        obs.update(rng.normal(size=1000) * 1.2 ** i)  # span grows by ~2^52 in total
    assert held_bytes() == before <= 2 * BINS * 8
    assert obs.count == 201_000
    lo, hi = obs.range("percentile", symmetric=True, percentile=99.0)
    assert 0.0 < hi <= obs.max
