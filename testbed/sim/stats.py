"""Streaming aggregates whose memory does not grow with the number of requests.

- ``LatencyHistogram``: fixed log-spaced bins (0.1% wide, 1 µs to 10^5 s), so a percentile read from it
  is within 0.1% of the exact one; mean and variance are kept exactly.
- ``Timeline``: mean latency per completion-time window; when it holds more than ``max_windows`` the
  windows are merged pairwise and their width doubles, so memory stays bounded for any run length.
- ``mean_ci``: mean and 95% Student-t half-width over seeds.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LatencyHistogram", "Timeline", "mean_ci", "T95"]

_LOG_STEP = math.log1p(0.001)
_MIN_S = 1e-6
_N_BINS = int(math.log(1e5 / _MIN_S) / _LOG_STEP) + 2
# two-sided 95% Student-t quantiles for 1..30 degrees of freedom
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
       2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
       2.042)


class LatencyHistogram:
    """Counts of latencies in log bins plus exact count/sum/sum of squares."""

    __slots__ = ("counts", "n", "total_s", "total_sq", "min_s", "max_s")

    def __init__(self) -> None:
        self.counts = np.zeros(_N_BINS, dtype=np.int64)
        self.n = 0
        self.total_s = 0.0
        self.total_sq = 0.0
        self.min_s = math.inf
        self.max_s = 0.0

    @staticmethod
    def bin_of(latency_s: float) -> int:
        if latency_s <= _MIN_S:
            return 0
        b = int(math.log(latency_s / _MIN_S) / _LOG_STEP) + 1
        return b if b < _N_BINS else _N_BINS - 1

    def add_many(self, latencies_s: np.ndarray) -> None:
        x = np.asarray(latencies_s, dtype=float)
        if not len(x):
            return
        bins = np.where(x <= _MIN_S, 0, np.floor(np.log(np.maximum(x, _MIN_S) / _MIN_S) / _LOG_STEP) + 1)
        np.add.at(self.counts, np.minimum(bins.astype(np.int64), _N_BINS - 1), 1)
        self.n += len(x)
        self.total_s += float(x.sum())
        self.total_sq += float((x * x).sum())
        self.min_s = min(self.min_s, float(x.min()))
        self.max_s = max(self.max_s, float(x.max()))

    @property
    def mean_s(self) -> float:
        return self.total_s / self.n if self.n else math.nan

    @property
    def std_s(self) -> float:
        if self.n < 2:
            return 0.0 if self.n else math.nan
        var = (self.total_sq - self.total_s**2 / self.n) / (self.n - 1)
        return math.sqrt(max(var, 0.0))

    def edges_s(self) -> np.ndarray:
        """Upper edge of each bin in seconds."""
        return _MIN_S * np.exp(np.arange(_N_BINS) * _LOG_STEP)

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile, reported as the geometric middle of its bin (clamped to min/max seen)."""
        if not self.n:
            return math.nan
        rank = max(1, math.ceil(q * self.n))
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        value = _MIN_S * math.exp((b - 0.5) * _LOG_STEP) if b > 0 else _MIN_S
        return min(max(value, self.min_s), self.max_s)

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """(latency_s, cumulative fraction) at each non-empty bin, for plotting."""
        nz = np.nonzero(self.counts)[0]
        if not len(nz):
            return np.array([]), np.array([])
        cum = np.cumsum(self.counts)[nz] / self.n
        return self.edges_s()[nz], cum


class Timeline:
    """Mean latency per completion-time window, bounded in memory."""

    __slots__ = ("width_s", "sums", "counts", "max_windows")

    def __init__(self, width_s: float, max_windows: int = 1000) -> None:
        self.width_s = width_s
        self.sums: list[float] = []
        self.counts: list[int] = []
        self.max_windows = max_windows

    def add(self, t_s: float, latency_s: float) -> None:
        w = int(t_s / self.width_s)
        while w >= len(self.sums):
            if len(self.sums) >= self.max_windows:
                self._coarsen()
                w = int(t_s / self.width_s)
                continue
            self.sums.append(0.0)
            self.counts.append(0)
        self.sums[w] += latency_s
        self.counts[w] += 1

    def _coarsen(self) -> None:
        sums, counts = self.sums, self.counts
        if len(sums) % 2:
            sums.append(0.0)
            counts.append(0)
        self.sums = [sums[i] + sums[i + 1] for i in range(0, len(sums), 2)]
        self.counts = [counts[i] + counts[i + 1] for i in range(0, len(counts), 2)]
        self.width_s *= 2

    def rows(self) -> list[tuple[float, float, int]]:
        """(window start s, mean latency s, count) for non-empty windows."""
        return [(i * self.width_s, s / c, c) for i, (s, c) in enumerate(zip(self.sums, self.counts, strict=True)) if c]


def mean_ci(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student t; 0 for one value)."""
    x = [v for v in values if v is not None and not math.isnan(v)]
    if not x:
        return math.nan, math.nan
    m = sum(x) / len(x)
    if len(x) < 2:
        return m, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1))
    t = T95[len(x) - 2] if len(x) - 1 <= len(T95) else 1.96
    return m, t * sd / math.sqrt(len(x))
