"""Count a model's FLOPs and MACs from its graph and tensor shapes, without running it.

ONNX models go through ``onnx.shape_inference`` (dynamic dimensions are first fixed from
``input_shapes`` or set to 1); TFLite models are read from the flatbuffer with edgekit's
bounds-checked reader (:mod:`edgekit.models.tflite_schema`), whose tensors carry their shapes.

Conventions (the same for both formats, so the ONNX and TFLite twins of a model count alike):

==========================================  =====================================================
operator                                    FLOPs
==========================================  =====================================================
Conv / ConvTranspose / Gemm / MatMul / FC   ``2 x MACs`` (+1 per output element for a bias)
  (and depthwise, batched, quantized kin)   MACs: Conv = N·Cout·Hout·Wout·(Cin/groups)·kh·kw
fused activation (TFLite)                   1 per output element (as the separate ONNX op)
elementwise (Add, Mul, Relu, Sigmoid, …)    1 per output element
BatchNormalization, Quantize/Dequantize     2 per element
MaxPool / AveragePool                       kernel area per output element
global pooling, Reduce*                     1 per input element
Softmax / LogSoftmax                        5 per element (max, subtract, exp, sum, divide)
data movement (Reshape, Transpose, Concat…) 0
anything else                               not counted: listed in ``uncounted``
==========================================  =====================================================

Example::

    fc = count_flops("model.onnx")
    print(fc.flops, fc.macs, fc.uncounted)
    for op in fc.by_type(): print(op)
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edgekit.models.formats import ModelFile, open_model

__all__ = ["FlopCount", "OpCount", "count_flops", "count_onnx", "count_tflite"]


@dataclass(frozen=True)
class OpCount:
    """FLOPs and MACs of one operator (``flops`` None: shapes unknown or the op type is not counted)."""

    name: str
    type: str
    flops: int | None
    macs: int = 0


@dataclass(frozen=True)
class FlopCount:
    """A model's total FLOPs and MACs, per operator, and what could not be counted."""

    flops: int
    macs: int
    ops: tuple[OpCount, ...] = ()
    uncounted: tuple[str, ...] = field(default=())  # op types with unknown cost, sorted

    def by_type(self) -> list[tuple[str, int, int]]:
        """``(op type, flops, macs)`` summed per type, largest first."""
        f: Counter[str] = Counter()
        m: Counter[str] = Counter()
        for op in self.ops:
            f[op.type] += op.flops or 0
            m[op.type] += op.macs
        return sorted(((t, f[t], m[t]) for t in f), key=lambda r: -r[1])


ZERO = {
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather", "Identity",
    "Shape", "Constant", "ConstantOfShape", "Cast", "Pad", "Expand", "Tile", "Dropout", "Size", "DepthToSpace",
    "SpaceToDepth", "GatherElements", "ScatterND", "Range",
}
ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Abs", "Neg", "Exp", "Log", "Relu", "LeakyRelu", "PRelu", "Elu",
    "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Clip", "Max", "Min", "Sum", "Mean",
    "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Softplus", "Gelu", "Mish", "Where", "Equal", "Less",
    "Greater", "Not", "And", "Or",
}
TWO_PER_ELEMENT = {"BatchNormalization", "QuantizeLinear", "DequantizeLinear", "InstanceNormalization"}
REDUCE = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
          "ReduceL2", "ArgMax", "ArgMin"}


def count_flops(model: str | os.PathLike[str] | ModelFile,
                input_shapes: Mapping[str, Sequence[int]] | None = None) -> FlopCount:
    """FLOPs and MACs of an ONNX or TFLite model (see the module's conventions).

    >>> count_flops("conv_relu.onnx").flops   # doctest: +SKIP
    14336
    """
    mf = open_model(model)
    if mf.format == "onnx":
        return count_onnx(mf.path, input_shapes)
    if mf.format == "tflite":
        return count_tflite(mf.path)
    from edgekit.errors import UnsupportedModelError

    raise UnsupportedModelError(
        f"{mf.path.name}: FLOPs are counted for ONNX and TFLite models, not {mf.format}. "
        "Count the ONNX or TFLite model this one was converted from."
    )


