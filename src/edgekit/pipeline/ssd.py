"""SSD-style detection heads: anchors, box decoding and non-maximum suppression, in numpy.

Anchors follow MediaPipe's ``SsdAnchorsCalculator`` and decoding its
``TensorsToDetectionsCalculator``; weighted NMS is MediaPipe's ``WEIGHTED`` algorithm
(overlapping boxes are averaged, weighted by score). For BlazeFace short-range: strides
8, 16, 16, 16 on a 128x128 input give 16*16*2 + 8*8*6 = 896 anchors.

Example::

    anchors = ssd_anchors((128, 128), strides=[8, 16, 16, 16], fixed_size=True)   # [896, 4] cx, cy, w, h
    boxes, kps, scores, classes = decode(raw_boxes, raw_scores, anchors, options, (128, 128))
    keep = nms(boxes, scores, 0.3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["decode", "nms", "ssd_anchors", "weighted_nms"]


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(input_size: tuple[int, int], *, strides: Sequence[int], min_scale: float = 0.1484375,
                max_scale: float = 0.75, aspect_ratios: Sequence[float] = (1.0,),
                interpolated_scale_aspect_ratio: float = 1.0, offset: Sequence[float] = (0.5, 0.5),
                fixed_size: bool = True, reduce_boxes_in_lowest_layer: bool = False) -> np.ndarray:
    """Anchors ``[N, 4]`` as (x_center, y_center, width, height), normalised to the input (width, height)."""
    width, height = input_size
    layers = len(strides)
    out: list[np.ndarray] = []
    layer = 0
    while layer < layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < layers and strides[last] == strides[layer]:
            scale = _scale(min_scale, max_scale, last, layers)
            if last == 0 and reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for r in aspect_ratios:
                    ratios.append(r)
                    scales.append(scale)
                if interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == layers - 1 else _scale(min_scale, max_scale, last + 1, layers)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(interpolated_scale_aspect_ratio)
            last += 1
        sizes = np.array([(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios)], np.float64)
        if fixed_size:
            sizes[:] = 1.0
        stride = strides[layer]
        fh, fw = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((xs + offset[0]) / fw).reshape(-1, 1).repeat(len(sizes), 1)
        cy = ((ys + offset[1]) / fh).reshape(-1, 1).repeat(len(sizes), 1)
        wh = np.broadcast_to(sizes, (fh * fw, len(sizes), 2))
        out.append(np.stack([cx, cy, wh[..., 0], wh[..., 1]], -1).reshape(-1, 4))
        layer = last
    return np.concatenate(out).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, opt: Any,
           input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``[N, 4]`` (x0, y0, x1, y1) and keypoints ``[N, K, 2]`` in input pixels, scores ``[N]``, classes ``[N]``.

    ``opt(key)`` returns a post-processing option (box_format, box_scale, box_exp, num_keypoints,
    keypoint_offset, sigmoid, score_clip).
    """
    raw = raw_boxes.reshape(len(anchors), -1).astype(np.float32)
    xs, ys, ws, hs = (float(v) for v in opt("box_scale"))
    a = anchors
    if opt("box_format") == "xywh":
        cx, cy, w, h = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
    else:
        cy, cx, h, w = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
    cx = cx / xs * a[:, 2] + a[:, 0]
    cy = cy / ys * a[:, 3] + a[:, 1]
    if opt("box_exp"):
        w, h = np.exp(w / ws) * a[:, 2], np.exp(h / hs) * a[:, 3]
    else:
        w, h = w / ws * a[:, 2], h / hs * a[:, 3]
    iw, ih = input_size
    boxes = np.stack([(cx - w / 2) * iw, (cy - h / 2) * ih, (cx + w / 2) * iw, (cy + h / 2) * ih], -1)
    k, off = int(opt("num_keypoints")), int(opt("keypoint_offset"))
    kp = raw[:, off:off + 2 * k].reshape(len(a), k, 2)
    if opt("box_format") == "yxhw":
        kp = kp[..., ::-1]
    kps = np.stack([(kp[..., 0] / xs * a[:, 2:3] + a[:, 0:1]) * iw, (kp[..., 1] / ys * a[:, 3:4] + a[:, 1:2]) * ih], -1)
    scores = raw_scores.reshape(len(a), -1).astype(np.float32)
    clip = opt("score_clip")
    if clip:
        scores = np.clip(scores, -clip, clip)
    if opt("sigmoid"):
        scores = 0.5 * (1.0 + np.tanh(0.5 * scores))  # sigmoid without overflow
    classes = scores.argmax(1)
    return boxes, kps, scores[np.arange(len(a)), classes], classes


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_detections: int = 100) -> list[int]:
    """Greedy NMS: indices kept, best first; a box whose IoU with a kept one exceeds the threshold is dropped."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        i = int(order[0])
        keep.append(i)
        order = order[1:][_iou(boxes[i], boxes[order[1:]]) <= iou_threshold]
    return keep


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 max_detections: int = 100) -> list[tuple[np.ndarray, np.ndarray, float, int]]:
    """MediaPipe's weighted NMS: each kept box (and keypoints) is the score-weighted mean of the boxes it absorbs.

    Returns ``(box, keypoints, score, index of the best box)``; the score is the best box's.
    """
    order = np.argsort(-scores, kind="stable")
    out: list[tuple[np.ndarray, np.ndarray, float, int]] = []
    while order.size and len(out) < max_detections:
        i = int(order[0])
        overlap = _iou(boxes[i], boxes[order]) > iou_threshold
        overlap[0] = True
        group = order[overlap]
        weights = scores[group][:, None]
        total = float(weights.sum())
        box = (boxes[group] * weights).sum(0) / total
        kps = (keypoints[group] * weights[:, :, None]).sum(0) / total if keypoints.size else keypoints[i]
        out.append((box, kps, float(scores[i]), i))
        order = order[~overlap]
    return out
