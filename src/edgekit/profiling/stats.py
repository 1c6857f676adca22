"""Latency statistics: percentiles, the median's confidence interval and the stopping rule.

Definitions (stated once, used everywhere in edgekit's reports):

* **Percentiles** are Hyndman & Fan's type 7 — numpy's default ``method="linear"``: for
  ``n`` sorted samples ``x[0..n-1]`` and ``p`` in [0, 1], ``h = (n - 1) p`` and the value is
  ``x[floor(h)] + (h - floor(h)) (x[floor(h) + 1] - x[floor(h)])``.
* **Confidence interval of the p50**: distribution-free, from order statistics. The number
  of samples below the true median is Binomial(n, 1/2); the interval ``[x(l), x(u)]`` (1-based
  ranks) takes the largest ``l`` with ``P(B <= l - 1) <= (1 - level) / 2`` and ``u = n + 1 - l``,
  computed exactly from the binomial distribution (no normal approximation), so its coverage
  is at least ``level`` for any continuous latency distribution. It assumes independent
  samples; timer noise that drifts (thermal throttling) is not covered by any CI.
* **Stopping rule**: after warm-up, measure until both ends of the p50's 95% CI lie within
  ``±rel_tol`` (2%) of the p50 and at least ``min_samples`` were taken — or the time budget is
  spent, whichever comes first.

Example::

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.9)
    3.7
    >>> median_ci([float(i) for i in range(1, 101)])   # ranks 40 and 61
    (40.0, 61.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LatencyStats", "StoppingRule", "median_ci", "median_ci_ranks", "percentile", "summarize"]

PERCENTILE_DEFINITION = "Hyndman-Fan type 7 (numpy 'linear')"
CI_METHOD = "distribution-free order-statistic CI of the median (exact binomial), 95%"


def percentile(samples: Sequence[float] | np.ndarray, p: float) -> float:
    """The ``p``-quantile (``0 <= p <= 1``) of ``samples`` by Hyndman-Fan type 7."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be within [0, 1], got {p}")
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0:
        raise ValueError("percentile of no samples")
    h = (x.size - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, x.size - 1)
    return float(x[lo] + (h - lo) * (x[hi] - x[lo]))


def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` of the order-statistic CI of the median; ``None`` when ``n`` is too small.

    >>> median_ci_ranks(100)
    (40, 61)
    """
    if n < 1:
        return None
    alpha = (1.0 - level) / 2.0
    k = np.arange(n + 1, dtype=np.float64)
    # log C(n, k) built cumulatively: log C(n, k+1) = log C(n, k) + log(n - k) - log(k + 1)
    steps = np.log(np.arange(n, 0, -1, dtype=np.float64)) - np.log(np.arange(1, n + 1, dtype=np.float64))
    log_pmf = np.concatenate(([0.0], np.cumsum(steps))) - n * math.log(2.0)
    cdf = np.cumsum(np.exp(log_pmf))  # cdf[j] = P(B <= j)
    ok = np.nonzero(cdf[: n // 2 + 1] <= alpha)[0]
    if ok.size == 0:
        return None  # fewer than 6 samples cannot give a 95% interval
    l_rank = int(k[ok[-1]]) + 1  # P(B <= l - 1) <= alpha
    return l_rank, n + 1 - l_rank


def median_ci(samples: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The distribution-free ``level`` CI of the median of ``samples``, or ``None`` when too few."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    ranks = median_ci_ranks(x.size, level)
    if ranks is None:
        return None
    return float(x[ranks[0] - 1]), float(x[ranks[1] - 1])


@dataclass(frozen=True)
class StoppingRule:
    """Stop when the p50's CI is within ``±rel_tol`` of it (after ``min_samples``), or at the budget.

    >>> StoppingRule().satisfied([1.0] * 60)
    True
    """

    rel_tol: float = 0.02
    level: float = 0.95
    min_samples: int = 30
    max_samples: int = 1_000_000

    def half_width(self, samples: Sequence[float] | np.ndarray) -> float | None:
        """The larger distance from the p50 to a CI bound, relative to the p50 (``None``: no CI yet)."""
        x = np.asarray(samples, dtype=np.float64)
        ci = median_ci(x, self.level)
        if ci is None:
            return None
        p50 = percentile(x, 0.5)
        if p50 <= 0:
            return 0.0 if ci == (0.0, 0.0) else math.inf
        return max(p50 - ci[0], ci[1] - p50) / p50

    def satisfied(self, samples: Sequence[float] | np.ndarray) -> bool:
        """True when enough samples were taken for the CI to be tight (or the sample cap is hit)."""
        n = len(samples)
        if n >= self.max_samples:
            return True
        if n < self.min_samples or self.rel_tol <= 0:  # rel_tol 0: never stop early
            return False
        hw = self.half_width(samples)
        return hw is not None and hw <= self.rel_tol


@dataclass(frozen=True)
class LatencyStats:
    """Summary of warm latencies, in milliseconds."""

    n: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    std: float
    p50_ci: tuple[float, float] | None
    throughput: float  # inferences per second = 1000 / mean

    @property
    def ci_half_width(self) -> float | None:
        """Relative half-width of the p50's CI (the larger side)."""
        if self.p50_ci is None or self.p50 <= 0:
            return None
        return max(self.p50 - self.p50_ci[0], self.p50_ci[1] - self.p50) / self.p50


def summarize(samples_ms: Sequence[float] | np.ndarray, level: float = 0.95) -> LatencyStats:
    """Summary statistics of latency samples in milliseconds (std is the sample std, ddof=1).

    >>> summarize([1.0, 2.0, 3.0]).p50
    2.0
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples to summarize")
    mean = float(x.mean())
    return LatencyStats(
        n=int(x.size), min=float(x.min()), p50=percentile(x, 0.5), p90=percentile(x, 0.9),
        p99=percentile(x, 0.99), max=float(x.max()), mean=mean,
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0, p50_ci=median_ci(x, level),
        throughput=1000.0 / mean if mean > 0 else math.inf,
    )
