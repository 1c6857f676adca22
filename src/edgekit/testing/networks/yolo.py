"""Anchor-based and anchor-free YOLOs as Rockchip's rknn_model_zoo exports them: Ultralytics YOLOv5 (v6.0+),
Megvii YOLOX and YOLOv7-tiny, 80 classes.

Each ends where the rknn export cuts the graph, before the box decoding that runs on the host, with one
output per stride-8, 16 and 32 level (three graph outputs, finest first): the Detect convolutions'
[1, 255, H, W] (3 anchors x 85) for YOLOv5 and YOLOv7, the head's [1, 85, H, W] (box 4, sigmoid
objectness 1, sigmoid classes 80) for YOLOX. Input sizes are multiples of 32.
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.testing.networks._builder import Builder

__all__ = ["yolo_levels", "yolov5", "yolov7_tiny", "yolox"]


def yolo_levels(size: int, channels: int) -> list[tuple[int, int, int, int]]:
    """The shapes of a raw three-level head's outputs at ``size``: ``channels`` at strides 8, 16 and 32."""
    return [(1, channels, size // st, size // st) for st in (8, 16, 32)]


def _check(size: int, name: str) -> None:
    if size % 32:
        raise ValueError(f"{name} is built for input sizes that are multiples of 32 (its neck concatenates "
                         f"upsampled stride-32 maps with stride-16 ones), got {size}.")


def _up(b: Builder, x: str) -> str:
    """Nearest 2x upsampling (``nn.Upsample(None, 2, 'nearest')``)."""
    return b.op("Resize", [x, "", b.const(np.array([1.0, 1.0, 2.0, 2.0]), "const_scales")], mode="nearest")


def _cat(b: Builder, xs: list[str]) -> str:
    return b.op("Concat", xs, axis=1)


def _model(b: Builder, outs: list[str], size: int, channels: int, name: str):  # -> onnx.ModelProto
    """The model with the three level tensors as its outputs ``output0`` (stride 8) to ``output2`` (stride 32)."""
    levels = yolo_levels(size, channels)
    return b.multi_model([(y, f"output{i}", shape) for i, (y, shape) in enumerate(zip(outs, levels))], size, name)


def _c3(b: Builder, x: str, cin: int, cout: int, n: int, shortcut: bool, act: str) -> str:
    """YOLOv5's C3 (YOLOX's CSPLayer): 1x1 to half width, ``n`` bottlenecks (1x1, 3x3, residual if
    ``shortcut``), concatenated with a second 1x1 half of the input, 1x1 to ``cout``."""
    h = cout // 2
    y = b.conv(x, cin, h, 1, act=act)
    for _ in range(n):
        z = b.conv(b.conv(y, h, h, 1, act=act), h, h, 3, act=act)
        y = b.op("Add", [y, z]) if shortcut else z
    return b.conv(_cat(b, [y, b.conv(x, cin, h, 1, act=act)]), 2 * h, cout, 1, act=act)


def _spp(b: Builder, x: str, cin: int, cout: int, act: str, chained: bool) -> str:
    """SPPF (``chained``: three 5x5 max pools in a row, YOLOv5) or SPP (parallel 5, 9 and 13, YOLOX) between
    a 1x1 to half width and a 1x1 over the four maps concatenated."""
    s = b.conv(x, cin, cin // 2, 1, act=act)
    maps = [s]
    for k in (5, 5, 5) if chained else (5, 9, 13):
        maps.append(b.pool(maps[-1] if chained else s, k, 1, k // 2))
    return b.conv(_cat(b, maps), 2 * cin, cout, 1, act=act)


def yolov5(width: float, depth: float, name: str, act: str = "silu"):
    """Ultralytics YOLOv5 v6.0+ (models/yolov5{n,s,m}.yaml; width 0.25, 0.50, 0.75, depth 0.33, 0.33, 0.67):
    a 6x6 stride-2 stem, C3 stages, SPPF, a PANet neck of C3s without shortcuts and the three Detect 1x1
    convolutions (255 channels), raw. ``act`` "relu": rknn_model_zoo's yolov5s_relu."""
    c1, c2, c3, c4, c5 = (math.ceil(ch * width / 8) * 8 for ch in (64, 128, 256, 512, 1024))
    n3, n6, n9 = (max(round(n * depth), 1) for n in (3, 6, 9))

    def build(b: Builder, size: int):
        _check(size, name)

        def cv(x: str, cin: int, cout: int, k: int = 1, s: int = 1) -> str:
            return b.conv(x, cin, cout, k, s, act=act)

        x = _c3(b, cv(b.conv("input", 3, c1, 6, 2, act=act, pad=2), c1, c2, 3, 2), c2, c2, n3, True, act)
        p3 = _c3(b, cv(x, c2, c3, 3, 2), c3, c3, n6, True, act)
        p4 = _c3(b, cv(p3, c3, c4, 3, 2), c4, c4, n9, True, act)
        x = _spp(b, _c3(b, cv(p4, c4, c5, 3, 2), c5, c5, n3, True, act), c5, c5, act, chained=True)
        h10 = cv(x, c5, c4)
        h14 = cv(_c3(b, _cat(b, [_up(b, h10), p4]), 2 * c4, c4, n3, False, act), c4, c3)
        o3 = _c3(b, _cat(b, [_up(b, h14), p3]), 2 * c3, c3, n3, False, act)
        o4 = _c3(b, _cat(b, [cv(o3, c3, c3, 3, 2), h14]), 2 * c3, c4, n3, False, act)
        o5 = _c3(b, _cat(b, [cv(o4, c4, c4, 3, 2), h10]), 2 * c4, c5, n3, False, act)
        outs = [b.conv(o, ch, 3 * 85, 1, act=None) for o, ch in ((o3, c3), (o4, c4), (o5, c5))]
        return _model(b, outs, size, 255, name)
    return build


def yolox(width: float, depth: float, name: str):
    """Megvii YOLOX (exps/default/yolox_{s,m}.py; width 0.50, 0.75, depth 0.33, 0.67): CSPDarknet with a Focus
    stem (four stride-2 slices concatenated, 3x3), SPP, a PAFPN of CSPLayers and the decoupled head per level
    (1x1 stem to 256 x width; two 3x3 then 1x1 class logits; two 3x3 then 1x1 box and objectness), SiLU.
    Each level's output is the concatenation rknn_model_zoo keeps: box, sigmoid objectness, sigmoid classes."""
    c1 = int(64 * width)
    c2, c3, c4, c5, hc = 2 * c1, 4 * c1, 8 * c1, 16 * c1, int(256 * width)
    nb, npan = max(round(3 * depth), 1), round(3 * depth)  # CSPDarknet's base depth; the PAFPN's CSPLayers

    def build(b: Builder, size: int):
        _check(size, name)

        def cv(x: str, cin: int, cout: int, k: int = 1, s: int = 1) -> str:
            return b.conv(x, cin, cout, k, s, act="silu")

        def patch(h: int, w: int) -> str:  # x[..., h::2, w::2]
            def c(v: list[int]) -> str:
                return b.const(np.array(v, dtype=np.int64), "const_slice")
            return b.op("Slice", ["input", c([h, w]), c([2 ** 62] * 2), c([2, 3]), c([2, 2])])

        x = cv(_cat(b, [patch(0, 0), patch(1, 0), patch(0, 1), patch(1, 1)]), 12, c1, 3)
        x = _c3(b, cv(x, c1, c2, 3, 2), c2, c2, nb, True, "silu")
        x2 = _c3(b, cv(x, c2, c3, 3, 2), c3, c3, 3 * nb, True, "silu")
        x1 = _c3(b, cv(x2, c3, c4, 3, 2), c4, c4, 3 * nb, True, "silu")
        x = _spp(b, cv(x1, c4, c5, 3, 2), c5, c5, "silu", chained=False)
        x0 = _c3(b, x, c5, c5, nb, False, "silu")
        f0 = cv(x0, c5, c4)  # lateral_conv0
        f1 = cv(_c3(b, _cat(b, [_up(b, f0), x1]), 2 * c4, c4, npan, False, "silu"), c4, c3)  # C3_p4, reduce_conv1
        p2 = _c3(b, _cat(b, [_up(b, f1), x2]), 2 * c3, c3, npan, False, "silu")
        p1 = _c3(b, _cat(b, [cv(p2, c3, c3, 3, 2), f1]), 2 * c3, c4, npan, False, "silu")
        p0 = _c3(b, _cat(b, [cv(p1, c4, c4, 3, 2), f0]), 2 * c4, c5, npan, False, "silu")
        outs = []
        for feat, ch in ((p2, c3), (p1, c4), (p0, c5)):
            s = cv(feat, ch, hc)
            cls = b.conv(cv(cv(s, hc, hc, 3), hc, hc, 3), hc, 80, 1, act=None)
            reg = cv(cv(s, hc, hc, 3), hc, hc, 3)
            box, obj = b.conv(reg, hc, 4, 1, act=None), b.conv(reg, hc, 1, 1, act=None)
            outs.append(_cat(b, [box, b.op("Sigmoid", [obj]), b.op("Sigmoid", [cls])]))
        return _model(b, outs, size, 85, name)
    return build


def yolov7_tiny(b: Builder, size: int):
    """YOLOv7-tiny (cfg/deploy/yolov7-tiny.yaml): LeakyReLU(0.1), ELAN-tiny blocks (two 1x1 branches, two
    3x3 on the second, the four concatenated, 1x1), 2x2 max-pool downsampling, SPPCSPC-tiny (parallel 5, 9,
    13 pools), a PANet neck of ELAN-tiny blocks, a 3x3 per level and the Detect 1x1 convolutions (255), raw."""
    _check(size, "yolov7_tiny")

    def cv(x: str, cin: int, cout: int, k: int = 1, s: int = 1) -> str:
        return b.conv(x, cin, cout, k, s, act="lrelu")

    def elan(x: str, cin: int, c: int) -> str:
        a, br = cv(x, cin, c), cv(x, cin, c)
        m1 = cv(br, c, c, 3)
        m2 = cv(m1, c, c, 3)
        return cv(_cat(b, [m2, m1, br, a]), 4 * c, 2 * c)

    x = elan(cv(cv("input", 3, 32, 3, 2), 32, 64, 3, 2), 64, 32)
    p3 = elan(b.pool(x, 2, 2), 64, 64)  # 128 channels at stride 8
    p4 = elan(b.pool(p3, 2, 2), 128, 128)  # 256 at stride 16
    x = elan(b.pool(p4, 2, 2), 256, 256)  # 512 at stride 32
    short, s = cv(x, 512, 256), cv(x, 512, 256)  # SPPCSPC-tiny
    pools = [b.pool(s, k, 1, k // 2) for k in (5, 9, 13)]
    h37 = cv(_cat(b, [cv(_cat(b, [*pools[::-1], s]), 1024, 256), short]), 512, 256)
    h47 = elan(_cat(b, [cv(p4, 256, 128), _up(b, cv(h37, 256, 128))]), 256, 64)
    o3 = elan(_cat(b, [cv(p3, 128, 64), _up(b, cv(h47, 128, 64))]), 128, 32)
    o4 = elan(_cat(b, [cv(o3, 64, 128, 3, 2), h47]), 256, 64)
    o5 = elan(_cat(b, [cv(o4, 128, 256, 3, 2), h37]), 512, 128)
    outs = [b.conv(cv(o, ch, 2 * ch, 3), 2 * ch, 255, 1, act=None) for o, ch in ((o3, 64), (o4, 128), (o5, 256))]
    return _model(b, outs, size, 255, "yolov7_tiny")
