"""Structurally faithful ONNX builds of classic vision networks, with random weights.

Published latency figures (Qualcomm AI Hub, Coral, Hailo, Rockchip) are for trained networks whose
weights cannot be fetched offline; the latency of a network depends on its topology and shapes, not
on its weight values. These builders reproduce the published topologies (layer counts, channels,
strides, kernel sizes, activations, squeeze-excitation, channel shuffle; BatchNorm folded into the
convolutions as a converter does) with He-initialised random weights, opset 13.

:data:`REFERENCE` holds each network's published parameter count and multiply-accumulates, which
``tests/test_networks.py`` checks the builds against (within 3 %; folding BatchNorm removes one of
its two per-channel parameters, so a build counts up to 1 % fewer parameters than torchvision).

``weights=False`` builds the same graph with empty initialisers (shapes only): enough to count
parameters and MACs in milliseconds, but not runnable. Built with weights, VGG-16 is 553 MB.

Example::

    path = build_network("mobilenet_v2", Path("/tmp/mnv2.onnx"))       # 3.5 M parameters, 0.3 GMACs
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NETWORKS", "REFERENCE", "build_network", "count_params", "network_model"]

_TV = "https://pytorch.org/vision/stable/models.html (torchvision, num_params and GFLOPS, which are GMACs)"

#: name -> (published parameters, published GMACs, source), at the default input size
REFERENCE: dict[str, tuple[int, float, str]] = {
    "resnet18": (11_689_512, 1.81, _TV),
    "resnet34": (21_797_672, 3.66, _TV),
    "resnet50": (25_557_032, 4.09, _TV + "; ResNet v1.5: stride in the 3x3 convolution"),
    "resnet50_v1": (25_557_032, 3.8, "https://arxiv.org/abs/1512.03385 (Table 1: 3.8 x 10^9 multiply-adds); "
                    "parameters as torchvision's resnet50, which differs only in where the stride is. "
                    "ResNet v1 (TF-slim, Keras, Coral, Hailo): stride in the first 1x1 convolution"),
    "resnet101": (44_549_160, 7.80, _TV),
    "mobilenet_v1": (4_200_000, 0.569, "https://arxiv.org/abs/1704.04861 (Table 8: 4.2 M, 569 M mult-adds)"),
    "mobilenet_v2": (3_504_872, 0.30, _TV),
    "mobilenet_v3_large": (5_483_032, 0.22, _TV),
    "efficientnet_b0": (5_288_548, 0.39, _TV),
    "squeezenet1_1": (1_235_496, 0.35, _TV),
    "shufflenet_v2_x0_5": (1_366_792, 0.04, _TV),
    "shufflenet_v2_x1_0": (2_278_604, 0.14, _TV),
    "vgg16": (138_357_544, 15.47, _TV),
    "inception_v3": (23_900_000, 5.71, "https://github.com/quic/ai-hub-models/blob/main/qai_hub_models/models/"
                     "inception_v3/info.yaml (23.9 M without the training-only auxiliary head; torchvision's "
                     "27.2 M includes it) and " + _TV + " (5.71 GMACs at 299x299)"),
    "googlenet": (6_624_904, 1.50, _TV + "; Inception v1"),
    "yolov8n": (3_157_200, 4.35, "https://docs.ultralytics.com/models/yolov8/ (YOLOv8n: 3.2 M parameters, "
                "8.7 GFLOPs = 2 x GMACs at 640x640; 3,157,200 from the model summary)"),
}


class _Builder:
    """Accumulates nodes and initialisers; ``weights=False`` leaves initialisers empty (shapes only)."""

    def __init__(self, seed: int, weights: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.weights = weights
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def const(self, arr: np.ndarray, kind: str) -> str:
        """A fixed tensor; ``const_`` names are not parameters (shapes, anchors, clip bounds)."""
        from onnx import numpy_helper

        name = self._name(kind)
        self.inits.append(numpy_helper.from_array(arr if arr.dtype == np.int64 else arr.astype(np.float32), name))
        return name

    def param(self, shape: Sequence[int], std: float, kind: str) -> str:
        from onnx import TensorProto

        name = self._name(kind)
        if not self.weights:
            t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
            self.inits.append(t)
            return name
        return self.const(self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std), kind)

    def conv(self, x: str, cin: int, cout: int, k: int | tuple[int, int], stride: int = 1, groups: int = 1,
             act: str | None = "relu6", pad: int | tuple[int, int] | None = None) -> str:
        """Conv with bias (BatchNorm folded) and an activation; ``pad`` None: same padding."""
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (kh // 2, kw // 2) if pad is None else ((pad, pad) if isinstance(pad, int) else pad)
        w = self.param((cout, cin // groups, kh, kw), np.sqrt(2.0 / (cin // groups * kh * kw)), "w")
        y = self.op("Conv", [x, w, self.param((cout,), 0.01, "b")], kernel_shape=[kh, kw],
                    strides=[stride, stride], pads=[ph, pw, ph, pw], group=groups)
        return self.act(y, act)

    def act(self, x: str, act: str | None) -> str:
        if act == "relu6":
            return self.op("Clip", [x, self.const(np.array(0.0), "const_lo"), self.const(np.array(6.0), "const_hi")])
        if act == "relu":
            return self.op("Relu", [x])
        if act in ("silu", "swish"):
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        if act == "hswish":  # HardSwish is opset 14; x * HardSigmoid(x) is what converters emit for 13
            return self.op("Mul", [x, self.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)])
        if act == "hsigmoid":
            return self.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)
        if act == "sigmoid":
            return self.op("Sigmoid", [x])
        return x

    def op(self, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.ops(op, inputs, 1, **attrs)[0]

    def ops(self, op: str, inputs: list[str], n: int, **attrs: Any) -> list[str]:
        from onnx import helper

        name = self._name(op.lower())
        outs = [name] if n == 1 else [f"{name}_{i}" for i in range(n)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def pool(self, x: str, k: int, s: int, pad: int = 0, kind: str = "MaxPool", ceil: bool = False) -> str:
        return self.op(kind, [x], kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4, ceil_mode=int(ceil))

    def se(self, x: str, c: int, squeeze: int, act: str, gate: str) -> str:
        """Squeeze-and-excitation: global pool, 1x1 reduce, act, 1x1 expand, gate, scale."""
        s = self.conv(self.op("GlobalAveragePool", [x]), c, squeeze, 1, act=act)
        return self.op("Mul", [x, self.conv(s, squeeze, c, 1, act=gate)])

    def fc(self, x: str, cin: int, cout: int, act: str | None = None) -> str:
        w = self.param((cin, cout), np.sqrt(1.0 / cin), "fc_w")
        return self.act(self.op("Gemm", [x, w, self.param((cout,), 0.01, "fc_b")]), act)

    def head(self, x: str, cin: int, classes: int = 1000) -> str:
        return self.fc(self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1), cin, classes)

    def model(self, y: str, size: int, out_shape: Sequence[int], name: str):  # -> onnx.ModelProto
        from onnx import TensorProto, helper

        out = "logits" if len(out_shape) == 2 else "output"
        self.nodes.append(helper.make_node("Identity", [y], [out], name=out))
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                     [1, 3, size, size])],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgekit")
        model.ir_version = 8
        return model


def _mobilenet_v1(b: _Builder, size: int):
    x = b.conv("input", 3, 32, 3, 2)
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    c = 32
    for cout, s in cfg:
        x = b.conv(b.conv(x, c, c, 3, s, groups=c), c, cout, 1)
        c = cout
    return b.model(b.head(x, c), size, [1, 1000], "mobilenet_v1")


def _mobilenet_v2(b: _Builder, size: int):
    x = b.conv("input", 3, 32, 3, 2)
    c = 32
    for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                          (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            h = b.conv(x, c, c * t, 1) if t != 1 else x
            h = b.conv(h, c * t, c * t, 3, stride, groups=c * t)
            h = b.conv(h, c * t, cout, 1, act=None)
            x = b.op("Add", [x, h]) if stride == 1 and c == cout else h
            c = cout
    x = b.conv(x, c, 1280, 1)
    return b.model(b.head(x, 1280), size, [1, 1000], "mobilenet_v2")


def _divisible(v: float, d: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``d``, never more than 10 % down."""
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def _mobilenet_v3_large(b: _Builder, size: int):
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
            h = b.se(h, exp, _divisible(exp // 4), "relu", "hsigmoid")
        h = b.conv(h, exp, out, 1, act=None)
        x = b.op("Add", [x, h]) if s == 1 and c == out else h
        c = out
    x = b.conv(x, c, 960, 1, act="hswish")
    x = b.fc(b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1), 960, 1280, act="hswish")
    return b.model(b.fc(x, 1280, 1000), size, [1, 1000], "mobilenet_v3_large")


def _efficientnet_b0(b: _Builder, size: int):
    x = b.conv("input", 3, 32, 3, 2, act="silu")
    c = 32
    for t, k, s, out, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                            (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            exp = c * t
            h = b.conv(x, c, exp, 1, act="silu") if t != 1 else x
            h = b.conv(h, exp, exp, k, stride, groups=exp, act="silu")
            h = b.se(h, exp, max(1, c // 4), "silu", "sigmoid")
            h = b.conv(h, exp, out, 1, act=None)
            x = b.op("Add", [x, h]) if stride == 1 and c == out else h
            c = out
    x = b.conv(x, c, 1280, 1, act="silu")
    return b.model(b.head(x, 1280), size, [1, 1000], "efficientnet_b0")


def _resnet(blocks: Sequence[int], bottleneck: bool, seed_name: str, stride_in_1x1: bool = False):
    def build(b: _Builder, size: int):
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


def _squeezenet1_1(b: _Builder, size: int):
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


def _shufflenet_v2(widths: Sequence[int], name: str):
    def build(b: _Builder, size: int):
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


def _vgg16(b: _Builder, size: int):
    if size % 224:
        raise ValueError(f"vgg16 is built for input sizes that are multiples of 224 (its classifier takes a 7x7 "
                         f"map), got {size}; pass size=224 or 448.")
    x, c = "input", 3
    for v in [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]:
        x, c = (b.pool(x, 2, 2), c) if v == 0 else (b.conv(x, c, v, 3, act="relu"), v)
    if size != 224:  # torchvision's AdaptiveAvgPool2d((7, 7))
        x = b.pool(x, size // 224, size // 224, kind="AveragePool")
    x = b.fc(b.op("Flatten", [x], axis=1), 512 * 7 * 7, 4096, act="relu")
    return b.model(b.fc(b.fc(x, 4096, 4096, act="relu"), 4096, 1000), size, [1, 1000], "vgg16")


def _inception_v3(b: _Builder, size: int):
    def cv(x: str, cin: int, cout: int, k: int | tuple[int, int], s: int = 1, pad: Any = None) -> str:
        return b.conv(x, cin, cout, k, s, act="relu", pad=pad)

    def cat(*xs: str) -> str:
        return b.op("Concat", list(xs), axis=1)

    def avg(x: str) -> str:
        return b.pool(x, 3, 1, 1, kind="AveragePool")

    x = cv(cv(cv("input", 3, 32, 3, 2, 0), 32, 32, 3, pad=0), 32, 64, 3)
    x = cv(cv(b.pool(x, 3, 2), 64, 80, 1), 80, 192, 3, pad=0)
    x, c = b.pool(x, 3, 2), 192
    for pf in (32, 64, 64):  # InceptionA
        x = cat(cv(x, c, 64, 1), cv(cv(x, c, 48, 1), 48, 64, 5),
                cv(cv(cv(x, c, 64, 1), 64, 96, 3), 96, 96, 3), cv(avg(x), c, pf, 1))
        c = 224 + pf
    x = cat(cv(x, c, 384, 3, 2, 0), cv(cv(cv(x, c, 64, 1), 64, 96, 3), 96, 96, 3, 2, 0), b.pool(x, 3, 2))  # B
    c = 768
    for c7 in (128, 160, 160, 192):  # InceptionC
        b7 = cv(cv(cv(x, c, c7, 1), c7, c7, (1, 7)), c7, 192, (7, 1))
        d = cv(cv(cv(cv(x, c, c7, 1), c7, c7, (7, 1)), c7, c7, (1, 7)), c7, c7, (7, 1))
        x = cat(cv(x, c, 192, 1), b7, cv(d, c7, 192, (1, 7)), cv(avg(x), c, 192, 1))
    d = cv(cv(cv(cv(x, c, 192, 1), 192, 192, (1, 7)), 192, 192, (7, 1)), 192, 192, 3, 2, 0)
    x, c = cat(cv(cv(x, c, 192, 1), 192, 320, 3, 2, 0), d, b.pool(x, 3, 2)), 1280  # InceptionD
    for _ in range(2):  # InceptionE
        t = cv(x, c, 384, 1)
        u = cv(cv(x, c, 448, 1), 448, 384, 3)
        x = cat(cv(x, c, 320, 1), cv(t, 384, 384, (1, 3)), cv(t, 384, 384, (3, 1)),
                cv(u, 384, 384, (1, 3)), cv(u, 384, 384, (3, 1)), cv(avg(x), c, 192, 1))
        c = 2048
    return b.model(b.head(x, c), size, [1, 1000], "inception_v3")


def _googlenet(b: _Builder, size: int):
    """torchvision's GoogLeNet (Inception v1) without the training-only auxiliary heads; like TF-slim's,
    its "5x5" branch uses a 3x3 convolution."""
    def cv(x: str, cin: int, cout: int, k: int) -> str:
        return b.conv(x, cin, cout, k, act="relu")

    x = b.pool(b.conv("input", 3, 64, 7, 2, act="relu"), 3, 2, ceil=True)
    x, c = b.pool(cv(cv(x, 64, 64, 1), 64, 192, 3), 3, 2, ceil=True), 192
    for i, (c1, r3, c3, r5, c5, pp) in enumerate([
            (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
            (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
            (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]):
        x = b.op("Concat", [cv(x, c, c1, 1), cv(cv(x, c, r3, 1), r3, c3, 3), cv(cv(x, c, r5, 1), r5, c5, 3),
                            cv(b.pool(x, 3, 1, 1, ceil=True), c, pp, 1)], axis=1)
        c = c1 + c3 + c5 + pp
        if i in (1, 6):
            x = b.pool(x, 3 if i == 1 else 2, 2, ceil=True)
    return b.model(b.head(x, c), size, [1, 1000], "googlenet")


def _yolov8n(b: _Builder, size: int):
    """Ultralytics YOLOv8n (depth 0.33, width 0.25), 80 classes; output [1, 84, anchors] like its ONNX export."""
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

    x = cv(cv("input", 3, 16, 3, 2), 16, 32, 3, 2)
    p3 = c2f(cv(c2f(x, 32, 32, 1, True), 32, 64, 3, 2), 64, 64, 2, True)
    p4 = c2f(cv(p3, 64, 128, 3, 2), 128, 128, 2, True)
    x = c2f(cv(p4, 128, 256, 3, 2), 256, 256, 1, True)
    s = cv(x, 256, 128)  # SPPF
    m1 = b.pool(s, 5, 1, 2)
    m2 = b.pool(m1, 5, 1, 2)
    p5 = cv(b.op("Concat", [s, m1, m2, b.pool(m2, 5, 1, 2)], axis=1), 512, 256)
    h4 = c2f(b.op("Concat", [up(p5), p4], axis=1), 384, 128, 1, False)
    o3 = c2f(b.op("Concat", [up(h4), p3], axis=1), 192, 64, 1, False)
    o4 = c2f(b.op("Concat", [cv(o3, 64, 64, 3, 2), h4], axis=1), 192, 128, 1, False)
    o5 = c2f(b.op("Concat", [cv(o4, 128, 128, 3, 2), p5], axis=1), 384, 256, 1, False)
    levels = []
    for feat, ch in ((o3, 64), (o4, 128), (o5, 256)):  # Detect: box (4 x 16 bins) and class branches
        box = b.conv(cv(cv(feat, ch, 64, 3), 64, 64, 3), 64, 64, 1, act=None)
        cls = b.conv(cv(cv(feat, ch, 80, 3), 80, 80, 3), 80, 80, 1, act=None)
        levels.append(b.op("Reshape", [b.op("Concat", [box, cls], axis=1),
                                       b.const(np.array([1, 144, -1], dtype=np.int64), "const_shape")]))
    grids = [(size // st, st) for st in (8, 16, 32)]
    n = sum(g * g for g, _ in grids)
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
    return b.model(b.op("Concat", [xywh, b.op("Sigmoid", [cls])], axis=1), size, [1, 84, n], "yolov8n")


def _plain(fn: Callable[[_Builder, int], object], seed: int) -> Callable[[int, bool], object]:
    return lambda size, weights: fn(_Builder(seed, weights), size)


#: name -> (builder taking the input size and whether to materialise weights, default input size)
NETWORKS: dict[str, tuple[Callable[[int, bool], object], int]] = {
    "mobilenet_v1": (_plain(_mobilenet_v1, 1), 224),
    "mobilenet_v2": (_plain(_mobilenet_v2, 2), 224),
    "resnet50": (_plain(_resnet([3, 4, 6, 3], True, "resnet50"), 3), 224),
    "resnet18": (_plain(_resnet([2, 2, 2, 2], False, "resnet18"), 4), 224),
    "resnet34": (_plain(_resnet([3, 4, 6, 3], False, "resnet34"), 5), 224),
    "resnet50_v1": (_plain(_resnet([3, 4, 6, 3], True, "resnet50_v1", stride_in_1x1=True), 6), 224),
    "resnet101": (_plain(_resnet([3, 4, 23, 3], True, "resnet101"), 7), 224),
    "mobilenet_v3_large": (_plain(_mobilenet_v3_large, 8), 224),
    "efficientnet_b0": (_plain(_efficientnet_b0, 9), 224),
    "squeezenet1_1": (_plain(_squeezenet1_1, 10), 224),
    "shufflenet_v2_x0_5": (_plain(_shufflenet_v2([48, 96, 192, 1024], "shufflenet_v2_x0_5"), 11), 224),
    "shufflenet_v2_x1_0": (_plain(_shufflenet_v2([116, 232, 464, 1024], "shufflenet_v2_x1_0"), 12), 224),
    "vgg16": (_plain(_vgg16, 13), 224),
    "inception_v3": (_plain(_inception_v3, 14), 299),
    "googlenet": (_plain(_googlenet, 16), 224),
    "yolov8n": (_plain(_yolov8n, 15), 640),
}


def network_model(name: str, size: int | None = None, *, weights: bool = True):  # -> onnx.ModelProto
    """The ONNX model of network ``name`` (see :data:`NETWORKS`) for a ``size`` x ``size`` input.

    ``weights=False`` leaves the initialisers empty: count it, do not run it.

    >>> m = network_model("squeezenet1_1", weights=False)
    >>> count_params(m)
    1235496
    """
    if name not in NETWORKS:
        raise KeyError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}.")
    build, default = NETWORKS[name]
    return build(size or default, weights)


def build_network(name: str, path: Path, size: int | None = None, *, weights: bool = True) -> Path:
    """Write network ``name`` (see :data:`NETWORKS`) with a ``size`` x ``size`` input to ``path``."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(network_model(name, size, weights=weights), str(path))
    return path


def count_params(model: Any) -> int:
    """Learned parameters of a built network: its initialisers less the ``const_`` ones (shapes, anchors)."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if not t.name.startswith("const_"))
