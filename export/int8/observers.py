"""Streaming activation-range observers for static INT8 calibration (numpy only).

One observer watches one tensor over many calibration batches. It keeps exact min/max/count and a
fixed-size histogram, so memory is O(bins) however many batches are fed; every clipping method
(percentile, entropy, mse) reads that histogram.
"""

from __future__ import annotations

import numpy as np

METHODS = ("minmax", "percentile", "entropy", "mse")
MSE_CANDIDATES = 100  # scales from 1.0 down to 0.01 of the min/max range
ENTROPY_START_BIN = 128  # smallest threshold searched, in histogram bins (as TensorRT)


class RangeObserver:
    """Collects the range of one tensor over many batches.

    The histogram has ``bins`` bins over [0, A] for each sign (so 2*bins over [-A, A], and the
    histogram of |x| has ``bins`` bins). When a batch exceeds A, A grows by a power of two and
    the old counts are merged into the wider bins: bin edges stay aligned, nothing is dropped.
    """

    def __init__(self, bins: int = 2048):
        if not isinstance(bins, int) or bins < ENTROPY_START_BIN:
            raise ValueError(f"bins must be an int >= {ENTROPY_START_BIN} (the entropy search starts there), got {bins!r}")
        self.bins = bins
        self._pos = np.zeros(bins)  # counts of x >= 0 by |x| bin
        self._neg = np.zeros(bins)  # counts of x < 0 by |x| bin
        self._span = 0.0  # A; 0 while only zeros have been seen
        self._min = np.inf
        self._max = -np.inf
        self._count = 0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return
        if not np.isfinite(x).all():
            bad = "NaN" if np.isnan(x).any() else "Inf"
            raise ValueError(f"RangeObserver.update got {bad} values; calibration data must be finite")
        ax = np.abs(x)
        peak = float(ax.max())
        if peak > self._span:
            self._grow(peak)
        self._min = min(self._min, float(x.min()))
        self._max = max(self._max, float(x.max()))
        self._count += x.size
        if self._span == 0.0:  # all zeros so far: bin 0 holds zero for any later span
            self._pos[0] += x.size
            return
        idx = np.minimum((ax * (self.bins / self._span)).astype(np.int64), self.bins - 1)
        both = np.bincount(idx + self.bins * (x < 0), minlength=2 * self.bins)  # one pass for both signs
        self._pos += both[:self.bins]
        self._neg += both[self.bins:]

    def _grow(self, peak: float) -> None:
        if self._span == 0.0:
            self._span = peak
            return
        factor = 2 ** int(np.ceil(np.log2(peak / self._span)))
        while self._span * factor < peak:  # guard against log2 rounding down
            factor *= 2
        merged = np.arange(self.bins) // factor
        self._pos = np.bincount(merged, weights=self._pos, minlength=self.bins)
        self._neg = np.bincount(merged, weights=self._neg, minlength=self.bins)
        self._span *= factor

    @property
    def min(self) -> float:
        return float(self._min)

    @property
    def max(self) -> float:
        return float(self._max)

    @property
    def count(self) -> int:
        return self._count

    def range(self, method: str, symmetric: bool, percentile: float = 99.99) -> tuple[float, float]:
        """(lo, hi) with lo <= 0 <= hi always (so zero is exactly representable). symmetric: lo == -hi."""
        if method not in METHODS:
            raise ValueError(f"unknown range method {method!r}; choose one of {', '.join(METHODS)}")
        if method == "percentile" and not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        if self._count == 0:
            raise ValueError("RangeObserver.range called before any values were observed")
        lo, hi = min(self._min, 0.0), max(self._max, 0.0)
        amax = max(-lo, hi)
        if amax == 0.0:
            return 0.0, 0.0
        if method == "minmax":
            return (-amax, amax) if symmetric else (lo, hi)
        if method == "percentile":
            q = percentile / 100.0
            if symmetric:
                t = min(_quantile(self._pos + self._neg, 0.0, self._span, q), amax)
                return -t, t
            signed = np.concatenate([self._neg[::-1], self._pos])
            return (min(max(_quantile(signed, -self._span, self._span, 1.0 - q), lo), 0.0),
                    max(min(_quantile(signed, -self._span, self._span, q), hi), 0.0))
        if method == "entropy":
            levels = 128 if symmetric else 256
            kl = _kl_per_threshold(self._pos + self._neg, levels)
            # Thresholds are bin upper edges; ties go to the widest threshold.
            best = ENTROPY_START_BIN + len(kl) - 1 - int(np.argmin(kl[::-1]))
            t = min(best * self._span / self.bins, amax)
            return (-t, t) if symmetric else (max(lo, -t), min(hi, t))
        return self._mse_range(lo, hi, amax, symmetric)

    def _mse_range(self, lo: float, hi: float, amax: float, symmetric: bool) -> tuple[float, float]:
        """Scale the range toward 0 and keep the scale with least expected squared error.

        Values inside the range cost step^2/12 (rounding, uniform within a step); a bin outside
        costs (center - bound)^2 + width^2/12 per value (clipping, uniform within the bin).
        """
        w = self._span / self.bins
        scales = np.linspace(1.0, 0.01, MSE_CANDIDATES)[:, None]
        if symmetric:
            counts, centers = self._pos + self._neg, (np.arange(self.bins) + 0.5) * w
            a = scales * amax
            err = np.where(centers > a, (centers - a) ** 2 + w * w / 12, (a / 127) ** 2 / 12)
        else:
            counts = np.concatenate([self._neg[::-1], self._pos])
            centers = (np.arange(-self.bins, self.bins) + 0.5) * w
            los, his = scales * lo, scales * hi
            clipped = np.clip(centers, los, his)
            err = np.where(clipped != centers, (centers - clipped) ** 2 + w * w / 12, ((his - los) / 255) ** 2 / 12)
        s = float(scales[int(np.argmin(err @ counts)), 0])  # first minimum = widest range
        return (-s * amax, s * amax) if symmetric else (s * lo, s * hi)


