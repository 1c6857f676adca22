"""Semantic rules a parseable ONNX model must also keep before a native reader sees it, found by fuzzing.

Protobuf parsing catches broken bytes, not damaged values. Measured on mutated models that
still parse: OpenVINO 2026.4's reader crashed (SIGSEGV) on a ``Conv`` with one input and
looped for hours on opset version 2**40; OpenCV 5.0's importer crashed (SIGSEGV, SIGFPE)
on initializers whose dims disagree with their data and raised ``UnicodeDecodeError`` on a
non-UTF-8 tensor name. :func:`problem` checks, in time linear in the model's size:

* every opset version is in ``0..MAX_OPSET``;
* every text field (names, dim params, doc strings, metadata) is UTF-8 text;
* nodes of the standard domains have an input and output count their operator schema allows,
  their required attributes, and attributes of the type it declares (subgraphs of Loop/If/Scan
  included);
* every value a node reads, and every graph output, is defined by a graph input, an
  initializer, a node or an enclosing graph;
* every initializer has a known data type, no negative dim, and raw data of exactly the
  size its dims and type say.

Rules skip what the installed ``onnx`` package does not know (an operator newer than its
schemas, a custom domain), so a valid model is never refused for being new.

Example::

    why = problem(onnx.load("det.onnx", load_external_data=False))
    if why:
        raise CorruptModelError(why)
"""

from __future__ import annotations

import functools
import math
from typing import Any

__all__ = ["MAX_OPSET", "problem"]

#: highest opset version accepted (ai.onnx is at 23 in 2025; other domains count from 1)
MAX_OPSET = 1000
_STANDARD = {"", "ai.onnx", "ai.onnx.ml"}


@functools.lru_cache(maxsize=4096)
def _schema(op_type: str, domain: str, version: int) -> Any:
    import onnx.defs

    try:
        return onnx.defs.get_schema(op_type, version, "" if domain == "ai.onnx" else domain)
    except Exception:  # noqa: BLE001 - unknown to this onnx package (SchemaError): not checked
        return None


