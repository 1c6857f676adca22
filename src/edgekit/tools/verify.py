"""Compare two models on the same inputs: output differences and interleaved latency.

Used by ``quantize`` and ``convert``: the derived model is checked against the original on
the same inputs, so a conversion or a quantization is never reported without its cost.

- :func:`output_drift` per output: max and mean absolute difference, relative L2 error
  (``||b - a|| / ||a||``) and, for a ``[N, C]`` output, the share of rows whose argmax agrees.
- :func:`interleaved_latency`: each round runs every predictor once, in turn, so that load
  from other processes hits all of them alike; the median per predictor, in milliseconds.
- :func:`random_feeds`: reproducible inputs for a model's input specs (dynamic dims from ``dims``).

Example::

    with edgekit.load("m.onnx") as a, edgekit.load("m.xml") as b:
        feeds = random_feeds(a.inputs, 3)
        drift = output_drift([a(f) for f in feeds], [b(f) for f in feeds])
        p50_a, p50_b = interleaved_latency([a, b], feeds[0])
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.tensors import TensorSpec

__all__ = ["Drift", "interleaved_latency", "output_drift", "random_feeds"]


@dataclass(frozen=True)
class Drift:
    """How far one output of model B is from model A's, over all compared inputs."""

    output: str
    max_abs: float
    mean_abs: float
    rel_l2: float
    top1_agreement: float | None = None  # [N, C] outputs: share of rows with the same argmax

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        top = f", top-1 agreement {self.top1_agreement:.1%}" if self.top1_agreement is not None else ""
        return f"{self.output}: max |diff| {self.max_abs:.3g}, mean |diff| {self.mean_abs:.3g}, " \
               f"rel L2 {self.rel_l2:.3g}{top}"


def output_drift(reference: Sequence[Mapping[str, np.ndarray]],
                 other: Sequence[Mapping[str, np.ndarray]]) -> list[Drift]:
    """Per output of ``reference`` (matched by position), the difference of ``other`` over all runs."""
    out: list[Drift] = []
    if not reference:
        return out
    names = list(reference[0])
    for i, name in enumerate(names):
        a = [np.asarray(r[name], np.float64) for r in reference]
        b = [np.asarray(list(o.values())[i], np.float64) for o in other]
        diff = np.concatenate([(y - x).ravel() for x, y in zip(a, b)])
        ref = np.concatenate([x.ravel() for x in a])
        norm = float(np.linalg.norm(ref))
        top1 = None
        if a[0].ndim == 2 and a[0].shape[1] > 1:
            top1 = float(np.mean(np.concatenate([x.argmax(1) == y.argmax(1) for x, y in zip(a, b)])))
        out.append(Drift(name, float(np.abs(diff).max(initial=0.0)), float(np.abs(diff).mean()) if diff.size else 0.0,
                         float(np.linalg.norm(diff) / norm) if norm else float(np.linalg.norm(diff)), top1))
    return out


def interleaved_latency(predictors: Sequence[Any], feeds: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
                        *, warmup: int = 3, rounds: int = 50, budget_s: float = 5.0) -> list[float]:
    """Median milliseconds per predictor over interleaved rounds (stops early after ``budget_s``).

    ``feeds`` is one feed for all predictors, or one per predictor (when their input layouts differ).
    """
    per = list(feeds) if isinstance(feeds, Sequence) else [feeds] * len(predictors)
    for _ in range(warmup):
        for p, f in zip(predictors, per):
            p.run(f)
    times: list[list[float]] = [[] for _ in predictors]
    end = time.perf_counter() + budget_s
    for r in range(rounds):
        order = list(range(len(predictors)))
        if r % 2:
            order.reverse()  # alternate who runs first
        for i in order:
            t0 = time.perf_counter_ns()
            predictors[i].run(per[i])
            times[i].append((time.perf_counter_ns() - t0) / 1e6)
        if r >= 4 and time.perf_counter() > end:
            break
    return [float(np.median(t)) for t in times]


def random_feeds(specs: Sequence[TensorSpec], n: int = 3, *, seed: int = 0,
                 dims: Mapping[str, Sequence[int]] | None = None, fill: int = 1) -> list[dict[str, np.ndarray]]:
    """``n`` reproducible feeds: floats from N(0, 1), integers in [0, 10), booleans; dynamic dims ``fill``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        feed = {}
        for s in specs:
            shape = tuple((dims or {}).get(s.name) or s.concrete_shape(fill))
            if s.dtype.kind == "f":
                feed[s.name] = rng.normal(0, 1, shape).astype(s.dtype)
            elif s.dtype.kind == "b":
                feed[s.name] = rng.integers(0, 2, shape).astype(bool)
            else:
                info = np.iinfo(s.dtype)
                feed[s.name] = rng.integers(max(info.min, 0), min(info.max, 10), shape).astype(s.dtype)
        out.append(feed)
    return out