def _prod(xs: Sequence[int]) -> int:
    return math.prod(int(x) for x in xs)


def _total(ops: list[OpCount], uncounted: set[str]) -> FlopCount:
    return FlopCount(flops=sum(o.flops or 0 for o in ops), macs=sum(o.macs for o in ops), ops=tuple(ops),
                     uncounted=tuple(sorted(uncounted)))


# -- ONNX ----------------------------------------------------------------------------------

def count_onnx(path: str | os.PathLike[str], input_shapes: Mapping[str, Sequence[int]] | None = None) -> FlopCount:
    """Count an ONNX model; dynamic input dimensions come from ``input_shapes`` or are set to 1."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: tuple(i.dims) for i in graph.initializer}
    for vi in graph.input:
        if vi.name in inits:
            continue
        given = (input_shapes or {}).get(vi.name)
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if given is not None:
                d.Clear()
                d.dim_value = int(given[i])
            elif not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = 1
    inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = dict(inits)
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape") and \
                all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)

    ops: list[OpCount] = []
    uncounted: set[str] = set()
    for i, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{i}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins = [shapes.get(x) if x else None for x in node.input]
        outs = [shapes.get(x) for x in node.output]
        try:
            flops, macs = _onnx_node(node.op_type, attrs, ins, outs)
        except (TypeError, IndexError, ValueError, ZeroDivisionError):
            flops, macs = None, 0
        if flops is None:
            uncounted.add(node.op_type)
        ops.append(OpCount(name, node.op_type, flops, macs))
    return _total(ops, uncounted)


def _onnx_node(op: str, attrs: dict, ins: list, outs: list) -> tuple[int | None, int]:
    out = outs[0] if outs else None
    if op in ZERO:
        return 0, 0
    if out is None:
        return None, 0
    n_out = _prod(out)
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = ins[3] if op == "QLinearConv" else ins[1]
        macs = n_out * _prod(w[1:])  # w: [Cout, Cin/groups, k...]
        bias_idx = 8 if op == "QLinearConv" else 2
        bias = len(ins) > bias_idx and ins[bias_idx] is not None
        return 2 * macs + (n_out if bias else 0), macs
    if op == "ConvTranspose":
        x, w = ins[0], ins[1]  # w: [Cin, Cout/groups, k...]
        macs = _prod(x) * _prod(w[1:])
        bias = len(ins) > 2 and ins[2] is not None
        return 2 * macs + (n_out if bias else 0), macs
    if op == "Gemm":
        a = ins[0]
        k = a[0] if attrs.get("transA", 0) else a[1]
        macs = n_out * k
        bias = len(ins) > 2 and ins[2] is not None
        return 2 * macs + (n_out if bias else 0), macs
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a = ins[0]
        k = a[-1]
        macs = n_out * k
        return 2 * macs, macs
    if op in ELEMENTWISE:
        return n_out, 0
    if op in TWO_PER_ELEMENT:
        return 2 * n_out, 0
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return n_out * _prod(attrs["kernel_shape"]), 0
    if op in REDUCE:
        return _prod(ins[0]), 0
    if op in ("Softmax", "LogSoftmax"):
        return 5 * n_out, 0
    return None, 0


# -- TFLite --------------------------------------------------------------------------------

_T_ZERO = {
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "CONCATENATION", "SPLIT", "SPLIT_V", "SLICE", "STRIDED_SLICE",
    "GATHER", "GATHER_ND", "PAD", "PADV2", "MIRROR_PAD", "CAST", "SHAPE", "TILE", "PACK", "UNPACK", "BROADCAST_TO",
    "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
}
_T_ELEMENTWISE = {
    "ADD", "SUB", "MUL", "DIV", "POW", "SQRT", "RSQRT", "ABS", "NEG", "EXP", "LOG", "RELU", "RELU6", "RELU_N1_TO_1",
    "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "ELU", "LOGISTIC", "TANH", "HARD_SWISH", "GELU", "MAXIMUM", "MINIMUM",
    "SQUARE", "SQUARED_DIFFERENCE", "FLOOR", "CEIL", "ROUND", "SIGN", "ADD_N", "SELECT", "SELECT_V2", "EQUAL",
    "LESS", "GREATER", "LOGICAL_NOT", "LOGICAL_AND", "LOGICAL_OR",
}
_T_TWO = {"QUANTIZE", "DEQUANTIZE"}
_T_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "ARG_MAX", "ARG_MIN"}
# ops whose builtin options carry a fused activation (1 FLOP per output element when set)
_FUSED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "DIV", "AVERAGE_POOL_2D",
          "MAX_POOL_2D", "CONCATENATION"}


def count_tflite(path: str | os.PathLike[str]) -> FlopCount:
    """Count the first subgraph of a TFLite model from the flatbuffer's tensor shapes.

    A broken file raises :class:`~edgekit.errors.CorruptModelError`.

    >>> count_tflite("conv_relu.tflite").macs   # doctest: +SKIP
    6912
    """
    from edgekit.models import tflite_schema

    info = tflite_schema.read_file(path)
    graph = info.subgraphs[0]
    shapes = [t.shape for t in graph.tensors]
    ops: list[OpCount] = []
    uncounted: set[str] = set()
    for i, op in enumerate(graph.operators):
        kind = f"CUSTOM:{op.name}" if op.custom else op.name
        ins = [shapes[j] if j >= 0 else None for j in op.inputs]
        outs = [shapes[j] for j in op.outputs]
        try:
            flops, macs = _tflite_op(kind, op.options, ins, outs)
        except (TypeError, IndexError, ValueError):
            flops, macs = None, 0
        if flops is None:
            uncounted.add(kind)
        name = graph.tensors[op.outputs[0]].name if outs else f"{kind}_{i}"
        ops.append(OpCount(name, kind, flops, macs))
    return _total(ops, uncounted)


def _tflite_op(kind: str, options: Mapping[str, int | bool] | None, ins: list,
               outs: list) -> tuple[int | None, int]:
    if kind in _T_ZERO:
        return 0, 0
    if not outs or not outs[0]:
        return None, 0
    n_out = _prod(outs[0])
    act = 0
    if kind in _FUSED and options is not None and options["fused_activation_function"] != 0:
        act = n_out
    bias = len(ins) > 2 and ins[2] is not None
    if kind == "CONV_2D":  # filter [Cout, kh, kw, Cin/groups]
        macs = n_out * _prod(ins[1][1:])
        return 2 * macs + (n_out if bias else 0) + act, macs
    if kind == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, Cout]
        macs = n_out * ins[1][1] * ins[1][2]
        return 2 * macs + (n_out if bias else 0) + act, macs
    if kind == "TRANSPOSE_CONV":  # inputs: output_shape, filter [Cout, kh, kw, Cin], input
        macs = _prod(ins[2]) * _prod(ins[1][:3])
        bias = len(ins) > 3 and ins[3] is not None
        return 2 * macs + (n_out if bias else 0), macs
    if kind == "FULLY_CONNECTED":  # filter [units, in]
        macs = n_out * ins[1][-1]
        return 2 * macs + (n_out if bias else 0) + act, macs
    if kind == "BATCH_MATMUL":
        adj_x = bool(options["adj_x"]) if options is not None else False
        k = ins[0][-2] if adj_x else ins[0][-1]
        macs = n_out * k
        return 2 * macs, macs
    if kind in _T_ELEMENTWISE:
        return n_out + act, 0
    if kind in _T_TWO:
        return 2 * n_out, 0
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        if options is None:  # no filter size: not counted
            return None, 0
        return n_out * options["filter_height"] * options["filter_width"] + act, 0
    if kind in _T_REDUCE:
        return _prod(ins[0]), 0
    if kind in ("SOFTMAX", "LOG_SOFTMAX"):
        return 5 * n_out, 0
    return None, 0
