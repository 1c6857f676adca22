"""Latency statistics: percentiles, the median's confidence interval and the stopping rule.

Definitions (stated once, used everywhere in edgekit's reports):

* **Percentiles** are Hyndman & Fan's type 7 — numpy's default ``method="linear"``, computed
  by :func:`numpy.quantile`: for ``n`` sorted samples ``x[0..n-1]`` and ``p`` in [0, 1],
  ``h = (n - 1) p`` and the value is ``x[floor(h)] + (h - floor(h)) (x[floor(h) + 1] - x[floor(h)])``.
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

    >>> summarize([1.0, 2.0, 3.0, 4.0]).p90   # h = 3 x 0.9 = 2.7: 3 + 0.7 x (4 - 3)
    3.7
    >>> median_ci([float(i) for i in range(1, 101)])   # ranks 40 and 61
    (40.0, 61.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np

__all__ = [
    "CI_METHOD", "MAX_SAMPLES_KEPT", "PERCENTILE_DEFINITION", "LatencyStats", "StopReason", "StoppingRule",
    "median_ci", "median_ci_ranks", "summarize",
]

PERCENTILE_DEFINITION = "Hyndman-Fan type 7 (numpy 'linear')"
CI_METHOD = "distribution-free order-statistic CI of the median (exact binomial), 95%"
MAX_SAMPLES_KEPT = 2000  # raw samples a LatencyStats keeps (evenly decimated beyond)
#: Why measuring stopped: the CI was tight, the time budget or the sample cap was reached, or Ctrl-C.
StopReason = Literal["ci", "budget", "max_samples", "interrupted"]


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
    """The distribution-free ``level`` CI of the median of ``samples``, or ``None`` when too few.

    >>> median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    (1.0, 6.0)
    """
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
        """The larger distance from the p50 to a CI bound, relative to the p50 (``None``: no CI yet).

        >>> StoppingRule().half_width([1.0] * 10)
        0.0
        """
        x = np.asarray(samples, dtype=np.float64)
        ci = median_ci(x, self.level)
        if ci is None:
            return None
        return _relative_half_width(float(np.quantile(x, 0.5, method="linear")), ci)

    def satisfied(self, samples: Sequence[float] | np.ndarray) -> bool:
        """True when enough samples were taken for the CI to be tight (or the sample cap is hit).

        >>> StoppingRule(min_samples=30).satisfied([1.0] * 29)
        False
        """
        n = len(samples)
        if n >= self.max_samples:
            return True
        if n < self.min_samples or self.rel_tol <= 0:  # rel_tol 0: never stop early
            return False
        hw = self.half_width(samples)
        return hw is not None and hw <= self.rel_tol


def _relative_half_width(p50: float, ci: tuple[float, float]) -> float:
    if p50 <= 0:
        return 0.0 if ci == (0.0, 0.0) else math.inf
    return max(p50 - ci[0], ci[1] - p50) / p50


@dataclass(frozen=True)
class LatencyStats:
    """Warm latency over ``n`` runs (ms); ``samples_ms`` is at most 2,000 of them, in time order.

    This is the ``latency`` object of a profile report, field for field (``docs/profile-schema.md``).
    """

    n: Annotated[int, {"minimum": 1}]
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    std: float  # sample standard deviation (ddof=1)
    p50_ci_low: float | None  # the p50's CI (None: fewer than 6 samples)
    p50_ci_high: float | None
    throughput_ips: float  # inferences per second = 1000 / mean
    stop_reason: StopReason
    measure_s: float  # the samples' sum, in seconds
    samples_ms: list[float]  # evenly decimated to MAX_SAMPLES_KEPT when samples_truncated
    samples_truncated: bool

    @property
    def p50_ci(self) -> tuple[float, float] | None:
        """The p50's CI as ``(low, high)``, or ``None``.

        >>> summarize(np.arange(1.0, 101.0)).p50_ci
        (40.0, 61.0)
        """
        if self.p50_ci_low is None or self.p50_ci_high is None:
            return None
        return self.p50_ci_low, self.p50_ci_high

    @property
    def ci_half_width(self) -> float | None:
        """Relative half-width of the p50's CI (the larger side); ``None`` without a CI or a positive p50.

        >>> summarize(np.arange(1.0, 101.0)).ci_half_width   # (61 - 50.5) / 50.5
        0.2079207920792079
        """
        ci = self.p50_ci
        if ci is None or self.p50 <= 0:
            return None
        return _relative_half_width(self.p50, ci)


def summarize(samples_ms: Sequence[float] | np.ndarray, level: float = 0.95, *, stop_reason: StopReason = "budget",
              keep: int = MAX_SAMPLES_KEPT) -> LatencyStats:
    """Summary statistics of latency samples in milliseconds, in time order (std is the sample std, ddof=1).

    At most ``keep`` samples are kept in ``samples_ms`` (evenly decimated, rounded to 1 ns).

    >>> summarize([1.0, 2.0, 3.0]).p50
    2.0
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples to summarize")
    mean = float(x.mean())
    p50, p90, p99 = (float(v) for v in np.quantile(x, [0.5, 0.9, 0.99], method="linear"))
    ci = median_ci(x, level)
    kept = x if x.size <= keep else x[np.linspace(0, x.size - 1, keep).astype(int)]
    return LatencyStats(
        n=int(x.size), min=float(x.min()), p50=p50, p90=p90, p99=p99, max=float(x.max()), mean=mean,
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        p50_ci_low=ci[0] if ci else None, p50_ci_high=ci[1] if ci else None,
        throughput_ips=1000.0 / mean if mean > 0 else math.inf, stop_reason=stop_reason,
        measure_s=float(x.sum()) / 1000.0, samples_ms=[round(float(v), 6) for v in kept],
        samples_truncated=bool(x.size > keep),
    )
