"""What the samples share: pictures drawn with OpenCV (so they need nothing beyond edgekit's own
dependencies) and the check that the sample bundles were made.

``portrait()`` is a drawn head and shoulders that BlazeFace finds (score about 0.75); ``page()`` is a
light page with lines of text, one rotated, that PP-OCR det finds; ``scene()`` puts both side by side
for the video loop, so either bundle has something to find in every frame.

Example::

    from common import portrait, require_bundle
    require_bundle("samples/bundles/blazeface", "BlazeFace")
    cv2.imwrite("portrait.png", portrait())
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["page", "portrait", "require_bundle", "scene"]


def require_bundle(path: str, name: str) -> None:
    """Stop with the next step to take when the sample bundle has not been made yet."""
    if not Path(path).exists():
        raise SystemExit(f"no {name} bundle at {path}: run `python samples/fetch_models.py` first (it fetches the "
                         "model and writes the sample bundles), or pass a bundle of your own.")


def portrait(size: int = 512) -> np.ndarray:
    """A ``size`` x ``size`` BGR drawing of a face: hair, skin, eyes with irises, brows, nose, mouth, ears."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = np.linspace((200, 170, 140), (140, 120, 100), size, dtype=np.float32)[:, None].astype(np.uint8)
    s = size / 512

    def p(x: float, y: float) -> tuple[int, int]:
        return int(x * s), int(y * s)

    def r(v: float) -> int:
        return max(1, int(v * s))

    skin, shade, hair = (130, 170, 215), (120, 160, 205), (40, 50, 70)
    cv2.ellipse(img, p(256, 470), (r(170), r(110)), 0, 180, 360, (60, 60, 120), -1)  # shoulders
    cv2.rectangle(img, p(226, 320), p(286, 380), shade, -1)  # neck
    cv2.ellipse(img, p(256, 230), (r(95), r(125)), 0, 0, 360, hair, -1)
    cv2.ellipse(img, p(256, 250), (r(80), r(105)), 0, 0, 360, skin, -1)
    for ex in (176, 336):
        cv2.ellipse(img, p(ex, 255), (r(12), r(22)), 0, 0, 360, shade, -1)  # ears
    for ex in (222, 290):
        cv2.ellipse(img, p(ex, 225), (r(18), r(9)), 0, 0, 360, (245, 245, 245), -1)  # whites
        cv2.circle(img, p(ex, 225), r(7), (50, 40, 30), -1)  # iris
        cv2.circle(img, p(ex, 225), r(3), (10, 10, 10), -1)  # pupil
        cv2.line(img, p(ex - 20, 203), p(ex + 18, 200), hair, r(5))  # brow
    cv2.line(img, p(256, 235), p(250, 275), (100, 135, 180), r(4))  # nose
    cv2.line(img, p(250, 275), p(262, 278), (100, 135, 180), r(3))
    cv2.ellipse(img, p(256, 305), (r(28), r(10)), 0, 0, 180, (80, 80, 170), r(5))  # mouth
    return cv2.GaussianBlur(img, (0, 0), 1.5 * s)


def page(width: int = 640, height: int = 480) -> np.ndarray:
    """A light page with two lines of text and a third rotated by 15 degrees."""
    out = np.full((480, 640, 3), 240, np.uint8)
    cv2.putText(out, "edgekit: one API,", (40, 90), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (30, 30, 30), 3)
    cv2.putText(out, "five runtimes", (40, 170), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (30, 30, 30), 3)
    line = np.full((160, 420, 3), 240, np.uint8)
    cv2.putText(line, "rotated text 15 deg", (10, 95), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (120, 20, 20), 2)
    m = cv2.getRotationMatrix2D((210, 80), 15, 1.0)
    out[260:420, 120:540] = cv2.warpAffine(line, m, (420, 160), borderValue=(240, 240, 240))
    return out if (width, height) == (640, 480) else cv2.resize(out, (width, height))


def scene(width: int, height: int) -> np.ndarray:
    """A ``width`` x ``height`` frame: the portrait on the left, the page on the right."""
    canvas = np.full((height, width, 3), 90, np.uint8)
    half = width // 2
    for x0, img in ((0, portrait()), (half, page())):
        s = min(half / img.shape[1], height / img.shape[0])
        small = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        y, x = (height - small.shape[0]) // 2, x0 + (half - small.shape[1]) // 2
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas
