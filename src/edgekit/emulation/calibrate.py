"""Fit a device's latency parameters to published or measured latencies, with leave-one-network-out error.

The roofline model (:mod:`edgekit.emulation.latency`) has, per accelerator unit, a compute efficiency
per precision (effective peak = datasheet peak x efficiency), the fraction of it that depthwise
convolutions reach (``op_efficiency[depthwise]``: no reduction over channels, so a matrix engine built
for dot products down many channels idles), a memory efficiency (effective bandwidth), a per-op
dispatch cost and one for data-movement ops (``layout_us``), a per-partition invoke cost, where
activations stay on chip up to a size the effective size an op gets (``onchip_mb``, a step in the cost:
searched on a grid up to the datasheet's) and, where the spec names a separate link (USB), its
effective rate. :func:`fit` finds the values that minimise a robust (soft-L1) least squares of
``log(predicted / measured)`` within physical bounds: effective peak <= datasheet peak, a class's
efficiency <= the dense one, bandwidth and link <= the datasheet's, costs >= 0; a weak pull towards the
hand-set values keeps parameters the data cannot see where they were. Two extra parameters exist only
when the data demands them: ``throughput_ratio``, for figures published as 1000 / FPS of a pipelined
stream (Hailo's model zoo): a dataflow chip overlaps consecutive frames, so such a figure is the
latency times a ratio <= 1; it is fitted when the data mixes both metrics and fixed to 1 (with a
warning) when it has only throughputs. ``postprocess_ms``, a fixed host-CPU time in figures whose
published timing includes post-processing that the built graph lacks (``includes = "postprocess"``:
SSD box decoding and NMS in Coral's table); it is a property of the figures, not of the unit, so it is
reported in the provenance and not used for predictions.

Each sample (:mod:`edgekit.emulation.samples`) carries the :class:`~edgekit.emulation.costs.CostTable` of
its network, computed once from the graph (latency depends on topology and shapes, not on weight values:
networks are built without weights), so a fit evaluates hundreds of parameter sets per second.

Example::

    samples, _ = figure_samples(load_figures("coral-edgetpu", buildable=NETWORKS).figures, profile, builder)
    f = fit(samples, spec.latency)
    f.median_error, f.params.compute_efficiency_by_precision
    cv = cross_validate(samples, spec.latency)      # before/after, per network left out
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.emulation.costs import StackedCosts
from edgekit.emulation.samples import Sample
from edgekit.emulation.spec import LatencyParams

if TYPE_CHECKING:
    pass

__all__ = ["FIT_MEDIAN_LIMIT", "FIT_WORST_LIMIT", "CrossValidation", "Fit", "cross_validate", "fit", "predict_ms"]

#: a fit whose in-sample |error| exceeds these does not reach the data (the issue's targets)
FIT_MEDIAN_LIMIT = 0.20
FIT_WORST_LIMIT = 0.50
#: physical bounds: (low, high) of each parameter; efficiencies <= 1 keep effective peak and bandwidth <= datasheet
BOUNDS = {"compute_efficiency": (1e-3, 1.0), "op_efficiency": (1e-3, 1.0), "memory_efficiency": (1e-3, 1.0), "dispatch_us": (0.0, 1000.0), "layout_us": (0.0, 1000.0),
          "invoke_us": (0.0, 100000.0), "throughput_ratio": (1e-3, 1.0), "postprocess_ms": (0.0, 1000.0)}
_SCALE = {"dispatch_us": 20.0, "layout_us": 20.0, "invoke_us": 500.0, "postprocess_ms": 2.0}  # prior widths of the additive parameters
#: prior widths of log parameters (default: a factor e); an op class's efficiency has no hand-set value (1 = as
#: dense), so its pull is weaker: depthwise convolutions reach a few percent of the dense efficiency on NPUs
_LOG_WIDTH = {"op_efficiency": 5.0}
#: operator classes that get their own fitted efficiency (a fraction of the precision's; latency.op_class)
FIT_OP_CLASSES: tuple[str, ...] = ("depthwise",)
_PRIOR = 0.2  # weight of the pull towards the hand-set values (per factor e, or per prior width)


@dataclass(frozen=True)
class Fit:
    """Fitted parameters, their errors on the data they were fitted to, and whether they reach it."""

    params: LatencyParams
    start: LatencyParams
    fitted: dict[str, float]  # parameter -> value, only those the fit moved ("compute_efficiency[int8]", ...)
    throughput_ratio: float
    ratios: tuple[float, ...]  # predicted / measured, per sample
    at_bounds: tuple[str, ...]
    warnings: tuple[str, ...]
    postprocess_ms: float = 0.0  # host post-processing in the figures that include it (not used to predict)

    @property
    def median_error(self) -> float:
        return _median_err(self.ratios)

    @property
    def worst_error(self) -> float:
        return max((abs(r - 1) for r in self.ratios), default=0.0)

    @property
    def reached(self) -> bool:
        """True when the fit reaches the data within bounds: in-sample median |error| under the limit (single
        samples beyond :data:`FIT_WORST_LIMIT` are outliers, listed in the warnings, not a failed fit)."""
        return self.median_error <= FIT_MEDIAN_LIMIT


@dataclass(frozen=True)
class CrossValidation:
    """Leave-one-network-out: each network predicted by parameters fitted without it, and by the hand-set ones."""

    samples: tuple[Sample, ...]
    before: tuple[float, ...]  # predicted / measured with the hand-set parameters
    after: tuple[float, ...]  # ... with the parameters fitted on the other networks

    def summary(self) -> dict[str, float]:
        """Median and worst |error| before and after."""
        return {"before_median": _median_err(self.before), "before_worst": max(abs(r - 1) for r in self.before),
                "after_median": _median_err(self.after), "after_worst": max(abs(r - 1) for r in self.after)}


def _median_err(ratios: Sequence[float]) -> float:
    return statistics.median(abs(r - 1) for r in ratios) if ratios else 0.0


# --- the fit -------------------------------------------------------------------------------------

def predict_ms(sample: Sample, params: LatencyParams, throughput_ratio: float = 1.0,
               postprocess_ms: float = 0.0) -> float:
    """The model's figure for ``sample`` with ``params``: its latency, or latency x ratio for a throughput figure,
    plus ``postprocess_ms`` when the figure includes post-processing the graph lacks."""
    stated = _as_published([sample])
    return float(stated(np.array([sample.table.total_s(params) * 1e3]), throughput_ratio, postprocess_ms)[0])


def _as_published(samples: Sequence[Sample]) -> Callable[[np.ndarray, float, float], np.ndarray]:
    """``stated(ms, throughput_ratio, postprocess_ms)``: predicted latencies ``ms`` as each of ``samples``' figures
    states them (:func:`predict_ms`); which figures are throughputs or include post-processing is read once."""
    throughput = np.array([s.metric == "throughput" for s in samples])
    post = np.array([s.includes == "postprocess" for s in samples])

    def stated(ms: np.ndarray, throughput_ratio: float, postprocess_ms: float) -> np.ndarray:
        return np.where(throughput, ms * throughput_ratio, ms) + np.where(post, postprocess_ms, 0.0)

    return stated


def _names(samples: Sequence[Sample], base_link: float | None = None) -> list[str]:
    precs = sorted({s.precision for s in samples})
    names = [f"compute_efficiency[{p}]" for p in precs]
    for cls in FIT_OP_CLASSES:  # only when at least two networks have such ops (else the prior alone holds it)
        if len({s.network for s in samples if cls in s.table.op_class}) >= 2:
            names.append(f"op_efficiency[{cls}]")
    names += ["memory_efficiency", "dispatch_us"]
    if len({s.network for s in samples if "layout" in s.table.op_class}) >= 2:
        names.append("layout_us")  # data movement (concat, split, transpose...) apart from compute ops' dispatch
    if base_link and any(s.table.stream_bytes or s.table.crossing_bytes for s in samples):
        names.append("link_gb_s")  # a separate link (USB) the spec names: tensors cross it, weights stream over it
    if any(s.table.invokes for s in samples):
        names.append("invoke_us")
    if {s.metric for s in samples} == {"latency", "throughput"}:
        names.append("throughput_ratio")
    if any(s.includes == "postprocess" for s in samples):
        names.append("postprocess_ms")
    return names


def _kind(name: str) -> str:
    return name.split("[")[0]


def _to_x(name: str, value: float) -> float:
    return value if _kind(name) in _SCALE else math.log(value)


def _from_x(name: str, x: float) -> float:
    return float(x) if _kind(name) in _SCALE else float(math.exp(x))


def _params(base: LatencyParams, names: Sequence[str],
            values: Sequence[float]) -> tuple[LatencyParams, float, float]:
    """The latency parameters, throughput ratio and post-processing time that ``values`` of ``names`` give."""
    by_prec = dict(base.compute_efficiency_by_precision)
    by_class = dict(base.op_efficiency)
    kw: dict[str, Any] = {}
    ratio, post = 1.0, 0.0
    for n, v in zip(names, values, strict=True):
        if n.startswith("compute_efficiency["):
            by_prec[n[len("compute_efficiency["):-1]] = v
        elif n.startswith("op_efficiency["):
            by_class[n[len("op_efficiency["):-1]] = v
        elif n == "throughput_ratio":
            ratio = v
        elif n == "postprocess_ms":
            post = v
        else:
            kw[n] = v
    params = dataclasses.replace(base, compute_efficiency_by_precision=by_prec, op_efficiency=by_class, **kw)
    return params, ratio, post


def _start(base: LatencyParams, name: str) -> float:
    if name.startswith("compute_efficiency["):
        return base.efficiency(name[len("compute_efficiency["):-1])
    if name.startswith("op_efficiency["):
        return base.op_efficiency.get(name[len("op_efficiency["):-1], 1.0)
    if name in ("throughput_ratio", "postprocess_ms"):
        return 0.5 if name == "throughput_ratio" else 0.0
    if name == "layout_us":
        return base.fixed_us("layout")
    return float(getattr(base, name))


#: fractions of a unit's on-chip activation memory (``onchip_mb``, the datasheet's) tried as its effective size
ONCHIP_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def _onchip_grid(samples: Sequence[Sample], base: LatencyParams) -> list[float | None]:
    """The ``onchip_mb`` values to try: where activations stay on chip up to a datasheet size, an op only gets part
    of it (buffers, weight tiles and double-buffering share it), so the effective size is fitted on a grid up to the
    datasheet's; ``[None]`` (keep it) when no op's activations come near any of the candidates."""
    if base.activations != "onchip" or not math.isfinite(base.onchip_mb):
        return [None]
    grid = [base.onchip_mb * f for f in ONCHIP_FRACTIONS]
    if not any(np.any(s.table.act_bytes > grid[0] * 1e6) for s in samples):
        return [None]
    return list(grid)


def fit(samples: Sequence[Sample], base: LatencyParams) -> Fit:
    """Fit ``base``'s parameters to ``samples`` (robust least squares on log(predicted/measured), bounded)."""
    from scipy.optimize import least_squares

    if not samples:
        raise ValueError("no samples to fit: expected at least one published or measured latency.")
    names = _names(samples, base.link_gb_s)
    bounds = {**BOUNDS, "link_gb_s": (1e-3, min(s.table.bandwidth_gb_s for s in samples))}  # the link's raw rate
    lo = np.array([_to_x(n, max(bounds[_kind(n)][0], 1e-9)) if _kind(n) not in _SCALE else bounds[_kind(n)][0]
                   for n in names])
    hi = np.array([_to_x(n, bounds[_kind(n)][1]) for n in names])
    x0 = np.clip([_to_x(n, max(_start(base, n), 1e-6)) for n in names], lo, hi)
    scale = np.array([_SCALE.get(_kind(n), _LOG_WIDTH.get(_kind(n), 1.0)) for n in names])
    measured = np.log([s.ms for s in samples])

    stacked = StackedCosts([s.table for s in samples])  # every sample priced in one pass (predict_ms, vectorised)
    stated = _as_published(samples)

    def residuals(x: np.ndarray, b: LatencyParams) -> np.ndarray:
        p, ratio, post = _params(b, names, [_from_x(n, v) for n, v in zip(names, x, strict=True)])
        ms = stated(stacked.total_s(p) * 1e3, ratio, post)
        return np.concatenate([np.log(np.maximum(ms, 1e-12)) - measured, _PRIOR * (x - x0) / scale])

    # several starts: the max() of the roofline makes the cost piecewise, and an op class's efficiency has next to
    # no gradient where its ops take a small share of the time (the start, 1)
    starts = [(0.0, 0.0), (-1.5, 0.0), (1.5, 0.0)]
    if any(n.startswith("op_efficiency[") for n in names):
        starts.append((0.0, -4.0))
    def solve(onchip: float | None, shift: float, op_shift: float) -> Any:
        b = base if onchip is None else dataclasses.replace(base, onchip_mb=onchip)
        start = x0.copy()
        for i, n in enumerate(names):
            if n.startswith("compute_efficiency[") or n == "memory_efficiency":
                start[i] += shift
            elif n.startswith("op_efficiency["):
                start[i] += op_shift
        return least_squares(residuals, np.clip(start, lo, hi), bounds=(lo, hi), loss="soft_l1", f_scale=0.1,
                             x_scale=scale, max_nfev=400, args=(b,))

    # the on-chip size is a step in the cost: each value of the grid from the first start, then the two best from all
    grid = _onchip_grid(samples, base)
    first = sorted(((solve(c, *starts[0]), c) for c in grid), key=lambda t: t[0].cost)
    best, best_onchip = first[0]
    for res, onchip in [(solve(c, *st), c) for _, c in first[:2] for st in starts[1:]]:
        if res.cost < best.cost:
            best, best_onchip = res, onchip
    assert best is not None
    values = [_from_x(n, v) for n, v in zip(names, best.x, strict=True)]
    params, ratio, post = _params(base if best_onchip is None else dataclasses.replace(base, onchip_mb=best_onchip),
                                  names, values)
    fitted = dict(zip(names, values, strict=True)) | ({} if best_onchip is None else {"onchip_mb": best_onchip})
    ratios = tuple(predict_ms(s, params, ratio, post) / s.ms for s in samples)
    at = tuple(n for n, x, a, b in zip(names, best.x, lo, hi, strict=True)
               if abs(x - a) < 1e-6 * max(1.0, abs(a)) or abs(x - b) < 1e-6 * max(1.0, abs(b)))
    warnings: list[str] = []
    if "throughput" in {s.metric for s in samples} and "throughput_ratio" not in names:
        warnings.append("every figure is a throughput (1000 / FPS of a pipelined stream): the fitted parameters "
                        "predict the time per frame of a stream, which is below the latency of one inference")
    result = Fit(params, base, fitted, ratio, ratios, at, (), post)
    outliers = [f"{s.network} {s.precision} ({s.label}) {r:.2f}x" for s, r in zip(samples, ratios, strict=True)
                if abs(r - 1) > FIT_WORST_LIMIT]
    if outliers:
        warnings.append(f"{len(outliers)} figure(s) the fit misses by more than {FIT_WORST_LIMIT:.0%} (predicted/"
                        f"measured): {', '.join(outliers)}; check that the network is what was measured")
    if not result.reached:
        warnings.append(
            f"the fit cannot reach the data within physical bounds: |error| median {result.median_error:.0%}, "
            f"worst {result.worst_error:.0%} (limit on the median {FIT_MEDIAN_LIMIT:.0%})"
            + (f"; at their bounds: {', '.join(at)}" if at else "")
            + ". The model or the data is off for this device (a network that is not what was measured, a unit "
              "figure that is wrong): the fitted parameters are not used.")
    return dataclasses.replace(result, warnings=tuple(warnings))


def cross_validate(samples: Sequence[Sample], base: LatencyParams) -> CrossValidation:
    """Leave-one-network-out: fit on every other network, predict the one left out; ``before`` uses ``base``.

    With a single network there is nothing to leave out: ``after`` is then the in-sample fit (said by the caller).
    """
    networks = sorted({s.network for s in samples})
    after: dict[int, float] = {}
    for net in networks:
        train = [s for s in samples if s.network != net] or list(samples)
        f = fit(train, base)
        for i, s in enumerate(samples):
            if s.network == net:
                after[i] = predict_ms(s, f.params, f.throughput_ratio, f.postprocess_ms) / s.ms
    before = tuple(predict_ms(s, base, _before_ratio(base)) / s.ms for s in samples)
    return CrossValidation(tuple(samples), before, tuple(after[i] for i in range(len(samples))))


def _before_ratio(base: LatencyParams) -> float:
    """The hand-set model has no throughput ratio: a throughput figure is compared with the latency as it is."""
    del base
    return 1.0
