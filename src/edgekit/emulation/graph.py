"""A model's operator graph, which operators an accelerator takes, and the partitions it makes.

:func:`onnx_graph` and :func:`tflite_graph` read a model into one :class:`Graph` (nodes in
execution order, tensors with shapes, dtypes and constness). :func:`partition` decides, for
an :class:`~edgekit.emulation.spec.AcceleratorSpec`, which nodes run on the accelerator and
why the others do not, and groups them the way delegates and execution providers do:

- ``maximal`` (ONNX Runtime EPs, TFLite delegates): every maximal *convex* group of connected
  supported nodes becomes one accelerator partition (convex: no path leaves the group and comes
  back, which would need the CPU in the middle of it);
- ``prefix`` (edgetpu_compiler): only the supported nodes before the first unsupported one in
  execution order are mapped; that op and everything after it run on the CPU.

Partitions smaller than the spec's ``min_partition_ops`` (counting ops that cost anything) go
back to the CPU. Unsupported nodes form CPU partitions by the same convex grouping.

Example::

    g = onnx_graph(onnx.load("det.onnx"))
    plan = partition(g, load_spec("edgetpu"), int8_only=True)
    [(p.on_accelerator, len(p.nodes)) for p in plan.partitions]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.emulation.spec import AcceleratorSpec

__all__ = ["Graph", "Node", "Partition", "Plan", "Tensor", "onnx_graph", "partition", "tflite_graph"]

_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_INT8 = (np.dtype("int8"), np.dtype("uint8"))


@dataclass(frozen=True)
class Tensor:
    """One tensor: shape (None when unknown), dtype (None when unknown) and whether it is a constant."""

    name: str
    shape: tuple[int, ...] | None
    dtype: np.dtype | None
    const: bool = False

    @property
    def elements(self) -> int:
        """Number of elements (0 when the shape is unknown)."""
        return math.prod(self.shape) if self.shape is not None else 0

    @property
    def nbytes(self) -> int:
        """Bytes in its own dtype (0 when unknown)."""
        return self.elements * (self.dtype.itemsize if self.dtype is not None else 4)


@dataclass(frozen=True)
class Node:
    """One operator: position in execution order, name, type, input and output tensor names."""

    index: int
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass
class Graph:
    """A model's main graph, nodes in execution (topological) order."""

    fmt: str
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)

    static: set[str] = field(default_factory=set)  # constants and what is computed from constants only

    def __post_init__(self) -> None:
        self.static = {name for name, t in self.tensors.items() if t.const}
        for n in self.nodes:
            for t in n.outputs:
                self.producer[t] = n.index
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(n.index)
            ins = [t for t in n.inputs if t]
            if ins and all(t in self.static for t in ins):  # e.g. DequantizeLinear of int8 weights
                self.static.update(n.outputs)

    def tensor(self, name: str) -> Tensor:
        return self.tensors.get(name) or Tensor(name, None, None)

    def is_const(self, name: str) -> bool:
        """True for weights: constants, and tensors computed from constants only (dequantized weights)."""
        return name in self.static

    def weight_bytes(self) -> int:
        """Bytes of every constant tensor (the model's parameters)."""
        return sum(t.nbytes for t in self.tensors.values() if t.const)


# --- reading models ------------------------------------------------------------------------------

def onnx_graph(model: Any) -> Graph:
    """The main graph of an ONNX ``ModelProto``, with shapes from ``onnx.shape_inference``."""
    from onnx import helper, numpy_helper, shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - shape inference is best effort: unknown shapes just cost nothing
        inferred = model
    g = inferred.graph
    tensors: dict[str, Tensor] = {}
    dtype: np.dtype[Any] | None
    for init in g.initializer:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type))
        tensors[init.name] = Tensor(init.name, tuple(int(d) for d in init.dims), dtype, const=True)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.name in tensors or not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, TypeError, ValueError):
            dtype = None
        dims = tt.shape.dim if tt.HasField("shape") else None
        shape = tuple(int(d.dim_value) for d in dims) if dims is not None and all(
            d.HasField("dim_value") for d in dims) else None
        tensors[vi.name] = Tensor(vi.name, shape, dtype)
    nodes = []
    for i, n in enumerate(g.node):
        nodes.append(Node(i, n.name or f"{n.op_type}_{i}", n.op_type, tuple(n.input), tuple(n.output)))
        if n.op_type == "Constant" and n.output:
            value = next((a for a in n.attribute if a.name == "value"), None)
            if value is not None:
                arr = numpy_helper.to_array(value.t)
                tensors[n.output[0]] = Tensor(n.output[0], tuple(arr.shape), arr.dtype, const=True)
    inits = {i.name for i in g.initializer}
    return Graph("onnx", nodes, tensors, [vi.name for vi in g.input if vi.name not in inits],
                 [vi.name for vi in g.output])


