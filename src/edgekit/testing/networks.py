"""Structurally faithful ONNX builds of classic vision networks, with random weights.

The published benchmark figures edgekit's latency model is compared with are for MobileNet v1,
MobileNet v2 and ResNet-50; their trained weights cannot be fetched offline, and the latency of a
network depends on its topology and shapes, not on its weights. These builders reproduce the
published topologies (layer counts, channels, strides, kernel sizes; BatchNorm folded into the
convolutions as a converter does) with He-initialised random weights, opset 13.

Example::

    path = build_network("mobilenet_v2", Path("/tmp/mnv2.onnx"))       # 3.5 M parameters, 0.3 GMACs
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NETWORKS", "build_network"]


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def const(self, arr: np.ndarray, kind: str) -> str:
        from onnx import numpy_helper

        name = self._name(kind)
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = "relu6") -> str:
        from onnx import helper

        fan_in = cin // groups * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        b = self.rng.normal(0, 0.01, (cout,))
        y = self._name("conv")
        self.nodes.append(helper.make_node("Conv", [x, self.const(w, "w"), self.const(b, "b")], [y], name=y,
                                           kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4,
                                           group=groups))
        if act == "relu6":
            z = self._name("relu6")
            lo, hi = self.const(np.array(0.0), "lo"), self.const(np.array(6.0), "hi")
            self.nodes.append(helper.make_node("Clip", [y, lo, hi], [z], name=z))
            return z
        if act == "relu":
            return self.op("Relu", [y])
        return y

    def op(self, op: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        y = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [y], name=y, **attrs))
        return y

    def head(self, x: str, cin: int, classes: int = 1000) -> str:
        p = self.op("GlobalAveragePool", [x])
        f = self.op("Flatten", [p], axis=1)
        w = self.rng.normal(0, np.sqrt(1.0 / cin), (cin, classes))
        return self.op("Gemm", [f, self.const(w, "fc_w"), self.const(np.zeros(classes), "fc_b")])

    def model(self, x: str, y: str, size: int, out_dim: int, name: str):  # -> onnx.ModelProto
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [y], ["logits"], name="logits"))
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(x, TensorProto.FLOAT,
                                                                                      [1, 3, size, size])],
                                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, out_dim])],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgekit")
        model.ir_version = 8
        return model


def _mobilenet_v1(size: int = 224):
    b = _Builder(1)
    x = b.conv("input", 3, 32, 3, 2)
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    c = 32
    for cout, s in cfg:
        x = b.conv(x, c, c, 3, s, groups=c)
        x = b.conv(x, c, cout, 1)
        c = cout
    return b.model("input", b.head(x, c), size, 1000, "mobilenet_v1")


def _mobilenet_v2(size: int = 224):
    b = _Builder(2)
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
    return b.model("input", b.head(x, 1280), size, 1000, "mobilenet_v2")


def _resnet50(size: int = 224):
    b = _Builder(3)
    x = b.conv("input", 3, 64, 7, 2, act="relu")
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            s = stride if i == 0 else 1
            h = b.conv(x, c, width, 1, act="relu")
            h = b.conv(h, width, width, 3, s, act="relu")
            h = b.conv(h, width, width * 4, 1, act=None)
            short = b.conv(x, c, width * 4, 1, s, act=None) if i == 0 else x
            x = b.op("Relu", [b.op("Add", [h, short])])
            c = width * 4
    return b.model("input", b.head(x, c), size, 1000, "resnet50")


#: name -> (builder taking the input size, default input size)
NETWORKS: dict[str, tuple[Callable[[int], object], int]] = {
    "mobilenet_v1": (_mobilenet_v1, 224),
    "mobilenet_v2": (_mobilenet_v2, 224),
    "resnet50": (_resnet50, 224),
}


def build_network(name: str, path: Path, size: int | None = None) -> Path:
    """Write network ``name`` (see :data:`NETWORKS`) with a ``size`` x ``size`` input to ``path``."""
    import onnx

    build, default = NETWORKS[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(size or default), str(path))  # type: ignore[arg-type]
    return path
