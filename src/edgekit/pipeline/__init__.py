"""Pre/post-processing and model bundles: a frame in, typed results in frame pixels out.

A bundle is a folder (or ``.zip``) holding a model and an ``edgekit.toml`` that declares
its inputs, its pre-processing (colour, resize/letterbox, mean/std, quantization, layout,
dtype) and its post-processing (soft-max + top-k, SSD anchors + NMS, segmentation mask,
DB text boxes); see ``docs/bundles.md``. Pre/post-processing is OpenCV + numpy, so
results are the same whatever runtime runs the model. OpenCV is imported on first use.

Example::

    import cv2, edgekit

    pipe = edgekit.load_bundle("bundles/blazeface", device="auto")
    faces = pipe.predict(cv2.imread("photo.jpg"))     # [Detection(box=(x0, y0, x1, y1), score, keypoints)]
"""

from __future__ import annotations

from edgekit.pipeline.bundle import Pipeline, load_bundle
from edgekit.pipeline.results import Classification, Detection, Result, SegmentationMask, TextBox

__all__ = ["Classification", "Detection", "Pipeline", "Result", "SegmentationMask", "TextBox", "load_bundle"]
