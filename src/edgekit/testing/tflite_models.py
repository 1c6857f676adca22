"""TFLite files of the conformance cases and of a sample CNN, written without TensorFlow.

The writer (:func:`write_model`) serialises a list of :class:`TensorDef` and :class:`OpDef`
through the flatbuffer builder functions of the ``tflite`` package (a core dependency),
so the core builds ``.tflite`` files without LiteRT installed. Constant data is
16-byte aligned, as the TFLite converter writes it. The sample CNN's architecture and
weights come from :mod:`edgekit.testing.sample_cnn` (re-exported here).

Example::

    path = build_tflite("conv_relu", tmp_path / "conv_relu.tflite")
    edgekit.load(path, runtime="litert")
    build_sample_cnn(tmp_path / "cnn.tflite")          # image [1,96,96,3] -> probs [1,10]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.testing.cases import CASES, INT8
from edgekit.testing.sample_cnn import SAMPLE_CNN_LAYERS, sample_cnn_reference, sample_cnn_weights

__all__ = [
    "SAMPLE_CNN_LAYERS", "OpDef", "TensorDef", "build_custom_op_model", "build_sample_cnn", "build_tflite",
    "sample_cnn_reference", "sample_cnn_weights", "write_model",
]

#: numpy dtype name -> TFLite TensorType value
TENSOR_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7,
                "int8": 9, "float64": 10}

#: builtin operator -> (options table, BuiltinOptions union value)
_OPTIONS = {
    "CONV_2D": ("Conv2DOptions", 1), "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", 2),
    "AVERAGE_POOL_2D": ("Pool2DOptions", 5), "FULLY_CONNECTED": ("FullyConnectedOptions", 8),
    "SOFTMAX": ("SoftmaxOptions", 9), "ADD": ("AddOptions", 11), "MUL": ("MulOptions", 21),
    "MEAN": ("ReducerOptions", 27), "RESHAPE": ("ReshapeOptions", 17),
}
_ENUMS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType"}


@dataclass
class TensorDef:
    """One tensor. ``data`` makes it a constant; ``quantization`` is ``(scales, zero_points, axis)``."""

    name: str
    shape: Sequence[int]
    dtype: str = "float32"
    data: np.ndarray | None = None
    quantization: tuple[Sequence[float], Sequence[int], int] | None = None
    shape_signature: Sequence[int] | None = None
    buffer: int | None = None  # override the buffer index (to write broken files in tests)


@dataclass
class OpDef:
    """One operator: a builtin name (``"CONV_2D"``) or, with ``custom=True``, a custom op name."""

    op: str
    inputs: Sequence[int]
    outputs: Sequence[int]
    options: dict[str, Any] = field(default_factory=dict)  # snake_case option fields; enums by name
    custom: bool = False
    version: int = 1


def _vector(b: Any, values: Sequence[Any], fmt: str) -> int:
    arr = np.asarray(values, dtype=fmt)
    return b.CreateNumpyVector(arr) if arr.size else _empty(b, arr.itemsize)


def _empty(b: Any, size: int) -> int:
    b.StartVector(size, 0, size)
    return b.EndVector()


def _data(b: Any, arr: np.ndarray) -> int:
    raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    b.StartVector(1, len(raw), 16)
    b.head -= len(raw)
    b.Bytes[b.head : b.head + len(raw)] = raw
    return b.EndVector()


def _options(b: Any, tfl: Any, op: OpDef) -> tuple[int, int]:
    if op.custom or op.op not in _OPTIONS:
        if op.options:
            raise ValueError(f"the writer has no options table for {op.op}; add it to _OPTIONS")
        return 0, 0
    table, union = _OPTIONS[op.op]
    getattr(tfl, f"{table}Start")(b)
    for key, value in op.options.items():
        if key in _ENUMS and isinstance(value, str):
            value = getattr(getattr(tfl, _ENUMS[key]), value)
        getattr(tfl, table + "Add" + "".join(p.capitalize() for p in key.split("_")))(b, value)
    return union, getattr(tfl, f"{table}End")(b)


def write_model(tensors: Sequence[TensorDef], ops: Sequence[OpDef], inputs: Sequence[int],
                outputs: Sequence[int], path: str | Path, *, signature: str | None = None,
                description: str = "edgekit test model") -> Path:
    """Serialise one subgraph to a ``.tflite`` file; returns the path.

    ``signature`` adds a SignatureDef of that key whose names are the tensor names.

    >>> t = [TensorDef("a", [1, 4]), TensorDef("b", [1, 4]), TensorDef("s", [1, 4])]
    >>> write_model(t, [OpDef("ADD", [0, 1], [2])], [0, 1], [2], "add.tflite")  # doctest: +SKIP
    """
    import flatbuffers
    import tflite as tfl

    b = flatbuffers.Builder(1024)
    # buffers: 0 is the empty sentinel, then one per constant
    buffer_of: dict[int, int] = {}
    datas = [0]
    for i, t in enumerate(tensors):
        if t.data is not None:
            buffer_of[i] = len(datas)
            datas.append(_data(b, np.asarray(t.data, dtype=t.dtype).reshape(tuple(t.shape))))
    buffers = []
    for d in datas:
        tfl.BufferStart(b)
        if d:
            tfl.BufferAddData(b, d)
        buffers.append(tfl.BufferEnd(b))

    tensor_offsets = []
    for i, t in enumerate(tensors):
        name = b.CreateString(t.name)
        shape = _vector(b, t.shape, "<i4")
        sig = _vector(b, t.shape_signature, "<i4") if t.shape_signature is not None else 0
        quant = 0
        if t.quantization is not None:
            scales, zps, axis = t.quantization
            sv, zv = _vector(b, scales, "<f4"), _vector(b, zps, "<i8")
            tfl.QuantizationParametersStart(b)
            tfl.QuantizationParametersAddScale(b, sv)
            tfl.QuantizationParametersAddZeroPoint(b, zv)
            tfl.QuantizationParametersAddQuantizedDimension(b, axis)
            quant = tfl.QuantizationParametersEnd(b)
        tfl.TensorStart(b)
        tfl.TensorAddShape(b, shape)
        if sig:
            tfl.TensorAddShapeSignature(b, sig)
        tfl.TensorAddType(b, TENSOR_TYPES[np.dtype(t.dtype).name])
        tfl.TensorAddBuffer(b, t.buffer if t.buffer is not None else buffer_of.get(i, 0))
        tfl.TensorAddName(b, name)
        if quant:
            tfl.TensorAddQuantization(b, quant)
        tensor_offsets.append(tfl.TensorEnd(b))

    codes: list[tuple[str, bool, int]] = []
    op_offsets = []
    for op in ops:
        key = (op.op, op.custom, op.version)
        if key not in codes:
            codes.append(key)
        ins, outs = _vector(b, op.inputs, "<i4"), _vector(b, op.outputs, "<i4")
        union, opts = _options(b, tfl, op)
        tfl.OperatorStart(b)
        tfl.OperatorAddOpcodeIndex(b, codes.index(key))
        tfl.OperatorAddInputs(b, ins)
        tfl.OperatorAddOutputs(b, outs)
        if union:
            tfl.OperatorAddBuiltinOptionsType(b, union)
            tfl.OperatorAddBuiltinOptions(b, opts)
        op_offsets.append(tfl.OperatorEnd(b))

    def table_vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    sg_tensors, sg_ops = table_vector(tensor_offsets), table_vector(op_offsets)
    sg_in, sg_out = _vector(b, inputs, "<i4"), _vector(b, outputs, "<i4")
    sg_name = b.CreateString("main")
    tfl.SubGraphStart(b)
    tfl.SubGraphAddTensors(b, sg_tensors)
    tfl.SubGraphAddInputs(b, sg_in)
    tfl.SubGraphAddOutputs(b, sg_out)
    tfl.SubGraphAddOperators(b, sg_ops)
    tfl.SubGraphAddName(b, sg_name)
    subgraph = tfl.SubGraphEnd(b)

    code_offsets = []
    for name, custom, version in codes:
        custom_name = b.CreateString(name) if custom else 0
        code = 32 if custom else getattr(tfl.BuiltinOperator, name)
        tfl.OperatorCodeStart(b)
        tfl.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tfl.OperatorCodeAddBuiltinCode(b, code)
        if custom:
            tfl.OperatorCodeAddCustomCode(b, custom_name)
        tfl.OperatorCodeAddVersion(b, version)
        code_offsets.append(tfl.OperatorCodeEnd(b))

    sig_vec = 0
    if signature:
        def tensor_maps(indices: Sequence[int]) -> int:
            maps = []
            for idx in indices:
                n = b.CreateString(tensors[idx].name)
                tfl.TensorMapStart(b)
                tfl.TensorMapAddName(b, n)
                tfl.TensorMapAddTensorIndex(b, idx)
                maps.append(tfl.TensorMapEnd(b))
            return table_vector(maps)

        sin, sout, key = tensor_maps(inputs), tensor_maps(outputs), b.CreateString(signature)
        tfl.SignatureDefStart(b)
        tfl.SignatureDefAddInputs(b, sin)
        tfl.SignatureDefAddOutputs(b, sout)
        tfl.SignatureDefAddSignatureKey(b, key)
        tfl.SignatureDefAddSubgraphIndex(b, 0)
        sig_vec = table_vector([tfl.SignatureDefEnd(b)])

    codes_vec, subgraphs_vec = table_vector(code_offsets), table_vector([subgraph])
    buffers_vec, desc = table_vector(buffers), b.CreateString(description)
    tfl.ModelStart(b)
    tfl.ModelAddVersion(b, 3)
    tfl.ModelAddOperatorCodes(b, codes_vec)
    tfl.ModelAddSubgraphs(b, subgraphs_vec)
    tfl.ModelAddDescription(b, desc)
    tfl.ModelAddBuffers(b, buffers_vec)
    if sig_vec:
        tfl.ModelAddSignatureDefs(b, sig_vec)
    b.Finish(tfl.ModelEnd(b), file_identifier=b"TFL3")
    path = Path(path)
    path.write_bytes(bytes(b.Output()))
    return path


# --- the conformance cases ----------------------------------------------------------------------

def _case_graph(case: str) -> tuple[list[TensorDef], list[OpDef], list[int], list[int]]:
    w = CASES[case].weights()
    if case == "conv_relu":
        t = [TensorDef("x", [1, 8, 8, 3]), TensorDef("w", [4, 3, 3, 3], data=w["w"].transpose(0, 2, 3, 1)),
             TensorDef("b", [4], data=w["b"]), TensorDef("y", [1, 8, 8, 4])]
        opts = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU"}
        return t, [OpDef("CONV_2D", [0, 1, 2], [3], opts)], [0], [3]
    if case == "matmul_add_softmax":
        t = [TensorDef("x", [2, 16]), TensorDef("w", [10, 16], data=w["w"].T), TensorDef("b", [10], data=w["b"]),
             TensorDef("logits", [2, 10]), TensorDef("probs", [2, 10])]
        ops = [OpDef("FULLY_CONNECTED", [0, 1, 2], [3]), OpDef("SOFTMAX", [3], [4], {"beta": 1.0})]
        return t, ops, [0], [4]
    if case == "two_in_two_out":
        t = [TensorDef("a", [1, 4]), TensorDef("b", [1, 4]), TensorDef("z_sum", [1, 4]), TensorDef("a_prod", [1, 4])]
        return t, [OpDef("ADD", [0, 1], [2]), OpDef("MUL", [0, 1], [3])], [0, 1], [2, 3]
    if case == "dynamic_batch":
        t = [TensorDef("x", [1, 6], shape_signature=[-1, 6]), TensorDef("w", [3, 6], data=w["w"].T),
             TensorDef("b", [3], data=w["b"]), TensorDef("y", [1, 3], shape_signature=[-1, 3])]
        return t, [OpDef("FULLY_CONNECTED", [0, 1, 2], [3], {"fused_activation_function": "RELU"})], [0], [3]
    if case == "int8_fc":
        q = INT8
        t = [TensorDef("x", [1, 8], "int8", quantization=([q["x_scale"]], [q["x_zp"]], 0)),
             TensorDef("w", [4, 8], "int8", data=w["w_q"].T, quantization=([q["w_scale"]], [0], 0)),
             TensorDef("b", [4], "int32", data=w["b_q"], quantization=([q["x_scale"] * q["w_scale"]], [0], 0)),
             TensorDef("y", [1, 4], "int8", quantization=([q["y_scale"]], [q["y_zp"]], 0))]
        return t, [OpDef("FULLY_CONNECTED", [0, 1, 2], [3], version=4)], [0], [3]
    raise KeyError(f"no conformance case {case!r}; known: {sorted(CASES)}")


def build_tflite(case_name: str, path: str | Path) -> Path:
    """Write conformance case ``case_name`` (NHWC where the ONNX twin is NCHW) to ``path``.

    >>> build_tflite("two_in_two_out", "two.tflite")  # doctest: +SKIP
    """
    tensors, ops, inputs, outputs = _case_graph(case_name)
    return write_model(tensors, ops, inputs, outputs, path, description=f"edgekit conformance case {case_name}")


def build_custom_op_model(path: str | Path, op_name: str = "EdgekitNoSuchOp") -> Path:
    """A model ``y = op_name(x)`` using a custom operator no runtime has (for error tests)."""
    t = [TensorDef("x", [1, 4]), TensorDef("y", [1, 4])]
    return write_model(t, [OpDef(op_name, [0], [1], custom=True)], [0], [1], path)


# --- the sample CNN ------------------------------------------------------------------------------

def build_sample_cnn(path: str | Path) -> Path:
    """Write the MobileNet-like sample of :mod:`edgekit.testing.sample_cnn`: image[1,96,96,3] -> probs[1,10].

    >>> build_sample_cnn("cnn.tflite")  # doctest: +SKIP
    """
    w = sample_cnn_weights()
    tensors: list[TensorDef] = [TensorDef("image", [1, 96, 96, 3])]
    ops: list[OpDef] = []
    hw, cur = 96, 0

    def add(t: TensorDef) -> int:
        tensors.append(t)
        return len(tensors) - 1

    for layer in SAMPLE_CNN_LAYERS:
        name, kind = layer["name"], layer["op"]
        if kind in ("conv", "depthwise"):
            hw = -(-hw // layer["stride"])
            wt = w[f"{name}.weight"]
            if kind == "conv":  # OIHW -> OHWI
                filt = add(TensorDef(f"{name}.weight", wt.shape[:1] + wt.shape[2:] + wt.shape[1:2],
                                     data=wt.transpose(0, 2, 3, 1)))
            else:  # [C,1,kh,kw] -> [1,kh,kw,C]
                filt = add(TensorDef(f"{name}.weight", (1, *wt.shape[2:], wt.shape[0]), data=wt.transpose(1, 2, 3, 0)))
            bias = add(TensorDef(f"{name}.bias", [wt.shape[0]], data=w[f"{name}.bias"]))
            out = add(TensorDef(name, [1, hw, hw, wt.shape[0]]))
            opts: dict[str, Any] = {"padding": "SAME", "stride_w": layer["stride"], "stride_h": layer["stride"],
                                    "fused_activation_function": layer["act"].upper()}
            if kind == "depthwise":
                opts["depth_multiplier"] = 1
            ops.append(OpDef("CONV_2D" if kind == "conv" else "DEPTHWISE_CONV_2D", [cur, filt, bias], [out], opts))
        elif kind == "global_avg_pool":
            axes = add(TensorDef(f"{name}.axes", [2], "int32", data=np.array([1, 2], np.int32)))
            channels = tensors[cur].shape[-1]
            out = add(TensorDef(name, [1, channels]))
            ops.append(OpDef("MEAN", [cur, axes], [out], {"keep_dims": False}))
        elif kind == "dense":
            wt = w[f"{name}.weight"]  # [out, in], as TFLite's FULLY_CONNECTED wants
            filt = add(TensorDef(f"{name}.weight", wt.shape, data=wt))
            bias = add(TensorDef(f"{name}.bias", [wt.shape[0]], data=w[f"{name}.bias"]))
            out = add(TensorDef("logits" if layer is not SAMPLE_CNN_LAYERS[-1] else "probs", [1, wt.shape[0]]))
            ops.append(OpDef("FULLY_CONNECTED", [cur, filt, bias], [out]))
        elif kind == "softmax":
            out = add(TensorDef("probs", list(tensors[cur].shape)))
            ops.append(OpDef("SOFTMAX", [cur], [out], {"beta": 1.0}))
        else:
            raise ValueError(f"sample CNN layer kind {kind!r} has no TFLite mapping")
        cur = out
    return write_model(tensors, ops, [0], [cur], path, signature="serving_default",
                       description="edgekit sample CNN (MobileNet-like)")
