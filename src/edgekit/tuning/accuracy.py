"""The accuracy gate: a candidate's outputs against the float32 reference, output by output, on every sample.

Per output and sample the numbers are those of :mod:`edgekit.profiling.parity` (``max_abs``,
``scaled_err`` = max |out - ref| / max |ref|, ``cosine``, ``argmax_agreement`` for classifier-like
outputs shaped [N, C] with C > 1) plus ``top5_overlap`` (the mean share of the reference's five
highest classes found among the candidate's five, for C > 5) and ``finite``. Over samples the
worst value is kept.

The rule depends on the candidate's precision, each bound replaceable by the user:

* **fp32**: the profiler's parity rule: ``max_abs <= max(atol, rtol x max |ref|)`` (defaults
  ``atol`` 1e-6, ``rtol`` 2e-4), all values finite, and every argmax equal;
* **fp16 / bf16 / int8** (an element-wise bound would reject any reduced precision):
  ``cosine >= 0.999``, all values finite, and for classifier-like outputs every argmax equal
  (``top1`` 1.0) and ``top5_overlap >= 0.8``.

``--tolerance`` items (:func:`parse_tolerance`): ``KEY=VALUE`` for every output, or
``OUTPUT:KEY=VALUE`` for one; keys ``atol``, ``rtol`` (fp32 rule), ``cosine``, ``top1``,
``top5`` (reduced-precision rule), ``iou`` (the task-aware check of ``tune --bundle``, every
precision: box IoU for detections and text boxes, mask IoU for segmentation; see
:mod:`edgekit.tuning.task`).

Example::

    >>> tol = parse_tolerance(["rtol=1e-3", "scores:cosine=0.99"])
    >>> rule_for("scores", "fp16", tol).cosine, rule_for("boxes", "fp32", tol).rtol
    (0.99, 0.001)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError
from edgekit.profiling.parity import ATOL, RTOL, compare_outputs

__all__ = ["COSINE_MIN", "TOP5_MIN", "Accuracy", "Rule", "Tolerances", "describe_rules", "judge", "measure_outputs",
           "output_metrics", "parse_tolerance", "rule_for"]

COSINE_MIN = 0.999
TOP5_MIN = 0.8
_KEYS = ("atol", "rtol", "cosine", "top1", "top5", "iou")
#: user bounds: output name (``"*"`` every output) -> {key: value}
Tolerances = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Rule:
    """The bounds one output must meet (see the module docstring)."""

    kind: str  # "fp32" (element-wise) | "reduced" (cosine and classes)
    atol: float = ATOL
    rtol: float = RTOL
    cosine: float = COSINE_MIN
    top1: float = 1.0
    top5: float = TOP5_MIN
    iou: float = 0.9  # the task-aware check of a bundle (edgekit.tuning.task): box / mask IoU


def parse_tolerance(items: Sequence[str] | str | Mapping[str, Any] | None) -> dict[str, dict[str, float]]:
    """``["rtol=1e-3", "out:cosine=0.99"]`` (or one string with commas, or a dict) -> ``{"*": {...}, "out": {...}}``.

    >>> parse_tolerance("atol=1e-4,rtol=1e-3")
    {'*': {'atol': 0.0001, 'rtol': 0.001}}
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        flat = [f"{k}={v}" if not isinstance(v, Mapping) else "" for k, v in items.items()]
        nested = [f"{o}:{k}={v}" for o, d in items.items() if isinstance(d, Mapping) for k, v in d.items()]
        items = [x for x in flat + nested if x]
    if isinstance(items, str):
        items = [items]
    out: dict[str, dict[str, float]] = {}
    for item in (part.strip() for raw in items for part in str(raw).split(",") if part.strip()):
        head, sep, value = item.rpartition("=")
        output, colon, key = head.rpartition(":") if ":" in head else ("", "", head)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or key not in _KEYS or not math.isfinite(number) or number < 0:
            raise InvalidOptionError(
                f"--tolerance {item!r}: expected [OUTPUT:]KEY=VALUE with KEY one of {list(_KEYS)} and VALUE a number "
                ">= 0, e.g. --tolerance rtol=1e-3 or --tolerance scores:cosine=0.99.")
        out.setdefault(output if colon else "*", {})[key] = number
    return out