def _item_size(data_type: int) -> int | None:
    from onnx import helper

    try:
        return helper.tensor_dtype_to_np_dtype(data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return None


def _text(value: Any, what: str) -> str | None:
    return None if isinstance(value, str) else f"{what} {value!r} is not UTF-8 text"


def _initializer(t: Any, where: str) -> str | None:
    import onnx

    if (why := _text(t.name, f"{where} initializer name")) is not None:
        return why
    if t.data_type == onnx.TensorProto.UNDEFINED or t.data_type not in onnx.TensorProto.DataType.values():
        return f"{where} initializer {t.name!r} has data type {t.data_type}, which ONNX does not define"
    if any(d < 0 for d in t.dims):
        return f"{where} initializer {t.name!r} has a negative dim {list(t.dims)}"
    if t.data_location == onnx.TensorProto.EXTERNAL or not t.HasField("raw_data"):
        return None
    size = _item_size(t.data_type)
    if size is None or t.data_type == onnx.TensorProto.STRING:
        return None
    expected = math.prod(t.dims) * size
    if len(t.raw_data) != expected:
        return (f"{where} initializer {t.name!r}: dims {list(t.dims)} of {onnx.TensorProto.DataType.Name(t.data_type)} "
                f"need {expected} bytes, its raw data has {len(t.raw_data)}")
    return None


def _node(node: Any, opsets: dict[str, int], where: str) -> str | None:
    fields = [("name", node.name), ("op type", node.op_type), ("domain", node.domain)]
    for what, value in fields + [("input", v) for v in node.input] + [("output", v) for v in node.output]:
        if (why := _text(value, f"{where} node {what}")) is not None:
            return why
    domain = node.domain or ""
    if domain not in _STANDARD or domain not in opsets and not (domain == "ai.onnx" and "" in opsets):
        return None
    schema = _schema(node.op_type, domain, opsets.get(domain, opsets.get("", 0)))
    if schema is None:
        return None
    label = f"{where} node {node.name or node.op_type!r} ({node.op_type})"
    n_in, n_out = len(node.input), len(node.output)
    if not schema.min_input <= n_in <= schema.max_input:
        return f"{label} has {n_in} inputs; its schema allows {schema.min_input}..{schema.max_input}"
    if not schema.min_output <= n_out <= schema.max_output:
        return f"{label} has {n_out} outputs; its schema allows {schema.min_output}..{schema.max_output}"
    for attr in node.attribute:
        declared = schema.attributes.get(attr.name)
        if declared is not None and int(declared.type) != int(attr.type):
            return f"{label}: attribute {attr.name!r} has type {attr.type}, its schema declares {int(declared.type)}"
    given = {a.name for a in node.attribute}
    missing = [name for name, a in schema.attributes.items() if a.required and name not in given]
    if missing:  # OpenCV 5.0 crashed running a Loop without its body
        return f"{label} lacks the required attribute(s) {missing}"
    return None


def _graph(graph: Any, opsets: dict[str, int], where: str, outer: frozenset[str] = frozenset(),
           depth: int = 0) -> str | None:
    import onnx

    if depth > 64:
        return f"{where}: subgraphs nested more than 64 deep"
    for vi in [*graph.input, *graph.output]:
        if (why := _text(vi.name, f"{where} input/output name")) is not None:
            return why
    for t in graph.initializer:
        if (why := _initializer(t, where)) is not None:
            return why
    for node in graph.node:
        if (why := _node(node, opsets, where)) is not None:
            return why
    # every value a node reads is defined somewhere (in any order: the spec's topological order is not required)
    defined = outer | {vi.name for vi in graph.input} | {t.name for t in graph.initializer} \
        | {t.name for t in graph.sparse_initializer if isinstance(t.values.name, str)} \
        | {o for node in graph.node for o in node.output}
    for node in graph.node:
        missing = [i for i in node.input if i and i not in defined]
        if missing:
            return (f"{where} node {node.name or node.op_type!r} ({node.op_type}) reads {missing[0]!r}, which no graph "
                    "input, initializer or node defines")
        for attr in node.attribute:
            subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in subs:
                why = _graph(sub, opsets, f"{where} > {node.op_type} {attr.name}", frozenset(defined), depth + 1)
                if why is not None:
                    return why
    missing = [vi.name for vi in graph.output if vi.name not in defined]
    if missing:
        return f"{where} output {missing[0]!r} is not produced by any node, input or initializer"
    return None


def _strings(msg: Any, where: str, depth: int = 0) -> str | None:
    """The first text field anywhere in ``msg`` that is not UTF-8 (protobuf then hands out bytes)."""
    if depth > 600:
        return f"{where}: messages nested too deeply"
    for field, value in msg.ListFields():
        repeated = getattr(field, "is_repeated", None)
        values = value if (repeated if repeated is not None else field.label == 3) else [value]
        if field.type == 9:  # TYPE_STRING
            for v in values:
                if not isinstance(v, str):
                    return f"{where}.{field.name} {bytes(v)[:40]!r} is not UTF-8 text"
        elif field.type in (10, 11):  # TYPE_GROUP, TYPE_MESSAGE
            for v in values:
                if (why := _strings(v, f"{where}.{field.name}", depth + 1)) is not None:
                    return why
    return None


def problem(proto: Any) -> str | None:
    """The first rule ``proto`` (an ``onnx.ModelProto``) breaks, or ``None``."""
    opsets: dict[str, int] = {}
    for opset in proto.opset_import:  # OpenVINO's reader loops for hours on opset 2**40
        if not 0 <= opset.version <= MAX_OPSET:
            return (f"opset {opset.version} of domain {opset.domain or 'ai.onnx'!r} is outside 0..{MAX_OPSET}; "
                    "no ONNX operator set has such a version")
        if not isinstance(opset.domain, str):
            return f"opset domain {opset.domain!r} is not UTF-8 text"
        opsets[opset.domain] = int(opset.version)
    # every text field must be text: ONNX Runtime raised UnicodeDecodeError on a non-UTF-8 dim_param
    return _graph(proto.graph, opsets, "graph") or _strings(proto, "model")
