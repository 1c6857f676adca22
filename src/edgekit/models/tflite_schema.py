"""A structural verifier and reader of TFLite flatbuffers, run before any native library sees a file.

A truncated, bit-flipped or hostile ``.tflite`` must not reach a native reader (LiteRT,
OpenCV's TFLite importer, MNN's converter). LiteRT 2.3 verifies the flatbuffer itself, yet
crashes on structurally sound files whose semantics are broken (measured by fuzzing: a
subgraph input that is a read-only constant; a DEQUANTIZE whose declared output is larger
than its constant input, which XNNPACK unpacks past the end).
:func:`verify` walks the whole model with the bounds-checked
:class:`~edgekit.models.flatbuffer.Reader` (the generated ``tflite`` accessors check nothing),
checking every table, vector and string the interpreter reads, every index (tensors,
buffers, operator codes, subgraphs), every constant's size, and those semantic rules
(:mod:`edgekit.models.tflite_rules`). It
takes time linear in the file size, never loops per weight byte, and raises
:class:`SchemaViolation` with a precise message on the first problem (:func:`read_file`
raises :class:`~edgekit.errors.CorruptModelError` instead, naming the file).

This is edgekit's one TFLite reader: FLOPs, ``inspect``, the emulated runtime's graph and
MNN's error messages all read models through :func:`read_model` / :func:`read_file`, which
return the records of :mod:`edgekit.models.tflite_types` (operator names, custom ops,
builtin options, tensor shapes, types, quantization and constant data).

Example::

    data = Path("face.tflite").read_bytes()
    verify(data)                              # or SchemaViolation("subgraph 0 tensor 3 ...")
    Counter(operator_names(data))             # {'CONV_2D': 20, 'DEPTHWISE_CONV_2D': 13, ...}
    info = read_model(data)
    info.subgraphs[0].inputs                  # [TensorInfo(name='input', shape=(1, 128, 128, 3), ...)]
    info.subgraphs[0].operators[0].options    # {'padding': 0, 'stride_w': 2, 'stride_h': 2, ...}
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

from edgekit.errors import CorruptModelError
from edgekit.models import tflite_rules
from edgekit.models.flatbuffer import Reader, Table
from edgekit.models.tflite_types import (
    BUILTIN_OPERATORS,
    CUSTOM,
    OPTIONS,
    OPTIONS_OF,
    TENSOR_TYPES,
    ModelInfo,
    OperatorCode,
    OperatorInfo,
    SubgraphInfo,
    TensorInfo,
)

__all__ = ["ModelInfo", "OperatorCode", "OperatorInfo", "SchemaViolation", "SubgraphInfo", "TensorInfo",
           "builtin_name", "operator_names", "read_file", "read_model", "verify"]

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_RANK = 16
# Vectors and strings inside builtin options tables: union value -> [(slot, element size; 0 = string)].
_OPTION_VECTORS = {115: [(0, 4)], 3: [(1, 4), (2, 4)], 17: [(0, 4)], 30: [(0, 4)], 111: [(0, 0), (1, 0)]}
_OPTION2_VECTORS = {
    21: [(0, 0), (2, 1)], 2: [(0, 8)], 5: [(0, 0), (2, 0), (4, 4), (5, 1)], 9: [(0, 8)], 6: [(0, 8)],
    4: [(0, 8), (1, 8), (2, 8), (3, 8), (4, 1), (7, 8), (10, 8), (13, 8), (16, 4)], 17: [(0, 8)],
    12: [(0, 8), (1, 8), (2, 8), (3, 8), (4, 4)], 16: [(0, 8), (1, 8), (2, 8), (4, 8)],
    10: [(0, 8), (1, 8), (2, 8)], 13: [(0, 8), (1, 8), (2, 8), (3, 8), (4, 8)], 7: [(1, 8), (2, 8), (3, 8)],
    3: [(0, 8), (1, 8), (2, 8)],
}
# Subgraph indices inside options (IF, WHILE, CALL_ONCE, StableHLO bodies): union value -> slots (int32).
_OPTION_SUBGRAPHS = {92: [0, 1], 93: [0, 1], 103: [0]}
_OPTION2_SUBGRAPHS = {21: [1], 6: [1], 13: [5], 7: [6], 14: [2], 15: [0, 1]}


class SchemaViolation(Exception):
    """The bytes are not a well-formed TFLite model; the message says where and why.

    :func:`read_file` translates it into :class:`~edgekit.errors.CorruptModelError` naming the file.
    """


def builtin_name(code: int) -> str | None:
    """The name of builtin operator ``code`` (``None`` when this schema does not know it).

    >>> builtin_name(3)
    'CONV_2D'
    """
    return BUILTIN_OPERATORS.get(code)


def _fail(problem: str | None) -> None:
    if problem:
        raise SchemaViolation(problem)


def _check_indices(values: tuple[int, ...] | None, limit: int, what: str, optional: bool = False) -> tuple[int, ...]:
    values = values or ()
    low = -1 if optional else 0
    if values and (min(values) < low or max(values) >= limit):
        bad = next(v for v in values if v < low or v >= limit)
        raise SchemaViolation(f"{what} refers to tensor {bad}; valid: 0..{limit - 1}" + (" or -1" if optional else ""))
    return values


def _options(op: Table, type_slot: int, vectors: dict, subgraphs: dict,
             n_subgraphs: int) -> tuple[int, Table | None]:
    """Check an operator's options table; returns its union type and the table (``None`` if absent)."""
    kind = int(op.scalar(type_slot, "B"))
    if not kind:
        return kind, None
    t = op.table(type_slot + 1, "options")
    if t is None:
        return kind, None
    for slot, elem in vectors.get(kind, ()):
        if elem:
            t.vector(slot, elem, f"options field {slot}")
        else:
            t.string(slot, f"options field {slot}")
    for slot in subgraphs.get(kind, ()):
        idx = t.scalar(slot, "i")
        if not 0 <= int(idx) < n_subgraphs:
            raise SchemaViolation(f"{op.what}: options refer to subgraph {idx}; the model has {n_subgraphs}")
    return kind, t


