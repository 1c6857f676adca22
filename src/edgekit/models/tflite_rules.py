"""Semantic rules a structurally sound TFLite model must also keep, each found by fuzzing LiteRT.

LiteRT 2.3 verifies the flatbuffer, yet crashed (SIGSEGV) or allocated tens of gigabytes on
bit-flipped models that broke these rules. :mod:`edgekit.models.tflite_schema` calls each
check during its walk; each returns a message, or ``None`` when the rule holds. This module
sits below the schema walk: it imports only :mod:`edgekit.models.tflite_types` and the
flatbuffer reader, never the walk itself.

Example::

    problem = writable_problem(tensors, subgraph_inputs, "subgraph 0 input")
    if problem:
        raise SchemaViolation(problem)
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.models.flatbuffer import Table
    from edgekit.models.tflite_types import TensorInfo

__all__ = ["memory_limit", "optional_problem", "shape_problem", "sparsity_problem", "writable_problem"]

#: operators that have no optional input: an input index of -1 ("omitted") there made LiteRT 2.3's
#: prepare read a missing tensor (SIGSEGV once the heap held other models; a typed error on a fresh one)
ALL_INPUTS_REQUIRED = frozenset({
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW", "SQUARED_DIFFERENCE", "FLOOR_DIV", "FLOOR_MOD",
    "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND", "LOGICAL_OR",
    "RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "PRELU", "ELU", "EXP", "LOG",
    "SQRT", "RSQRT", "ABS", "NEG", "SIN", "COS", "SQUARE", "FLOOR", "CEIL", "ROUND", "LOGICAL_NOT", "SOFTMAX",
    "LOG_SOFTMAX", "DEQUANTIZE", "QUANTIZE", "CAST", "CONCATENATION", "PAD", "PADV2", "MIRROR_PAD", "TRANSPOSE",
    "GATHER", "GATHER_ND", "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "AVERAGE_POOL_2D",
    "MAX_POOL_2D", "L2_POOL_2D", "TILE", "SLICE", "STRIDED_SLICE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "SQUEEZE", "EXPAND_DIMS", "PACK", "UNPACK", "SPLIT", "SPLIT_V", "ARG_MAX",
    "ARG_MIN", "BATCH_MATMUL", "SELECT", "SELECT_V2", "BROADCAST_TO", "L2_NORMALIZATION",
})


def optional_problem(op: str, ins: tuple[int, ...], what: str) -> str | None:
    """An omitted input (-1) of an operator that has no optional inputs."""
    if op in ALL_INPUTS_REQUIRED and any(i < 0 for i in ins):
        return f"{what}: input {list(ins).index(min(ins))} is omitted (-1), but every input of {op} is required"
    return None

#: elementwise operators whose output has the shape of their first input
SHAPE_PRESERVING = frozenset({"DEQUANTIZE", "QUANTIZE", "CAST", "DENSIFY"})
#: operators whose output shape follows from input 0's shape and the constant input 1
SHAPE_FROM_CONSTANT = frozenset({"PAD", "PADV2", "MIRROR_PAD", "TILE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"})


def memory_limit() -> int:
    """Bytes of memory this host (or its cgroup) has; no single activation tensor can exceed it."""
    import os

    try:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        limit = 1 << 40
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                limit = min(limit, int(f.read().strip()))
        except (OSError, ValueError):
            continue
    return limit


def writable_problem(tensors: list[TensorInfo], indices: tuple[int, ...], what: str) -> str | None:
    """Inputs and operator outputs are written at run time: a constant there is read-only memory."""
    for i in indices:
        if i >= 0 and tensors[i].nbytes:
            return (f"{what} is tensor {i} ({tensors[i].name!r}), a constant with data in buffer "
                    f"{tensors[i].buffer}; it would be written to at run time")
    return None


def shape_problem(op: str, tensors: list[TensorInfo], ins: tuple[int, ...], outs: tuple[int, ...],
                  data: bytes, starts: list[int], what: str) -> str | None:
    """An output shape that contradicts the op's input and constants.

    Elementwise ops keep their input's shape (XNNPACK unpacks static weights by the output's
    shape: larger reads past the end). PAD paddings, TILE multiples and resize sizes define
    the output shape (a flipped constant made LiteRT allocate 20 GB); it must be the declared one.
    """
    if not ins or not outs or min(ins[0], outs[0]) < 0:
        return None
    if op in SHAPE_PRESERVING:
        src, dst = tensors[ins[0]], tensors[outs[0]]
        static = all(t.shape and -1 not in (t.shape_signature or ()) for t in (src, dst))
        if static and src.shape != dst.shape:
            return f"{what}: output shape {list(dst.shape)} differs from its input's {list(src.shape)}"
        return None
    if op not in SHAPE_FROM_CONSTANT or len(ins) < 2 or ins[1] < 0:
        return None
    src, const, dst = tensors[ins[0]], tensors[ins[1]], tensors[outs[0]]
    item = {"int32": 4, "int64": 8}.get(const.dtype)
    if not const.nbytes or item is None or any(-1 in (t.shape_signature or ()) for t in (src, dst)):
        return None
    count = math.prod(const.shape)
    if count > 64 or count * item > const.nbytes:
        return None
    v = struct.unpack_from(f"<{count}{'i' if item == 4 else 'q'}", data, starts[const.buffer])
    rank = len(src.shape)
    if op == "TILE" and count == rank:
        expected = tuple(d * m for d, m in zip(src.shape, v))
    elif op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR") and count == 2 and rank == 4:
        expected = (src.shape[0], v[0], v[1], src.shape[3])
    elif op in ("PAD", "PADV2", "MIRROR_PAD") and count == 2 * rank:
        expected = tuple(d + v[2 * i] + v[2 * i + 1] for i, d in enumerate(src.shape))
    else:
        return None
    if expected != dst.shape:
        return (f"{what}: its constant {const.name!r} {list(v)} turns input {list(src.shape)} into "
                f"{list(expected)}, but the output is declared {list(dst.shape)}; the constant is corrupt")
    return None


def sparsity_problem(t: Table, shape: tuple[int, ...], item: int, nbytes: int, what: str) -> str | None:
    """Check the sparse index arrays DENSIFY follows: a bad index writes outside the dense tensor."""
    import numpy as np

    order, block_map = t.ints(0, "traversal_order") or (), t.ints(1, "block_map") or ()
    dims, rank = t.tables(2, "dim_metadata"), len(shape)
    if (sorted(order) != list(range(rank + len(block_map))) or len(dims) != len(order)
            or any(not 0 <= b < rank for b in block_map)):
        return (f"{what}: sparsity traversal order {list(order)} / block map {list(block_map)} do not "
                f"fit shape {list(shape)} and {len(dims)} dimension metadata")
    block = {orig: int(dims[order.index(rank + j)].scalar(1, "i")) for j, orig in enumerate(block_map)}
    count = 1  # positions stored at the previous level
    for level, (orig, dim) in enumerate(zip(order, dims)):
        size = int(dim.scalar(1, "i")) if orig >= rank else shape[orig] // max(block.get(orig, 1), 1)
        if dim.scalar(0, "b") == 0:  # DENSE
            if int(dim.scalar(1, "i")) != size or size < 0:
                return f"{what}: sparsity level {level} is dense of size {dim.scalar(1, 'i')}, expected {size}"
            count *= size
            continue
        arrays = []
        for type_slot in (2, 4):  # segments, indices
            kind = int(dim.scalar(type_slot, "B"))
            vec = dim.table(type_slot + 1, "index vector") if kind in (1, 2, 3) else None
            if vec is None:
                return f"{what}: sparsity level {level} lacks its {'segments' if type_slot == 2 else 'indices'}"
            dtype = {1: "<i4", 2: "<u2", 3: "u1"}[kind]
            start, n = vec.vector(0, np.dtype(dtype).itemsize, "values")
            arrays.append(np.frombuffer(t.r.data, dtype, n, start).astype(np.int64))
        seg, idx = arrays
        if len(seg) != count + 1 or seg[0] != 0 or seg[-1] != len(idx) or (np.diff(seg) < 0).any():
            return (f"{what}: sparsity level {level} has {len(seg)} segments for {count} positions "
                    f"and {len(idx)} indices, or they do not increase from 0")
        if len(idx) and (idx.min() < 0 or idx.max() >= size):
            return f"{what}: sparsity level {level} has an index {idx.max()} outside 0..{size - 1}"
        count = len(idx)
    if item and count * item > nbytes:
        return f"{what}: sparsity says {count} values, its buffer holds {nbytes} bytes"
    return None
