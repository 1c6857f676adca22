"""Raw outputs -> typed results in frame pixels, for each post-processing kind of a bundle.

Integer (quantized) outputs are dequantized with their scale and zero point first.
Everything here is numpy and OpenCV, so results are the same whatever runtime ran the model.

Example::

    post = Postprocessor(cfg.post, predictor.outputs, input_size=(128, 128))
    results = post(outputs, transform)             # [Detection(...), ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.errors import BundleError
from edgekit.pipeline.config import Postprocess
from edgekit.pipeline.preprocess import Transform
from edgekit.pipeline.results import Classification, Detection, Result, SegmentationMask, TextBox
from edgekit.tensors import TensorSpec

__all__ = ["Postprocessor", "dequantize"]


def dequantize(value: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float values of an output: ``(q - zero_point) * scale`` for a quantized integer tensor."""
    if spec.quantization is not None and value.dtype.kind in "iu":
        scale, zero_point = spec.quantization
        return (value.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    return value


class Postprocessor:
    """Turns one run's outputs into results; built once per pipeline, read-only afterwards (thread-safe)."""

    def __init__(self, post: Postprocess, outputs: Sequence[TensorSpec], *, input_size: tuple[int, int] | None,
                 where: str) -> None:
        self.post = post
        self.specs = {o.name: o for o in outputs}
        self.where = where
        self.names: dict[str, str] = {}
        if post.kind == "ssd":
            self.names = {"boxes": self._output("boxes"), "scores": self._output("scores")}
            if input_size is None:
                raise BundleError(f"{where}: kind 'ssd' needs a fixed input size; set [preprocess] size = [w, h].")
            from edgekit.pipeline.ssd import ssd_anchors

            a = dict(post.get("anchors"))
            self.anchors = ssd_anchors(input_size, **a)
            n = self._anchor_count(self.names["boxes"])
            if n is not None and n != len(self.anchors):
                raise BundleError(f"{where}: the [postprocess.anchors] settings give {len(self.anchors)} anchors for a "
                                  f"{input_size[0]}x{input_size[1]} input, but output {self.names['boxes']!r} has {n} "
                                  "boxes. Fix strides/aspect_ratios (see docs/bundles.md).")
        elif post.kind in ("classification", "segmentation", "db"):
            self.names = {"output": self._output("output")}
        self.input_size = input_size

    def _output(self, key: str) -> str:
        name = self.post.get(key)
        if name is None:
            if len(self.specs) == 1:
                return next(iter(self.specs))
            raise BundleError(f"{self.where}: the model has outputs {list(self.specs)}; name the one to use with "
                              f"key {key!r}.")
        if name not in self.specs:
            raise BundleError(f"{self.where}: key {key!r} names output {name!r}, but the model's outputs are "
                              f"{list(self.specs)}.")
        return name

    def _anchor_count(self, name: str) -> int | None:
        shape = self.specs[name].shape
        dims = [d for d in shape if isinstance(d, int) and d > 0]
        return dims[-2] if len(dims) >= 2 and len(shape) >= 2 and isinstance(shape[-2], int) else None

    def _get(self, outputs: dict[str, np.ndarray], key: str) -> np.ndarray:
        name = self.names[key]
        return dequantize(outputs[name], self.specs[name])

    def __call__(self, outputs: dict[str, np.ndarray], tf: Transform) -> list[Result] | dict[str, np.ndarray]:
        kind = self.post.kind
        if kind == "none":
            return outputs
        if kind == "ssd":
            return self._ssd(outputs, tf)
        if kind == "classification":
            return self._classify(self._get(outputs, "output"))
        if kind == "segmentation":
            return [self._segment(self._get(outputs, "output"), tf)]
        return self._db(self._get(outputs, "output"), tf)

    def _label(self, index: int) -> str | None:
        labels = self.post.labels
        return labels[index] if index < len(labels) else None

    def _ssd(self, outputs: dict[str, np.ndarray], tf: Transform) -> list[Result]:
        from edgekit.pipeline.ssd import decode, nms, weighted_nms

        assert self.input_size is not None
        boxes, kps, scores, classes = decode(self._get(outputs, "boxes"), self._get(outputs, "scores"),
                                             self.anchors, self.post.get, self.input_size)
        keep = scores >= self.post.get("score_threshold")
        boxes, kps, scores, classes = boxes[keep], kps[keep], scores[keep], classes[keep]
        method, iou, limit = self.post.get("nms"), self.post.get("iou_threshold"), int(self.post.get("max_detections"))
        found: list[tuple[np.ndarray, np.ndarray, float, int]]
        if method == "weighted":
            found = weighted_nms(boxes, kps, scores, iou, limit)
        else:
            order = nms(boxes, scores, iou, limit) if method == "plain" else list(np.argsort(-scores)[:limit])
            found = [(boxes[i], kps[i], float(scores[i]), int(i)) for i in order]
        results: list[Result] = []
        for box, kp, score, i in found:
            corners = tf.to_frame(box.reshape(2, 2))
            points = tf.to_frame(kp) if kp.size else np.zeros((0, 2))
            results.append(Detection(box=tuple(float(v) for v in corners.reshape(4)), score=score,  # type: ignore[arg-type]
                                     keypoints=tuple((float(x), float(y)) for x, y in points),
                                     label=self._label(int(classes[i]))))
        return results

    def _classify(self, logits: np.ndarray) -> list[Result]:
        x = np.asarray(logits, np.float64).reshape(-1)
        if self.post.get("softmax"):
            e = np.exp(x - x.max())
            x = e / e.sum()
        k = min(int(self.post.get("top_k")), x.size)
        top = np.argsort(-x, kind="stable")[:k]
        threshold = self.post.get("score_threshold")
        return [Classification(index=int(i), score=float(x[i]), label=self._label(int(i))) for i in top
                if x[i] >= threshold]

    def _segment(self, out: np.ndarray, tf: Transform) -> SegmentationMask:
        import cv2

        if out.ndim == 4:  # [1, C, H, W] or [1, H, W, C]
            x = out[0] if self.post.get("layout") == "NCHW" else out[0].transpose(2, 0, 1)
        elif out.ndim in (2, 3):  # [H, W] or [1, H, W]: one map (scores, or class ids when integer)
            x = out.reshape((1, *out.shape[-2:]))
        else:
            raise BundleError(f"{self.where}: kind 'segmentation' expects an output [1, C, H, W], [1, H, W, C] or "
                              f"[1, H, W]; {self.names['output']!r} has shape {out.shape}.")
        if x.shape[0] == 1 and x.dtype.kind in "iu":
            classes = x[0].astype(np.uint8 if x.max(initial=0) < 256 and x.min(initial=0) >= 0 else np.int32)
        elif x.shape[0] == 1:
            p = x[0].astype(np.float32)
            if self.post.get("sigmoid"):
                p = 0.5 * (1.0 + np.tanh(0.5 * p))  # sigmoid without overflow
            classes = (p > self.post.get("threshold")).astype(np.uint8)
        else:
            classes = x.argmax(0).astype(np.uint8 if x.shape[0] <= 256 else np.int32)
        oh, ow = classes.shape
        kx, ky = ow / tf.model_size[0], oh / tf.model_size[1]
        ax, ay = tf.sx * kx, tf.sy * ky
        # frame pixel centre (x + 0.5) -> mask pixel centre: (x + 0.5) * a + t * k - 0.5
        m = np.array([[ax, 0, 0.5 * ax + tf.tx * kx - 0.5], [0, ay, 0.5 * ay + tf.ty * ky - 0.5]], np.float64)
        src = classes if classes.dtype == np.uint8 else classes.astype(np.float32)
        mask = cv2.warpAffine(src, m, tf.frame_size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return SegmentationMask(mask=mask.astype(classes.dtype, copy=False), labels=self.post.labels)

    def _db(self, out: np.ndarray, tf: Transform) -> list[Result]:
        from edgekit.pipeline.db import db_boxes

        prob = np.squeeze(out)
        if prob.ndim != 2:
            raise BundleError(f"{self.where}: kind 'db' expects a probability map [1, 1, H, W]; output "
                              f"{self.names['output']!r} has shape {out.shape}.")
        sx, sy = tf.model_size[0] / prob.shape[1], tf.model_size[1] / prob.shape[0]
        opts: dict[str, Any] = {k: self.post.get(k) for k in ("threshold", "box_threshold", "unclip_ratio",
                                                              "max_candidates", "min_size")}
        opts["max_candidates"] = int(opts["max_candidates"])
        results: list[Result] = []
        for corners, score in db_boxes(prob, **opts):
            pts = tf.to_frame(corners * np.array([sx, sy]))
            results.append(TextBox(points=tuple((float(x), float(y)) for x, y in pts), score=score))  # type: ignore[arg-type]
        return results