def tflite_graph(path: str | Path) -> Graph:
    """The first subgraph of a TFLite model, read with edgekit's bounds-checked reader.

    Custom operators are named ``CUSTOM:<custom code>``; a tensor is constant when its buffer
    holds data. A broken file raises :class:`~edgekit.errors.CorruptModelError`.

    >>> [n.op for n in tflite_graph("conv_relu.tflite").nodes]   # doctest: +SKIP
    ['CONV_2D']
    """
    from edgekit.models import tflite_schema

    info = tflite_schema.read_file(path)
    sg = info.subgraphs[0]
    tensors: dict[str, Tensor] = {}
    names = []
    for i, t in enumerate(sg.tensors):
        name = t.name or f"tensor_{i}"
        names.append(name)
        const = info.buffers[t.buffer][1] > 0
        try:
            dtype = np.dtype(t.dtype)
        except TypeError:
            dtype = None
        tensors[name] = Tensor(name, tuple(int(d) for d in t.shape), dtype, const=const)
    nodes = []
    for i, op in enumerate(sg.operators):
        kind = f"CUSTOM:{op.name}" if op.custom else op.name
        ins = tuple(names[j] if j >= 0 else "" for j in op.inputs)
        outs = tuple(names[j] for j in op.outputs)
        nodes.append(Node(i, outs[0] if outs else f"{kind}_{i}", kind, ins, outs))
    return Graph("tflite", nodes, tensors, [names[j] for j in sg.input_indices],
                 [names[j] for j in sg.output_indices])


# --- which nodes an accelerator takes ------------------------------------------------------------

def is_quantized(g: Graph, n: Node) -> bool:
    """True when ``n`` computes on 8-bit integers (QDQ group, QLinear*/integer op, or int8 TFLite tensors)."""
    if n.op in _QDQ or n.op.startswith("QLinear") or n.op.endswith("Integer") or n.op in ("QUANTIZE", "DEQUANTIZE"):
        return True
    acts = [t for t in n.inputs if t and not g.is_const(t)]
    if not acts:
        return False
    for t in acts:
        dt = g.tensor(t).dtype
        if dt in _INT8:
            continue
        p = g.producer.get(t)
        if g.fmt == "onnx" and p is not None and g.nodes[p].op == "DequantizeLinear":
            continue
        if dt is not None and dt.kind not in "fc":  # int32/int64/bool index tensors do not decide
            continue
        return False
    return True


def _outer_dims_used(shape: tuple[int, ...] | None, inner: int) -> bool:
    return any(d > 1 for d in (shape or ())[:-inner])


def support(g: Graph, n: Node, spec: AcceleratorSpec, *, int8_only: bool) -> str | None:
    """``None`` when ``spec``'s accelerator takes ``n``, else the reason it does not."""
    if n.op == "Constant":
        return None
    if int8_only and n.op in _QDQ | {"QUANTIZE", "DEQUANTIZE"}:
        return None  # folded into the quantized operators by every int8 compiler
    if not spec.supports(n.op, g.fmt):
        return f"{n.op} is not in {spec.lists_for(g.fmt)} ({spec.source})"
    if int8_only and not is_quantized(g, n):
        return f"{n.op} computes in float here (not quantized) and the accelerator computes int8 only"
    if spec.max_active_dims is not None:
        for t in (*n.inputs, *n.outputs):
            if t and not g.is_const(t) and _outer_dims_used(g.tensor(t).shape, spec.max_active_dims):
                return (f"tensor {t!r} {g.tensor(t).shape} has a dimension larger than 1 outside its "
                        f"{spec.max_active_dims} innermost ones ({spec.name} limit)")
    return None


# --- partitions ----------------------------------------------------------------------------------

@dataclass
class Partition:
    """Consecutive work on one side: ``nodes`` (indices) on the accelerator or on the CPU."""

    index: int
    on_accelerator: bool
    nodes: list[int]


@dataclass
class Plan:
    """The partition of a graph: per-node placement and reason, and the partitions in order."""

    graph: Graph
    spec: AcceleratorSpec
    on_accelerator: list[bool]
    reasons: list[str | None]  # why each CPU node is not on the accelerator
    partitions: list[Partition]
    part_of: list[int]  # node index -> partition index

    def unsupported(self) -> list[tuple[Node, str]]:
        """``(node, reason)`` of every node that falls back to the CPU."""
        return [(n, self.reasons[n.index] or "") for n in self.graph.nodes if not self.on_accelerator[n.index]]


