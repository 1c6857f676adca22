"""DB (Differentiable Binarization) text-detection boxes from a probability map, as PaddleOCR's DBPostProcess.

Steps: binarise at ``threshold``; take each contour's minimum-area rectangle; score it by the
map's mean probability inside (``box_threshold``); grow it by ``area * unclip_ratio / perimeter``
on every side (PaddleOCR offsets the rectangle with pyclipper; for a rectangle that is exactly
the rectangle widened by twice the distance, so no pyclipper is needed); drop tiny boxes.
Defaults are PaddleOCR's: 0.3, 0.6, 1.5, 1000 candidates, minimum side 3.

Example::

    boxes = db_boxes(prob_map, threshold=0.3, box_threshold=0.6, unclip_ratio=1.5)
    boxes[0]       # (corners [4, 2] in map pixels, clockwise from top-left; score)
"""

from __future__ import annotations

import numpy as np

__all__ = ["db_boxes", "order_corners"]


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four corners ordered top-left, top-right, bottom-right, bottom-left (PaddleOCR's get_mini_boxes)."""
    pts = sorted(points.tolist(), key=lambda p: p[0])
    i1, i4 = (0, 1) if pts[1][1] > pts[0][1] else (1, 0)
    i2, i3 = (2, 3) if pts[3][1] > pts[2][1] else (3, 2)
    return np.array([pts[i1], pts[i2], pts[i3], pts[i4]], np.float32)


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    import cv2

    h, w = prob.shape
    x0 = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    shifted = (box - np.array([x0, y0], np.float32)).astype(np.int32)
    cv2.fillPoly(mask, [shifted.reshape(-1, 2)], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def db_boxes(prob: np.ndarray, *, threshold: float = 0.3, box_threshold: float = 0.6, unclip_ratio: float = 1.5,
             max_candidates: int = 1000, min_size: float = 3) -> list[tuple[np.ndarray, float]]:
    """Text boxes in the probability map's pixels: ``[(corners [4, 2], score)]``, top-to-bottom then left-to-right."""
    import cv2

    prob = np.ascontiguousarray(prob, np.float32)
    bitmap = (prob > threshold).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out: list[tuple[np.ndarray, float]] = []
    for contour in contours[:max_candidates]:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < min_size:
            continue
        corners = order_corners(cv2.boxPoints(((cx, cy), (w, h), angle)))
        score = _box_score(prob, corners)
        if score < box_threshold:
            continue
        d = w * h * unclip_ratio / (2 * (w + h))
        grown = ((cx, cy), (w + 2 * d, h + 2 * d), angle)
        if min(w, h) + 2 * d < min_size + 2:
            continue
        out.append((order_corners(cv2.boxPoints(grown)), score))
    out.sort(key=lambda b: (round(float(b[0][0, 1]) / 10), float(b[0][0, 0])))
    return out