def _option_values(op: str, kind: int, t: Table | None) -> dict[str, int | bool] | None:
    """The fields of ``op``'s builtin options (:data:`~edgekit.models.tflite_types.OPTIONS_OF`), read
    bounds-checked; ``None`` when the table is absent or of another type (the interpreter's defaults then)."""
    table = OPTIONS_OF.get(op)
    if table is None or t is None or OPTIONS[table][0] != kind:
        return None
    values: dict[str, int | bool] = {}
    for name, (slot, fmt, default) in OPTIONS[table][1].items():
        value = t.scalar(slot, fmt, default)
        values[name] = bool(value) if fmt == "?" else int(value)
    return values


def _quantization(t: Table | None, what: str) -> tuple[tuple[float, ...], tuple[int, ...], int] | None:
    if t is None:
        return None
    t.vector(0, 4, "min")
    t.vector(1, 4, "max")
    scales, zps = t.ints(2, "scale", "f") or (), t.ints(3, "zero_point", "q") or ()
    if t.scalar(4, "B"):
        custom = t.table(5, "details")
        if custom is not None:
            custom.vector(0, 1, "custom")
    if zps and len(zps) != len(scales):
        raise SchemaViolation(f"{what}: {len(scales)} scales but {len(zps)} zero points")
    if any(not math.isfinite(s) for s in scales):
        raise SchemaViolation(f"{what}: a quantization scale is not finite")
    return (tuple(scales), tuple(zps), int(t.scalar(6, "i"))) if scales else None


