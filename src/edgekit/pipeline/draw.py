"""Draw pipeline results on a copy of the frame (OpenCV): boxes, keypoints, text quads, masks, top classes.

Example::

    cv2.imwrite("annotated.jpg", draw(frame, pipe.predict(frame)))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.pipeline.results import Classification, Detection, Result, SegmentationMask, TextBox

__all__ = ["draw"]

_GREEN, _RED, _YELLOW = (60, 200, 60), (40, 40, 230), (0, 220, 255)


def _palette(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    colors = rng.integers(40, 255, (max(n, 1), 3), dtype=np.uint8)
    colors[0] = 0  # background stays untouched
    return colors


def draw(frame: np.ndarray, results: Sequence[Result] | dict[str, np.ndarray]) -> np.ndarray:
    """A copy of BGR ``frame`` with ``results`` drawn on it (raw output dicts draw nothing)."""
    import cv2

    img = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if isinstance(results, dict):
        return img
    thick = max(1, round(max(img.shape[:2]) / 400))
    line = 0
    for r in results:
        if isinstance(r, Detection):
            x0, y0, x1, y1 = (int(round(v)) for v in r.box)
            cv2.rectangle(img, (x0, y0), (x1, y1), _GREEN, thick)
            text = f"{r.label + ' ' if r.label else ''}{r.score:.2f}"
            cv2.putText(img, text, (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, _GREEN, thick)
            for x, y in r.keypoints:
                cv2.circle(img, (int(round(x)), int(round(y))), thick + 1, _RED, -1)
        elif isinstance(r, TextBox):
            pts = np.round(np.array(r.points)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [pts], True, _YELLOW, thick)
        elif isinstance(r, Classification):
            line += 1
            text = f"{r.label or r.index}: {r.score:.3f}"
            cv2.putText(img, text, (8, 8 + 18 * line * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (0, 0, 0),
                        thick + 2)
            cv2.putText(img, text, (8, 8 + 18 * line * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, _YELLOW, thick)
        elif isinstance(r, SegmentationMask):
            colors = _palette(int(r.mask.max(initial=0)) + 1)
            overlay = colors[np.clip(r.mask, 0, len(colors) - 1)]
            fg = r.mask > 0
            img[fg] = (0.5 * img[fg] + 0.5 * overlay[fg]).astype(np.uint8)
    return img