def rule_for(output: str, precision: str, tolerances: Tolerances) -> Rule:
    """The rule for ``output`` of a candidate computing in ``precision``, with the user's bounds applied."""
    rule = Rule("fp32" if precision == "fp32" else "reduced")
    given = {**tolerances.get("*", {}), **tolerances.get(output, {})}
    return replace(rule, **{k: float(v) for k, v in given.items()})  # type: ignore[arg-type]


def output_metrics(out: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """The gate's numbers for one output on one sample (see the module docstring); ``note`` when incomparable."""
    p = compare_outputs({"o": out}, {"o": ref}, reference="reference", atol=0.0, rtol=0.0)
    a, r = np.asarray(out), np.asarray(ref)
    m: dict[str, Any] = {"max_abs": p.max_abs, "scaled_err": p.scaled_err, "cosine": p.cosine,
                         "argmax_agreement": p.argmax_agreement, "top5_overlap": None,
                         "peak": float(np.max(np.abs(r.astype(np.float64)))) if r.size else 0.0,
                         "finite": bool(a.dtype.kind not in "fc" or np.all(np.isfinite(a))), "note": p.note}
    if a.shape == r.shape and r.ndim == 2 and r.shape[1] > 5:
        top_a = np.argsort(-a.astype(np.float64), axis=1)[:, :5]
        top_r = np.argsort(-r.astype(np.float64), axis=1)[:, :5]
        m["top5_overlap"] = float(np.mean([len(set(x) & set(y)) / 5.0 for x, y in zip(top_a, top_r)]))
    return m


def _worst(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    if a is None:
        return dict(b)
    out = dict(a)
    for key in ("max_abs", "scaled_err", "peak"):
        vals = [v for v in (a[key], b[key]) if v is not None]
        out[key] = max(vals) if vals else None
    for key in ("cosine", "argmax_agreement", "top5_overlap"):
        vals = [v for v in (a[key], b[key]) if v is not None]
        out[key] = min(vals) if vals else None
    out["finite"] = a["finite"] and b["finite"]
    out["note"] = a["note"] or b["note"]
    return out


@dataclass
class Accuracy:
    """The gate's verdict on one candidate: the worst numbers per output and the first failing one."""

    passed: bool
    rule: str  # "fp32" | "reduced"
    samples: int
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # output -> worst metrics over samples
    failed: str | None = None  # what failed, with the number and the bound
    task: dict[str, Any] | None = None  # the task-aware check's figures (tune --bundle: edgekit.tuning.task)

    @property
    def scaled_err(self) -> float | None:
        """The worst ``scaled_err`` over outputs (the error axis of the report's plot)."""
        vals = [m["scaled_err"] for m in self.outputs.values() if m.get("scaled_err") is not None]
        return max(vals) if vals else None

    def summary(self) -> dict[str, Any]:
        """Flat numbers for reports and plans: worst over outputs, plus ``passed``, ``rule`` and ``failed``."""
        def pick(key: str, fn: Any) -> Any:
            vals = [m[key] for m in self.outputs.values() if m.get(key) is not None]
            return fn(vals) if vals else None

        return {"passed": self.passed, "rule": self.rule, "samples": self.samples,
                "max_abs": pick("max_abs", max), "scaled_err": pick("scaled_err", max), "cosine": pick("cosine", min),
                "argmax_agreement": pick("argmax_agreement", min), "top5_overlap": pick("top5_overlap", min),
                "failed": self.failed, **self.task_summary()}

    def task_summary(self) -> dict[str, Any]:
        """The task-aware check's flat figures (``task``, ``min_iou``, ``unmatched_reference``, ...), {} without one."""
        keys = ("task", "min_iou", "unmatched_reference", "unmatched_candidate", "reference_count",
                "candidate_count", "top1_agreement", "mask_iou")
        return {k: self.task[k] for k in keys if k in self.task} if self.task else {}

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (per-output metrics included)."""
        return {**self.summary(), "outputs": {k: dict(v) for k, v in self.outputs.items()},
                "task_check": dict(self.task) if self.task else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Accuracy:
        """Read :meth:`to_dict`'s layout (the tuning cache)."""
        return cls(bool(data["passed"]), str(data["rule"]), int(data["samples"]),
                   {k: dict(v) for k, v in data.get("outputs", {}).items()}, data.get("failed"),
                   dict(data["task_check"]) if data.get("task_check") else None)


def _pairs(out: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if set(out) == set(ref):
        return [(k, out[k], ref[k]) for k in ref]
    return [(k, o, r) for (k, r), o in zip(ref.items(), out.values())]


def measure_outputs(outs: Sequence[Mapping[str, np.ndarray]], refs: Sequence[Mapping[str, np.ndarray]]
                    ) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Worst metrics per output over the samples, or ({}, why) when the outputs cannot be compared."""
    worst: dict[str, dict[str, Any]] = {}
    if len(outs) != len(refs):
        return {}, f"outputs for {len(outs)} of {len(refs)} samples"
    for out, ref in zip(outs, refs):
        if len(out) != len(ref):
            return {}, f"{len(out)} outputs against the reference's {len(ref)}"
        for name, o, r in _pairs(out, ref):
            worst[name] = _worst(worst.get(name), output_metrics(o, r))
    return worst, None


def judge(metrics: Mapping[str, Mapping[str, Any]], precision: str, tolerances: Tolerances, samples: int,
          incomparable: str | None = None) -> Accuracy:
    """Apply the rule for ``precision`` (with the user's bounds) to each output's worst metrics."""
    kind = rule_for("*", precision, tolerances).kind
    if incomparable:
        return Accuracy(False, kind, samples, {}, incomparable)
    failed = None
    for name, m in metrics.items():
        rule = rule_for(name, precision, tolerances)
        why = _check(name, m, rule)
        if why and failed is None:
            failed = why
    return Accuracy(failed is None, kind, samples, {k: dict(v) for k, v in metrics.items()}, failed)


def _check(name: str, m: Mapping[str, Any], rule: Rule) -> str | None:
    if m.get("note"):
        return f"output {name!r}: {m['note']}"
    if not m["finite"]:
        return f"output {name!r}: NaN or infinite values"
    if m["max_abs"] is None:
        return None  # an empty output
    agree = m.get("argmax_agreement")
    if rule.kind == "fp32":
        allowed = max(rule.atol, rule.rtol * m["peak"])
        if m["max_abs"] > allowed:
            return (f"output {name!r}: max |out - ref| {m['max_abs']:.3g} > allowed {allowed:.3g} "
                    f"(max(atol {rule.atol:g}, rtol {rule.rtol:g} x max |ref| {m['peak']:.3g}))")
        if agree is not None and agree < 1.0:
            return f"output {name!r}: argmax agrees on {agree:.1%} of rows, expected all"
        return None
    if m["cosine"] is not None and m["cosine"] < rule.cosine:
        return f"output {name!r}: cosine similarity {m['cosine']:.6f} < {rule.cosine:g}"
    if agree is not None and agree < rule.top1:
        return f"output {name!r}: argmax agrees on {agree:.1%} of rows, expected >= {rule.top1:.1%}"
    top5 = m.get("top5_overlap")
    if top5 is not None and top5 < rule.top5:
        return f"output {name!r}: top-5 overlap {top5:.1%} < {rule.top5:.0%}"
    return None


def describe_rules(tolerances: Tolerances) -> dict[str, Any]:
    """The default rules with the user's bounds, for the report."""
    return {"fp32": asdict(rule_for("*", "fp32", tolerances)), "reduced": asdict(rule_for("*", "fp16", tolerances)),
            "per_output": {k: dict(v) for k, v in tolerances.items() if k != "*"}}
