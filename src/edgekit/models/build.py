"""Write ONNX and TFLite model files without TensorFlow: the builders behind edgekit's own models.

:func:`write_tflite` serialises a list of :class:`TensorDef` and :class:`OpDef` through the
flatbuffer builder functions of the ``tflite`` package (a core dependency), so ``.tflite``
files are written without LiteRT installed; constant data is 16-byte aligned, as the TFLite
converter writes it. :func:`save_onnx` wraps an ``onnx.helper`` graph in a checked model.
(Reading TFLite goes through the bounds-checked :mod:`edgekit.models.tflite_schema` only.)

Example::

    t = [TensorDef("a", [1, 4]), TensorDef("b", [1, 4]), TensorDef("y", [1, 4])]
    write_tflite(t, [OpDef("ADD", [0, 1], [2])], inputs=[0, 1], outputs=[2], path="add.tflite")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OPSET", "OpDef", "TensorDef", "save_onnx", "write_tflite"]

#: default ONNX opset of the models edgekit builds
OPSET = 13

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


def write_tflite(tensors: Sequence[TensorDef], ops: Sequence[OpDef], inputs: Sequence[int],
                outputs: Sequence[int], path: str | Path, *, signature: str | None = None,
                description: str = "edgekit test model") -> Path:
    """Serialise one subgraph to a ``.tflite`` file; returns the path.

    ``signature`` adds a SignatureDef of that key whose names are the tensor names.

    >>> t = [TensorDef("a", [1, 4]), TensorDef("b", [1, 4]), TensorDef("s", [1, 4])]
    >>> write_tflite(t, [OpDef("ADD", [0, 1], [2])], [0, 1], [2], "add.tflite")  # doctest: +SKIP
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


def save_onnx(graph: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Wrap ``graph`` in a model, check it and write it."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgekit")
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    onnx.save(model, str(path))
    return path
