"""Detectors: Ultralytics YOLOv8 (n, s, m) and TF Object Detection API SSD-MobileNet v1/v2."""

from __future__ import annotations

import math

import numpy as np

from edgekit.testing.networks._builder import Builder
from edgekit.testing.networks.classic import mobilenet_v1_features, mobilenet_v2_features

__all__ = ["ssd_anchors", "ssd_mobilenet", "yolov8", "yolov8_anchors"]


def yolov8_anchors(size: int) -> int:
    """Anchor points of a YOLOv8 output: one per cell of its stride 8, 16 and 32 grids."""
    return sum((size // st) ** 2 for st in (8, 16, 32))


def yolov8(width: float, name: str, depth: float = 0.33, max_channels: int = 1024):
    """Ultralytics YOLOv8 at ``width``, ``depth`` and ``max_channels`` (n: 0.25, 0.33, 1024; s: 0.5, 0.33, 1024;
    m: 0.75, 0.67, 768), 80 classes; output [1, 84, anchors] like its ONNX export (boxes decoded, classes
    through a sigmoid, no NMS)."""
    c1, c2, c3, c4, c5 = (math.ceil(min(ch, max_channels) * width / 8) * 8 for ch in (64, 128, 256, 512, 1024))
    n3, n6 = (max(round(n * depth), 1) for n in (3, 6))  # the yaml's C2f repeats, scaled as parse_model does

    def build(b: Builder, size: int):
        def cv(x: str, cin: int, cout: int, k: int = 1, s: int = 1) -> str:
            return b.conv(x, cin, cout, k, s, act="silu")

        def c2f(x: str, cin: int, cout: int, n: int, shortcut: bool) -> str:
            h = cout // 2
            parts = b.ops("Split", [cv(x, cin, 2 * h)], 2, axis=1)
            for _ in range(n):
                y = cv(cv(parts[-1], h, h, 3), h, h, 3)
                parts.append(b.op("Add", [parts[-1], y]) if shortcut else y)
            return cv(b.op("Concat", parts, axis=1), (2 + n) * h, cout)

        def up(x: str) -> str:
            scales = b.const(np.array([1.0, 1.0, 2.0, 2.0]), "const_scales")
            return b.op("Resize", [x, "", scales], mode="nearest")

        x = cv(cv("input", 3, c1, 3, 2), c1, c2, 3, 2)
        p3 = c2f(cv(c2f(x, c2, c2, n3, True), c2, c3, 3, 2), c3, c3, n6, True)
        p4 = c2f(cv(p3, c3, c4, 3, 2), c4, c4, n6, True)
        x = c2f(cv(p4, c4, c5, 3, 2), c5, c5, n3, True)
        s = cv(x, c5, c5 // 2)  # SPPF
        m1 = b.pool(s, 5, 1, 2)
        m2 = b.pool(m1, 5, 1, 2)
        p5 = cv(b.op("Concat", [s, m1, m2, b.pool(m2, 5, 1, 2)], axis=1), 2 * c5, c5)
        h4 = c2f(b.op("Concat", [up(p5), p4], axis=1), c5 + c4, c4, n3, False)
        o3 = c2f(b.op("Concat", [up(h4), p3], axis=1), c4 + c3, c3, n3, False)
        o4 = c2f(b.op("Concat", [cv(o3, c3, c3, 3, 2), h4], axis=1), c3 + c4, c4, n3, False)
        o5 = c2f(b.op("Concat", [cv(o4, c4, c4, 3, 2), p5], axis=1), c4 + c5, c5, n3, False)
        cb, cc = max(16, c3 // 4, 64), max(c3, 80)  # Detect: box (4 x 16 bins) and class branch widths
        levels = []
        for feat, ch in ((o3, c3), (o4, c4), (o5, c5)):
            box = b.conv(cv(cv(feat, ch, cb, 3), cb, cb, 3), cb, 64, 1, act=None)
            cls = b.conv(cv(cv(feat, ch, cc, 3), cc, cc, 3), cc, 80, 1, act=None)
            levels.append(b.op("Reshape", [b.op("Concat", [box, cls], axis=1),
                                           b.const(np.array([1, 144, -1], dtype=np.int64), "const_shape")]))
        grids = [(size // st, st) for st in (8, 16, 32)]
        n = yolov8_anchors(size)
        box, cls = b.ops("Split", [b.op("Concat", levels, axis=2), b.const(np.array([64, 80], dtype=np.int64),
                                                                              "const_split")], 2, axis=1)
        d = b.op("Reshape", [box, b.const(np.array([1, 4, 16, n], dtype=np.int64), "const_shape")])
        d = b.op("Softmax", [b.op("Transpose", [d], perm=[0, 2, 1, 3])], axis=1)  # DFL: expectation over 16 bins
        dfl = b.const(np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1), "dfl_w")
        d = b.op("Reshape", [b.op("Conv", [d, dfl]), b.const(np.array([1, 4, n], dtype=np.int64), "const_shape")])
        lt, rb = b.ops("Split", [d], 2, axis=1)
        anchors = np.concatenate([np.stack(np.meshgrid(np.arange(g) + 0.5, np.arange(g) + 0.5), 0).reshape(2, -1)
                                  for g, _ in grids], 1)[None]  # (x, y) cell centres, x fastest
        strides = np.concatenate([np.full(g * g, st, np.float32) for g, st in grids])[None, None]
        a = b.const(anchors, "const_anchors")
        x1y1, x2y2 = b.op("Sub", [a, lt]), b.op("Add", [a, rb])
        centre = b.op("Div", [b.op("Add", [x1y1, x2y2]), b.const(np.array(2.0), "const_two")])
        xywh = b.op("Mul", [b.op("Concat", [centre, b.op("Sub", [x2y2, x1y1])], axis=1), b.const(strides, "const_st")])
        return b.model(b.op("Concat", [xywh, b.op("Sigmoid", [cls])], axis=1), size, [1, 84, n], name)
    return build


def _grids(size: int) -> list[int]:
    """SSD's six feature maps at ``size``: stride 16 and 32 (TF SAME padding), then four stride-2 extras."""
    g = [-(-size // 16)]
    for _ in range(5):
        g.append(-(-g[-1] // 2))
    return g


def ssd_anchors(size: int) -> int:
    """Boxes an SSD-MobileNet predicts at ``size``: 3 per cell on its first map, 6 on the others (1917 at 300)."""
    return sum(g * g * (3 if i == 0 else 6) for i, g in enumerate(_grids(size)))


def ssd_mobilenet(version: int, name: str):
    """SSD-MobileNet v1 or v2 as TF Object Detection API's ``ssd_mobilenet_v{1,2}_coco`` (ReLU6, 91 classes):
    the backbone's two maps (v1: conv 11 and 13; v2: layer 15's expansion and the last 1x1), four extra
    maps (1x1 to half the depth, then a stride-2 3x3: v1 plain, v2 depthwise separable) of depth 512,
    256, 256 and 128, and 1x1 box (4) and class (91) predictors per anchor. Output [1, boxes, 95]:
    raw box encodings and class logits, before the anchor decoding and NMS that runs on the host."""
    def build(b: Builder, size: int):
        if version == 1:
            t1, t2 = mobilenet_v1_features(b)
            maps = [(t1, 512), (t2, 1024)]
        else:
            t1, c1, t2, c2 = mobilenet_v2_features(b)
            maps = [(t1, c1), (t2, c2)]
        x, c = maps[-1]
        for depth in (512, 256, 256, 128):
            x = b.conv(x, c, depth // 2, 1)
            if version == 1:
                x = b.conv(x, depth // 2, depth, 3, 2)
            else:
                x = b.conv(b.conv(x, depth // 2, depth // 2, 3, 2, groups=depth // 2), depth // 2, depth, 1)
            c = depth
            maps.append((x, c))
        boxes: list[str] = []
        classes: list[str] = []
        for i, (feat, ch) in enumerate(maps):
            a = 3 if i == 0 else 6
            for out, per in ((boxes, 4), (classes, 91)):
                y = b.op("Transpose", [b.conv(feat, ch, a * per, 1, act=None)], perm=[0, 2, 3, 1])
                out.append(b.op("Reshape", [y, b.const(np.array([1, -1, per], dtype=np.int64), "const_shape")]))
        y = b.op("Concat", [b.op("Concat", boxes, axis=1), b.op("Concat", classes, axis=1)], axis=2)
        return b.model(y, size, [1, ssd_anchors(size), 95], name)
    return build