def read_model(data: bytes, *, memory_limit: int | None = None) -> ModelInfo:
    """Verify ``data`` and return its structure; raises :class:`SchemaViolation`.

    ``memory_limit`` caps the bytes of any one activation tensor (default: this host's memory).

    >>> read_model(Path("m.tflite").read_bytes()).subgraphs[0].outputs[0].name   # doctest: +SKIP
    'probs'
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_model takes bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 8:
        raise SchemaViolation(f"{len(data)} bytes is too short for a TFLite flatbuffer (at least 8)")
    if data[4:8] != IDENTIFIER:
        raise SchemaViolation(f"file identifier is {data[4:8]!r}, expected {IDENTIFIER!r}")
    try:
        return _read(Reader(data, SchemaViolation), memory_limit or tflite_rules.memory_limit())
    except SchemaViolation:
        raise
    except (IndexError, struct.error, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        raise SchemaViolation(f"malformed flatbuffer: {type(exc).__name__}: {exc}") from exc


def verify(data: bytes, *, memory_limit: int | None = None) -> None:
    """Raise :class:`SchemaViolation` unless ``data`` is a structurally sound TFLite model.

    >>> verify(b"garbage!")
    Traceback (most recent call last):
    edgekit.models.tflite_schema.SchemaViolation: file identifier is b'age!', expected b'TFL3'
    """
    read_model(data, memory_limit=memory_limit)


def operator_names(data: bytes) -> list[str]:
    """The builtin or custom operator name of every operator, subgraph by subgraph.

    >>> operator_names(Path("m.tflite").read_bytes())   # doctest: +SKIP
    ['CONV_2D', 'DEPTHWISE_CONV_2D', ..., 'SOFTMAX']
    """
    return [op.name for sg in read_model(data).subgraphs for op in sg.operators]


def read_file(path: str | os.PathLike[str], *, memory_limit: int | None = None) -> ModelInfo:
    """Read and verify the model at ``path``; a broken file raises :class:`~edgekit.errors.CorruptModelError`.

    The message names the file, says where it is broken and how to get a good one.

    >>> read_file("m.tflite").subgraphs[0].operators[0].name   # doctest: +SKIP
    'CONV_2D'
    """
    try:
        return read_model(Path(path).read_bytes(), memory_limit=memory_limit)
    except SchemaViolation as exc:
        raise CorruptModelError(f"{path}: not a valid TFLite model ({exc}). The file may be truncated or damaged: "
                                "re-export or re-download it.") from exc


def _read(r: Reader, memory_limit: int) -> ModelInfo:
    (root,) = r.unpack("<I", 0, "root offset")
    if root < 8 or root >= r.n:
        raise SchemaViolation(f"root table offset {root} is outside the {r.n}-byte file")
    model = r.table(root, "model")
    version = int(model.scalar(0, "I"))
    if version != SCHEMA_VERSION:
        raise SchemaViolation(f"schema version {version}, expected {SCHEMA_VERSION}")
    description = model.string(3, "description") or ""

    # buffers: byte sizes; data inline in the flatbuffer or at offset/size past it
    sizes, starts = [], []
    for i, buf in enumerate(model.tables(4, "buffers")):
        start, count = buf.vector(0, 1, "data")
        offset, size = int(buf.scalar(1, "Q")), int(buf.scalar(2, "Q"))
        if offset > 1:
            if offset + size > r.n:
                raise SchemaViolation(f"buffer {i}: bytes {offset}..{offset + size} lie past the end of the "
                                      f"{r.n}-byte file")
            start, count = offset, size
        sizes.append(count)
        starts.append(start)
    spans = tuple((start, size) if size else (0, 0) for start, size in zip(starts, sizes))

    codes: list[OperatorCode] = []
    for i, entry in enumerate(model.tables(1, "operator_codes")):
        builtin = max(int(entry.scalar(0, "b")), int(entry.scalar(3, "i")))
        if builtin == CUSTOM:
            name = entry.string(1, "custom_code")
            if not name:
                raise SchemaViolation(f"operator code {i} is a custom operator without a name")
        else:
            name = builtin_name(builtin)
            if name is None:
                raise SchemaViolation(f"operator code {i}: unknown builtin operator {builtin} (this edgekit knows "
                                      f"0..{max(BUILTIN_OPERATORS)}); if the model is newer than this software, "
                                      "upgrade edgekit")
        codes.append(OperatorCode(builtin, name, int(entry.scalar(2, "i", 1))))
    names = {i: c.name for i, c in enumerate(codes)}

    sg_tables = model.tables(2, "subgraphs")
    if not sg_tables:
        raise SchemaViolation("the model has no subgraph")
    subgraphs = []
    for g, sg in enumerate(sg_tables):
        where = f"subgraph {g}"
        tensors = []
        for ti, t in enumerate(sg.tables(0, "tensors")):
            tw = f"{where} tensor {ti}"
            name = t.string(3, "name") or ""
            tw = f"{tw} ({name!r})" if name else tw
            shape = t.ints(0, "shape") or ()
            sig = t.ints(7, "shape_signature")
            if len(shape) > MAX_RANK or (sig is not None and len(sig) > MAX_RANK):
                raise SchemaViolation(f"{tw}: rank {max(len(shape), len(sig or ()))} exceeds {MAX_RANK}")
            if any(d < 0 for d in shape):
                raise SchemaViolation(f"{tw}: negative dimension in shape {list(shape)}")
            if sig is not None and (any(d < -1 for d in sig) or (sig and len(sig) != len(shape))):
                raise SchemaViolation(f"{tw}: shape_signature {list(sig)} does not match shape {list(shape)}")
            kind = int(t.scalar(1, "b"))
            if kind not in TENSOR_TYPES:
                raise SchemaViolation(f"{tw}: unknown tensor type {kind}")
            buffer = int(t.scalar(2, "I"))
            if buffer >= len(sizes):
                raise SchemaViolation(f"{tw}: buffer index {buffer} is out of range (the model has "
                                      f"{len(sizes)} buffers)")
            quant = _quantization(t.table(4, "quantization"), tw)
            sparsity = t.table(6, "sparsity")
            for v in t.tables(9, "variant_tensors"):
                v.ints(0, "shape")
            dtype, item = TENSOR_TYPES[kind]
            nbytes = sizes[buffer]
            if sparsity is not None:
                _fail(tflite_rules.sparsity_problem(sparsity, shape, item, nbytes, tw))
            if nbytes and item and sparsity is None and nbytes < math.prod(shape) * item:
                raise SchemaViolation(f"{tw}: {dtype}{list(shape)} needs {math.prod(shape) * item} bytes, its "
                                      f"buffer {buffer} holds {nbytes}")
            if nbytes and item and sparsity is None and not math.prod(shape):  # OpenVINO: SIGFPE (fuzzing)
                raise SchemaViolation(f"{tw}: {dtype}{list(shape)} has no elements, yet its buffer {buffer} holds "
                                      f"{nbytes} bytes; the shape is probably corrupt")
            if not nbytes and item and math.prod(shape) * item > memory_limit:
                raise SchemaViolation(f"{tw}: {dtype}{list(shape)} needs {math.prod(shape) * item / 2**30:.1f} GiB, "
                                      f"more than the {memory_limit / 2**30:.1f} GiB limit (this host's memory); "
                                      "the shape is probably corrupt")
            if nbytes and t.scalar(5, "B"):
                nbytes = 0  # a variable's initial value is copied into writable memory
            tensors.append(TensorInfo(name, tuple(shape), tuple(sig) if sig is not None else None, dtype,
                                      buffer, nbytes, quant))
        n = len(tensors)
        ins = _check_indices(sg.ints(1, "inputs"), n, f"{where} inputs")
        outs = _check_indices(sg.ints(2, "outputs"), n, f"{where} outputs")
        _fail(tflite_rules.writable_problem(tensors, ins, f"{where} input"))
        ops = []
        for oi, op in enumerate(sg.tables(3, "operators")):
            ow = f"{where} operator {oi}"
            code = int(op.scalar(0, "I"))
            if code not in names:
                raise SchemaViolation(f"{ow}: operator code index {code} is out of range (the model has "
                                      f"{len(names)} operator codes)")
            ow = f"{ow} ({names[code]})"
            op_ins = _check_indices(op.ints(1, "inputs"), n, f"{ow} inputs", optional=True)
            op_outs = _check_indices(op.ints(2, "outputs"), n, f"{ow} outputs", optional=True)
            _fail(tflite_rules.writable_problem(tensors, op_outs, f"{ow} output"))
            _fail(tflite_rules.shape_problem(names[code], tensors, op_ins, op_outs, r.data, starts, ow))
            _fail(tflite_rules.optional_problem(names[code], op_ins, ow))
            op.what = ow
            opt_kind, options = _options(op, 3, _OPTION_VECTORS, _OPTION_SUBGRAPHS, len(sg_tables))
            _options(op, 11, _OPTION2_VECTORS, _OPTION2_SUBGRAPHS, len(sg_tables))
            op.vector(5, 1, "custom_options")
            op.vector(7, 1, "mutating_variable_inputs")
            _check_indices(op.ints(8, "intermediates"), n, f"{ow} intermediates")
            off, size = int(op.scalar(9, "Q")), int(op.scalar(10, "Q"))
            if off > 1 and off + size > r.n:
                raise SchemaViolation(f"{ow}: custom options at bytes {off}..{off + size} lie past the end of the file")
            ops.append(OperatorInfo(names[code], op_ins, op_outs, codes[code].custom,
                                    _option_values(names[code], opt_kind, options)))
        subgraphs.append(SubgraphInfo(sg.string(4, "name") or "", tensors, ops, ins, outs))

    if any(b >= len(sizes) for b in model.ints(5, "metadata_buffer") or ()):
        raise SchemaViolation(f"metadata_buffer refers to a buffer past the {len(sizes)} buffers")
    for i, meta in enumerate(model.tables(6, "metadata")):
        meta.string(0, "name")
        if int(meta.scalar(1, "I")) >= len(sizes):
            raise SchemaViolation(f"metadata {i} refers to buffer {meta.scalar(1, 'I')} of {len(sizes)}")
    signatures = {}
    for i, sdef in enumerate(model.tables(7, "signature_defs")):
        g = int(sdef.scalar(4, "I"))
        if g >= len(subgraphs):
            raise SchemaViolation(f"signature {i} refers to subgraph {g}; the model has {len(subgraphs)}")
        for slot, side in ((0, "inputs"), (1, "outputs")):
            for m in sdef.tables(slot, side):
                m.string(0, "name")
                if int(m.scalar(1, "I")) >= len(subgraphs[g].tensors):
                    raise SchemaViolation(f"signature {i} {side} refers to tensor {m.scalar(1, 'I')} of subgraph {g}")
        signatures[sdef.string(2, "signature_key") or ""] = g
    return ModelInfo(version, description, subgraphs, signatures, tuple(codes), spans, r.data)
