"""Classic classifiers: MobileNet v1/v2/v3, ResNet (v1, v1.5, pre-activation v2), SqueezeNet, ShuffleNet v2, VGG.

Each builder takes a :class:`~edgekit.testing.networks._builder.Builder` and the input size and
returns the ONNX model; the MobileNet feature extractors are shared with the SSD detectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.testing.networks._builder import Builder, divisible

__all__ = ["mobilenet_v1", "mobilenet_v1_features", "mobilenet_v2", "mobilenet_v2_features", "mobilenet_v3_large",
           "resnet", "resnet50_v2", "shufflenet_v2", "squeezenet1_1", "vgg", "VGG"]


def mobilenet_v1_features(b: Builder) -> tuple[str, str]:
    """MobileNet v1 without its classifier: (the 11th pointwise output, 512 channels at stride 16; the last, 1024)."""
    x = b.conv("input", 3, 32, 3, 2)
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    c, taps = 32, []
    for cout, s in cfg:
        x = b.conv(b.conv(x, c, c, 3, s, groups=c), c, cout, 1)
        taps.append(x)
        c = cout
    return taps[10], x


def mobilenet_v1(b: Builder, size: int):
    return b.model(b.head(mobilenet_v1_features(b)[1], 1024), size, [1, 1000], "mobilenet_v1")


def mobilenet_v2_features(b: Builder, width: float = 1.0) -> tuple[str, int, str, int]:
    """MobileNet v2 (width multiplier ``width``, TF-slim/torchvision rounding) up to its last 1x1
    convolution: (the expansion output of the first stride-32 block, its channels; the last output,
    its channels): the two maps SSD-MobileNet-v2 predicts from."""
    c = divisible(32 * width)
    x = b.conv("input", 3, c, 3, 2)
    tap, tap_c = "", 0
    for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                          (6, 320, 1, 1)]:
        cout = divisible(cout * width)
        for i in range(n):
            stride = s if i == 0 else 1
            h = b.conv(x, c, c * t, 1) if t != 1 else x
            if cout == divisible(160 * width) and i == 0:
                tap, tap_c = h, c * t
            h = b.conv(h, c * t, c * t, 3, stride, groups=c * t)
            h = b.conv(h, c * t, cout, 1, act=None)
            x = b.op("Add", [x, h]) if stride == 1 and c == cout else h
            c = cout
    last = divisible(1280 * max(1.0, width))
    return tap, tap_c, b.conv(x, c, last, 1), last


def mobilenet_v2(width: float, name: str):
    def build(b: Builder, size: int):
        _, _, x, c = mobilenet_v2_features(b, width)
        return b.model(b.head(x, c), size, [1, 1000], name)
    return build


def mobilenet_v3_large(b: Builder, size: int):
    x = b.conv("input", 3, 16, 3, 2, act="hswish")
    c = 16
    for k, exp, out, se, act, s in [
            (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
            (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
            (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
            (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
            (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1)]:
        h = b.conv(x, c, exp, 1, act=act) if exp != c else x
        h = b.conv(h, exp, exp, k, s, groups=exp, act=act)
        if se:
            h = b.se(h, exp, divisible(exp // 4), "relu", "hsigmoid")
        h = b.conv(h, exp, out, 1, act=None)
        x = b.op("Add", [x, h]) if s == 1 and c == out else h
        c = out
    x = b.conv(x, c, 960, 1, act="hswish")
    x = b.fc(b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1), 960, 1280, act="hswish")
    return b.model(b.fc(x, 1280, 1000), size, [1, 1000], "mobilenet_v3_large")


def resnet(blocks: Sequence[int], bottleneck: bool, seed_name: str, stride_in_1x1: bool = False):
    def build(b: Builder, size: int):
        x = b.conv("input", 3, 64, 7, 2, act="relu")
        x = b.pool(x, 3, 2, 1)
        c = 64
        for width, n, stride in zip([64, 128, 256, 512], blocks, [1, 2, 2, 2]):
            out = width * 4 if bottleneck else width
            for i in range(n):
                s = stride if i == 0 else 1
                if bottleneck:
                    s1, s3 = (s, 1) if stride_in_1x1 else (1, s)
                    h = b.conv(x, c, width, 1, s1, act="relu")
                    h = b.conv(h, width, width, 3, s3, act="relu")
                    h = b.conv(h, width, out, 1, act=None)
                else:
                    h = b.conv(b.conv(x, c, width, 3, s, act="relu"), width, width, 3, act=None)
                short = b.conv(x, c, out, 1, s, act=None) if s != 1 or c != out else x
                x = b.op("Relu", [b.op("Add", [h, short])])
                c = out
        return b.model(b.head(x, c), size, [1, 1000], seed_name)
    return build


def resnet50_v2(b: Builder, size: int):
    """Pre-activation ResNet-50 v2 as the ONNX model zoo's resnet50-v2-7 (MXNet Gluon's ``resnet50_v2``): a
    BatchNorm on the input, the 7x7 stem, bottlenecks BN-ReLU-1x1, BN-ReLU-3x3 (the stride), BN-ReLU-1x1 whose
    projection shortcut (the first block of each stage) takes the pre-activated input, and a final BN-ReLU
    before the pool. BatchNorms behind a convolution are folded into it; the input one, each block's first
    (behind an addition) and the final one cannot be, and are BatchNormalization ops."""
    x = b.pool(b.conv(b.bn("input", 3, learned=False), 3, 64, 7, 2, act="relu"), 3, 2, 1)
    c = 64
    for width, n, stride in zip([64, 128, 256, 512], [3, 4, 6, 3], [1, 2, 2, 2]):
        out = width * 4
        for i in range(n):
            s = stride if i == 0 else 1
            pre = b.op("Relu", [b.bn(x, c)])
            short = b.conv(pre, c, out, 1, s, act=None, bias=False) if c != out else x
            h = b.conv(b.conv(pre, c, width, 1, act="relu"), width, width, 3, s, act="relu")
            x = b.op("Add", [b.conv(h, width, out, 1, act=None, bias=False), short])
            c = out
    return b.model(b.head(b.op("Relu", [b.bn(x, c)]), c), size, [1, 1000], "resnet50_v2")


def squeezenet1_1(b: Builder, size: int):
    x = b.pool(b.conv("input", 3, 64, 3, 2, act="relu", pad=0), 3, 2, ceil=True)
    c = 64
    for i, (sq, e) in enumerate([(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256),
                                 (64, 256)]):
        s = b.conv(x, c, sq, 1, act="relu")
        x = b.op("Concat", [b.conv(s, sq, e, 1, act="relu"), b.conv(s, sq, e, 3, act="relu")], axis=1)
        c = 2 * e
        if i in (1, 3):
            x = b.pool(x, 3, 2, ceil=True)
    x = b.conv(x, c, 1000, 1, act="relu")
    return b.model(b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1), size, [1, 1000], "squeezenet1_1")


def shufflenet_v2(widths: Sequence[int], name: str):
    def build(b: Builder, size: int):
        def shuffle(x: str, ch: int, hw: int) -> str:  # reshape to (2, C/2), transpose, flatten back
            g = b.op("Reshape", [x, b.const(np.array([1, 2, ch // 2, hw * hw], dtype=np.int64), "const_shape")])
            t = b.op("Transpose", [g], perm=[0, 2, 1, 3])
            return b.op("Reshape", [t, b.const(np.array([1, ch, hw, hw], dtype=np.int64), "const_shape")])

        x = b.pool(b.conv("input", 3, 24, 3, 2, act="relu"), 3, 2, 1)
        c, hw = 24, -(-size // 4)
        for out, n in zip(widths[:3], [4, 8, 4]):
            bf, hw = out // 2, -(-hw // 2)
            for i in range(n):
                if i == 0:
                    left = b.conv(b.conv(x, c, c, 3, 2, groups=c, act=None), c, bf, 1, act="relu")
                    right, rc = x, c
                else:
                    left, right = b.ops("Split", [x], 2, axis=1)
                    rc = bf
                h = b.conv(right, rc, bf, 1, act="relu")
                h = b.conv(h, bf, bf, 3, 2 if i == 0 else 1, groups=bf, act=None)
                x = shuffle(b.op("Concat", [left, b.conv(h, bf, bf, 1, act="relu")], axis=1), out, hw)
                c = out
        x = b.conv(x, c, widths[3], 1, act="relu")
        return b.model(b.head(x, widths[3]), size, [1, 1000], name)
    return build


#: VGG configurations: output channels of each 3x3 convolution, 0 for a 2x2 max pool
VGG = {"vgg16": [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
       "vgg19": [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0]}


def vgg(name: str):
    def build(b: Builder, size: int):
        if size % 224:
            raise ValueError(f"{name} is built for input sizes that are multiples of 224 (its classifier takes a "
                             f"7x7 map), got {size}; pass size=224 or 448.")
        x, c = "input", 3
        for v in VGG[name]:
            x, c = (b.pool(x, 2, 2), c) if v == 0 else (b.conv(x, c, v, 3, act="relu"), v)
        if size != 224:  # torchvision's AdaptiveAvgPool2d((7, 7))
            x = b.pool(x, size // 224, size // 224, kind="AveragePool")
        x = b.fc(b.op("Flatten", [x], axis=1), 512 * 7 * 7, 4096, act="relu")
        return b.model(b.fc(b.fc(x, 4096, 4096, act="relu"), 4096, 1000), size, [1, 1000], name)
    return build
