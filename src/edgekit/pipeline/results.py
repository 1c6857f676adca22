"""What a :class:`~edgekit.pipeline.Pipeline` returns: typed results in original-frame pixels.

Coordinates are floats in the pixel space of the frame passed to ``predict`` (x right,
y down, origin at the top-left corner of the top-left pixel), whatever size the model saw.

Example::

    for det in pipe.predict(frame):                  # [Detection(box=(x0, y0, x1, y1), score, keypoints, label)]
        x0, y0, x1, y1 = det.box
        print(det.label, round(det.score, 2), det.width, det.height)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Classification", "Detection", "Result", "SegmentationMask", "TextBox"]

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class Detection:
    """An object found in the frame: axis-aligned ``box`` (x0, y0, x1, y1), score, optional keypoints."""

    box: Box
    score: float
    keypoints: tuple[Point, ...] = ()
    label: str | None = None

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]

    @property
    def center(self) -> Point:
        """Box centre (x, y)."""
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"kind": "detection", "label": self.label, "score": round(self.score, 4),
                "box": [round(v, 1) for v in self.box],
                "keypoints": [[round(x, 1), round(y, 1)] for x, y in self.keypoints]}


@dataclass(frozen=True)
class Classification:
    """One of the top-k classes: ``index`` into the model's output, ``label`` from the bundle's labels."""

    index: int
    score: float
    label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"kind": "classification", "index": self.index, "label": self.label, "score": round(self.score, 4)}


@dataclass(frozen=True)
class TextBox:
    """A text region: four corners (clockwise from top-left; may be rotated) and the region's mean probability."""

    points: tuple[Point, Point, Point, Point]
    score: float

    @property
    def box(self) -> Box:
        """The axis-aligned box around ``points``."""
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return (min(xs), min(ys), max(xs), max(ys))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"kind": "text", "score": round(self.score, 4), "box": [round(v, 1) for v in self.box],
                "points": [[round(x, 1), round(y, 1)] for x, y in self.points]}


@dataclass(frozen=True, eq=False)
class SegmentationMask:
    """Per-pixel class ids (``uint8``/``int32``, shape = the frame's height x width); ``labels[i]`` names class i."""

    mask: np.ndarray
    labels: tuple[str, ...] = field(default=())

    def classes(self) -> list[int]:
        """Class ids present in the mask, ascending."""
        return [int(c) for c in np.unique(self.mask)]

    def area(self, class_id: int) -> int:
        """Pixels of class ``class_id``."""
        return int(np.count_nonzero(self.mask == class_id))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: pixel count per class present."""
        names = {i: (self.labels[i] if i < len(self.labels) else str(i)) for i in self.classes()}
        return {"kind": "mask", "shape": list(self.mask.shape), "pixels": {names[i]: self.area(i) for i in names}}


Result = Detection | Classification | TextBox | SegmentationMask
