"""The task-aware half of the accuracy gate for ``edgekit tune --bundle``: results, not tensors, compared.

A bundle's post-processing (:meth:`edgekit.pipeline.Pipeline.postprocess`, the very code
``load_bundle(...).predict`` runs) turns each candidate's raw outputs and the float32
reference's raw outputs, on the same pre-processed frames, into results; they are compared by kind:

* ``ssd`` (:class:`~edgekit.pipeline.results.Detection`) and ``db``
  (:class:`~edgekit.pipeline.results.TextBox`, by its axis-aligned box): every reference
  detection must be matched by a candidate detection with the same label and box IoU >= ``iou``
  (0.9), and every candidate detection by a reference one. Figures: ``min_iou`` (the worst best-match
  IoU in either direction), ``unmatched_reference``, ``unmatched_candidate``, the counts;
* ``classification``: the same top-1 class on every frame (``top1_agreement``);
* ``segmentation``: mask IoU >= ``iou`` for every class present (``mask_iou``, the worst);
* ``none``: no task-aware check (only the raw-output gate).

The bound is the ``iou`` key of ``--tolerance`` (``--tolerance iou=0.8``).

Example::

    >>> box_iou((0, 0, 10, 10), (0, 0, 10, 9))
    0.9
    >>> match_boxes([("face", (0, 0, 10, 10))], [("face", (0, 0, 10, 9))], 0.9)
    {'min_iou': 0.9, 'unmatched_reference': 0, 'unmatched_candidate': 0, 'reference_count': 1, 'candidate_count': 1}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.tuning.accuracy import Accuracy, Tolerances, rule_for

__all__ = ["IOU_MIN", "TaskCheck", "box_iou", "match_boxes", "synthetic_image"]

IOU_MIN = 0.9
Box = tuple[float, float, float, float]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (1.0 for two identical empty boxes)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if union <= 0:
        return 1.0 if tuple(a) == tuple(b) else 0.0
    return round(inter / union, 12)


def match_boxes(ref: Sequence[tuple[str | None, Box]], cand: Sequence[tuple[str | None, Box]],
                iou: float) -> dict[str, Any]:
    """Each side's (label, box) items against the other's: best same-label IoU per item, the worst, unmatched counts."""
    def best(items: Sequence[tuple[str | None, Box]], others: Sequence[tuple[str | None, Box]]) -> list[float]:
        return [max((box_iou(b, o) for lo, o in others if lo == label), default=0.0) for label, b in items]

    r, c = best(ref, cand), best(cand, ref)
    worst = min(r + c, default=None)
    return {"min_iou": worst, "unmatched_reference": sum(v < iou for v in r),
            "unmatched_candidate": sum(v < iou for v in c), "reference_count": len(ref), "candidate_count": len(cand)}


def synthetic_image(width: int = 320, height: int = 240) -> np.ndarray:
    """A deterministic BGR uint8 test picture (gradient, coloured rectangles, circles, a line, text) drawn with OpenCV.

    >>> img = synthetic_image(64, 48)
    >>> img.shape, img.dtype.name, bool((img == synthetic_image(64, 48)).all())
    ((48, 64, 3), 'uint8', True)
    """
    import cv2

    x = np.linspace(40, 200, width, dtype=np.float32)[None, :]
    y = np.linspace(30, 150, height, dtype=np.float32)[:, None]
    img = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                    np.broadcast_to((x + y) / 2, (height, width))], -1).astype(np.uint8).copy()
    w, h = width, height
    cv2.rectangle(img, (w // 10, h // 8), (w // 10 + w // 4, h // 8 + h // 3), (20, 20, 230), -1)
    cv2.rectangle(img, (w // 2, h // 2), (w // 2 + w // 5, h // 2 + h // 4), (30, 200, 40), -1)
    cv2.circle(img, (3 * w // 4, h // 4), max(2, min(w, h) // 8), (220, 60, 20), -1)
    cv2.circle(img, (w // 4, 3 * h // 4), max(2, min(w, h) // 10), (240, 240, 240), -1)
    cv2.line(img, (0, h - 1), (w - 1, h // 3), (0, 0, 0), max(1, min(w, h) // 60))
    cv2.putText(img, "edgekit", (w // 3, h // 3), cv2.FONT_HERSHEY_SIMPLEX, max(0.3, w / 400), (0, 0, 0),
                max(1, w // 200))
    return img


def _items(results: Any) -> list[tuple[str | None, Box]]:
    from edgekit.pipeline.results import Detection, TextBox

    out: list[tuple[str | None, Box]] = []
    for r in results:
        if isinstance(r, Detection):
            out.append((r.label, r.box))
        elif isinstance(r, TextBox):
            out.append((None, r.box))
    return out


def _mask_iou(ref: np.ndarray, cand: np.ndarray) -> float:
    if ref.shape != cand.shape:
        return 0.0
    classes = set(np.unique(ref).tolist()) | set(np.unique(cand).tolist())
    if len(classes) > 1:
        classes.discard(0)  # background, when anything else is there
    ious = []
    for k in classes:
        a, b = ref == k, cand == k
        union = int(np.count_nonzero(a | b))
        ious.append(1.0 if union == 0 else int(np.count_nonzero(a & b)) / union)
    return min(ious, default=1.0)


class TaskCheck:
    """Compares post-processed results of a candidate with the reference's (see the module docstring).

    ``pipeline``: a :class:`~edgekit.pipeline.Pipeline` of the bundle (its :meth:`postprocess`
    is all that is used); ``transforms``: each sample's frame <-> model transform, in sample order.
    """

    def __init__(self, pipeline: Any, transforms: Sequence[Any], source: str) -> None:
        self.pipeline, self.transforms, self.kind = pipeline, list(transforms), str(pipeline.kind)
        self.task = {"ssd": "detection", "db": "text", "classification": "classification",
                     "segmentation": "segmentation"}.get(self.kind, "none")
        self.key = hashlib.sha256(f"{pipeline.config.post!r}|{source}".encode()).hexdigest()[:16]
        self._ref_results: list[Any] | None = None

    def describe(self, tolerances: Tolerances) -> str:
        """One line for the report: what is compared, with the bound."""
        iou = self.bound(tolerances)
        return {"detection": f"detections (same label, box IoU >= {iou:g}, both ways)",
                "text": f"text boxes (box IoU >= {iou:g}, both ways)",
                "classification": "the same top-1 class", "segmentation": f"mask IoU >= {iou:g} per class",
                }.get(self.task, "nothing (post-processing kind 'none')") + \
            f" through the bundle's post-processing (kind {self.kind!r})"

    @staticmethod
    def bound(tolerances: Tolerances) -> float:
        """The IoU bound: ``iou`` of ``--tolerance`` (0.9 by default)."""
        return rule_for("*", "fp32", tolerances).iou

    def _post(self, outputs: Mapping[str, np.ndarray], names: Sequence[str], k: int) -> Any:
        named = dict(outputs) if set(outputs) == set(names) else dict(zip(names, outputs.values()))
        return self.pipeline.postprocess(named, self.transforms[k])

    def measure(self, outs: Sequence[Mapping[str, np.ndarray]], refs: Sequence[Mapping[str, np.ndarray]],
                tolerances: Tolerances) -> dict[str, Any]:
        """The figures over every sample (worst kept); ``note`` when the results could not be made."""
        m: dict[str, Any] = {"task": self.task, "kind": self.kind, "note": None}
        if self.task == "none" or len(outs) != len(refs):
            return m
        names = list(refs[0]) if refs else []
        if self._ref_results is None:
            self._ref_results = [self._post(r, names, k) for k, r in enumerate(refs)]
        iou = self.bound(tolerances)
        try:
            cands = [self._post(o, names, k) for k, o in enumerate(outs)]
        except Exception as e:  # noqa: BLE001 - outputs the post-processing cannot read fail the check
            m["note"] = f"the bundle's post-processing failed on the candidate's outputs: {e}"[:300]
            return m
        if self.task in ("detection", "text"):
            total = {"min_iou": None, "unmatched_reference": 0, "unmatched_candidate": 0, "reference_count": 0,
                     "candidate_count": 0}
            for ref, cand in zip(self._ref_results, cands):
                one = match_boxes(_items(ref), _items(cand), iou)
                vals = [v for v in (total["min_iou"], one["min_iou"]) if v is not None]
                total = {k: (min(vals) if vals else None) if k == "min_iou" else total[k] + one[k] for k in total}
            m.update(total)
        elif self.task == "classification":
            same = [bool(r and c and r[0].index == c[0].index) or (not r and not c)
                    for r, c in zip(self._ref_results, cands)]
            m["top1_agreement"] = sum(same) / len(same) if same else 1.0
            m["reference_top1"] = [(r[0].label or str(r[0].index)) if r else None for r in self._ref_results]
        else:
            m["mask_iou"] = min((_mask_iou(r[0].mask, c[0].mask) for r, c in zip(self._ref_results, cands)),
                                default=1.0)
        return m

    def failure(self, m: Mapping[str, Any], tolerances: Tolerances) -> str | None:
        """Why the figures ``m`` fail the check (with the numbers), or None."""
        iou = self.bound(tolerances)
        where = f"task check ({self.kind} post-processing)"
        if m.get("note"):
            return f"{where}: {m['note']}"
        if self.task in ("detection", "text"):
            if m.get("unmatched_reference") or m.get("unmatched_candidate"):
                worst = m.get("min_iou")
                return (f"{where}: {m['unmatched_reference']} of {m['reference_count']} reference and "
                        f"{m['unmatched_candidate']} of {m['candidate_count']} candidate {self.task} box(es) unmatched "
                        f"at IoU >= {iou:g} (min IoU {'n/a' if worst is None else f'{worst:.3f}'})")
        elif self.task == "classification":
            if m.get("top1_agreement") is not None and m["top1_agreement"] < 1.0:
                return f"{where}: the top-1 class agrees on {m['top1_agreement']:.1%} of frames, expected all"
        elif self.task == "segmentation":
            if m.get("mask_iou") is not None and m["mask_iou"] < iou:
                return f"{where}: mask IoU {m['mask_iou']:.3f} < {iou:g}"
        return None

    def apply(self, acc: Accuracy, m: Mapping[str, Any] | None, tolerances: Tolerances) -> Accuracy:
        """``acc`` with the task figures ``m`` attached and, when they fail, failed with the reason."""
        if m is None:
            return acc
        acc.task = dict(m)
        why = self.failure(m, tolerances)
        if why and acc.passed:
            acc.passed, acc.failed = False, why
        return acc

