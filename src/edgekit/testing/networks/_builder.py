"""The graph builder the network modules share: nodes, initialisers, convolutions with folded BatchNorm,
the BatchNorms no convolution can absorb, and models with one or several outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Builder", "divisible"]


class Builder:
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

    def param(self, shape: Sequence[int], std: float, kind: str, mean: float = 0.0) -> str:
        from onnx import TensorProto

        name = self._name(kind)
        if not self.weights:
            t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
            self.inits.append(t)
            return name
        arr = self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std)
        return self.const(arr + np.float32(mean) if mean else arr, kind)

    def conv(self, x: str, cin: int, cout: int, k: int | tuple[int, int], stride: int = 1, groups: int = 1,
             act: str | None = "relu6", pad: int | tuple[int, int] | None = None, bias: bool = True) -> str:
        """Conv with bias (BatchNorm folded; ``bias=False``: none, no BatchNorm follows) and an activation;
        ``pad`` None: same padding."""
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (kh // 2, kw // 2) if pad is None else ((pad, pad) if isinstance(pad, int) else pad)
        w = self.param((cout, cin // groups, kh, kw), np.sqrt(2.0 / (cin // groups * kh * kw)), "w")
        inputs = [x, w, self.param((cout,), 0.01, "b")] if bias else [x, w]
        y = self.op("Conv", inputs, kernel_shape=[kh, kw], strides=[stride, stride], pads=[ph, pw, ph, pw],
                    group=groups)
        return self.act(y, act)

    def bn(self, x: str, c: int, learned: bool = True) -> str:
        """A BatchNorm no convolution can absorb (pre-activation, after an addition or on the input), kept as a
        BatchNormalization op: scale and bias are parameters (``learned=False``: fixed 1 and 0, MXNet's
        ``scale=False, center=False``), the running mean and variance ``const_`` statistics."""
        if learned:
            scale, bias = self.param((c,), 0.1, "bn_scale", mean=1.0), self.param((c,), 0.01, "bn_bias")
        else:
            scale, bias = self.const(np.ones(c), "const_bn_scale"), self.const(np.zeros(c), "const_bn_bias")
        stats = [self.const(np.zeros(c), "const_bn_mean"), self.const(np.ones(c), "const_bn_var")]
        return self.op("BatchNormalization", [x, scale, bias, *stats], epsilon=1e-5)

    def act(self, x: str, act: str | None) -> str:
        if act == "relu6":
            return self.op("Clip", [x, self.const(np.array(0.0), "const_lo"), self.const(np.array(6.0), "const_hi")])
        if act == "relu":
            return self.op("Relu", [x])
        if act == "lrelu":  # YOLOv7-tiny's LeakyReLU(0.1)
            return self.op("LeakyRelu", [x], alpha=0.1)
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
        out = "logits" if len(out_shape) == 2 else "output"
        return self.multi_model([(y, out, out_shape)], size, name)

    def multi_model(self, outputs: Sequence[tuple[str, str, Sequence[int]]], size: int,
                    name: str):  # -> onnx.ModelProto
        """The model with one graph output per ``(tensor, output name, shape)``, in that order."""
        from onnx import TensorProto, helper

        for y, out, _ in outputs:
            self.nodes.append(helper.make_node("Identity", [y], [out], name=out))
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                     [1, 3, size, size])],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(shape))
                                   for _, out, shape in outputs], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgekit")
        model.ir_version = 8
        return model


def divisible(v: float, d: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``d``, never more than 10 % down."""
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new