def _quantile(counts: np.ndarray, start: float, stop: float, q: float) -> float:
    """q-quantile of histogram ``counts`` over [start, stop], linear within the bin it falls in."""
    cum = np.cumsum(counts)
    target = q * cum[-1]
    i = min(int(np.searchsorted(cum, target, side="left")), len(counts) - 1)
    below = cum[i] - counts[i]
    frac = (target - below) / counts[i] if counts[i] > 0 else 0.0
    return float(start + (i + frac) * (stop - start) / len(counts))


def _kl_per_threshold(hist: np.ndarray, levels: int) -> np.ndarray:
    """KL(P||Q) for each threshold i = 128..len(hist) bins (TensorRT's entropy calibration).

    P is hist[:i] with all counts beyond i added to bin i-1; Q spreads each of ``levels`` equal
    chunks of hist[:i] evenly over the chunk's nonzero bins. Prefix sums give every threshold at
    once in O(thresholds * levels) instead of a Python loop over bins.
    """
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        hlogh = np.where(h > 0, h * np.log(h), 0.0)
        cum = np.concatenate([[0.0], np.cumsum(h)])
        nz = np.concatenate([[0], np.cumsum(h > 0)])
        g = np.concatenate([[0.0], np.cumsum(hlogh)])
        i = np.arange(ENTROPY_START_BIN, len(h) + 1)[:, None]
        k = np.arange(levels + 1)[None, :]
        edges = (k * i + levels - 1) // levels  # chunk k is bins [edges[k], edges[k+1])
        mass = np.diff(cum[edges], axis=1)
        m = mass / np.diff(nz[edges], axis=1)  # Q's per-bin count in each chunk
        mlogm = np.where(mass > 0, mass * np.log(m), 0.0).sum(axis=1)
        i, c = i[:, 0], cum[i[:, 0]]
        kl = (g[i] - c * np.log(total) - mlogm + c * np.log(c)) / total
        # Move the last bin's term from h to h + outliers (the clipped tail lands there).
        # Bin i-1 sits in chunk (i-1)*levels//i: the last one unless i < levels (chunks of < 1 bin).
        last, out, m_last = h[i - 1], total - c, m[np.arange(len(i)), (i - 1) * levels // i]
        q_term = np.log(c) - np.log(total) - np.log(m_last)
        fixed = ((last + out) * (np.log(last + out) + q_term) - np.where(last > 0, last * (np.log(last) + q_term), 0.0)) / total
        kl = np.where(out > 0, kl + fixed, kl)
        kl[(c == 0) | ((out > 0) & (last == 0))] = np.inf
    return kl