def _masks(g: Graph) -> tuple[list[int], list[int]]:
    n = len(g.nodes)
    anc, desc = [0] * n, [0] * n
    for node in g.nodes:
        for t in node.inputs:
            p = g.producer.get(t)
            if p is not None:
                anc[node.index] |= anc[p] | (1 << p)
    for node in reversed(g.nodes):
        for t in node.outputs:
            for c in g.consumers.get(t, ()):
                desc[node.index] |= desc[c] | (1 << c)
    return anc, desc


def _group(g: Graph, members: list[int], anc: list[int], desc: list[int]) -> list[list[int]]:
    """Greedy convex grouping of ``members`` (in execution order) along their edges."""
    member = set(members)
    groups: list[list[int]] = []
    masks: list[list[int]] = []  # [members, union of ancestors, union of descendants]
    where: dict[int, int] = {}
    for i in members:
        cands = []
        for t in g.nodes[i].inputs:
            p = g.producer.get(t)
            if p in member and p in where and where[p] not in cands:
                cands.append(where[p])
        bit = 1 << i

        def convex(ids: list[int], bit: int = bit, a: int = anc[i], d: int = desc[i]) -> bool:
            m = bit
            for k in ids:
                m, a, d = m | masks[k][0], a | masks[k][1], d | masks[k][2]
            return not (a & d & ~m)

        chosen: list[int] | None = None
        if cands and convex(cands):
            chosen = cands
        else:
            for k in sorted(cands, key=lambda k: -len(groups[k])):
                if convex([k]):
                    chosen = [k]
                    break
        if not chosen:
            groups.append([i])
            masks.append([bit, anc[i], desc[i]])
            where[i] = len(groups) - 1
            continue
        keep = chosen[0]
        for k in chosen[1:]:  # merge into the first, leave the others empty
            groups[keep].extend(groups[k])
            masks[keep] = [masks[keep][j] | masks[k][j] for j in range(3)]
            for x in groups[k]:
                where[x] = keep
            groups[k] = []
        groups[keep].append(i)
        masks[keep] = [masks[keep][0] | bit, masks[keep][1] | anc[i], masks[keep][2] | desc[i]]
        where[i] = keep
    return [sorted(gr) for gr in groups if gr]


def partition(g: Graph, spec: AcceleratorSpec, *, int8_only: bool = False, accelerator_is_cpu: bool = False) -> Plan:
    """Place every node of ``g`` on the accelerator described by ``spec`` or on the CPU, with reasons."""
    n = len(g.nodes)
    if accelerator_is_cpu:
        reasons: list[str | None] = [None] * n
    else:
        reasons = [support(g, node, spec, int8_only=int8_only) for node in g.nodes]
    if spec.partition == "prefix" and not accelerator_is_cpu:
        first = next((i for i, r in enumerate(reasons) if r is not None and g.nodes[i].op != "Constant"), None)
        if first is not None:
            cut = g.nodes[first]
            for i in range(first + 1, n):
                if reasons[i] is None and g.nodes[i].op != "Constant":
                    reasons[i] = (f"after the first unmappable op {cut.op} ({cut.name!r}): {spec.name} maps "
                                  "only the ops before it and runs the rest on the CPU")
    on_acc = [r is None for r in reasons]
    anc, desc = _masks(g)
    acc_groups = _group(g, [i for i in range(n) if on_acc[i]], anc, desc)
    free = spec.latency.free_ops | {"Constant"}
    for grp in acc_groups:
        work = sum(1 for i in grp if g.nodes[i].op not in free)
        if not accelerator_is_cpu and work < spec.min_partition_ops:
            for i in grp:
                on_acc[i] = False
                reasons[i] = (f"its accelerator partition has {work} op(s), fewer than {spec.name}'s minimum of "
                              f"{spec.min_partition_ops}")
    acc_groups = [grp for grp in acc_groups if on_acc[grp[0]]]
    cpu_groups = _group(g, [i for i in range(n) if not on_acc[i]], anc, desc)
    ordered = sorted([(grp, True) for grp in acc_groups] + [(grp, False) for grp in cpu_groups],
                     key=lambda x: x[0][0])
    parts = [Partition(k, acc, grp) for k, (grp, acc) in enumerate(ordered)]
    part_of = [0] * n
    for p in parts:
        for i in p.nodes:
            part_of[i] = p.index
    return Plan(g, spec, on_acc, reasons, parts, part_of)
