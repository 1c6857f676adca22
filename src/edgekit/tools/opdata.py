"""Operator-support data of the runtimes: ``runtimes/onnx_ops/<rt>.toml`` and ``runtimes/tflite_ops/<rt>.toml``.

The files are written by ``scripts/measure_op_support.py`` and referenced from the ``[ops]``
table of ``runtimes/<rt>.toml`` (``onnx = "onnx_ops/onnxruntime.toml"``). Each says how it was
obtained (``evidence``: ``measured`` from ONNX's backend cases, ``registered`` for a kernel
registration probe, ``documented`` for a vendor list) and, per operator, a ``status``:

=================  ===================================================================
``supported``      every case of the operator passed
``partial``        some cases passed, some failed or were refused (``cases`` says which)
``failing``        it runs but no case gave the right values
``unsupported``    no case ran (refused at load or run, crashed or timed out)
``registered``     LiteRT has a kernel for it (values not measured)
``not_registered`` LiteRT has no kernel for it
``untested``       the data has no case for it (so: unknown)
=================  ===================================================================

A ``partial`` operator fails some of its cases, which differ from each other in attributes, types
and input values. :meth:`OpSupport.failures_for` compares each failing case (read from the ONNX
backend node data of the installed ``onnx`` wheel, where it ships it) with how a model's node uses
the operator (:class:`OpUse`): a case with other attributes, input/output arity, element types or
input ranks says nothing about that node; one that matches it, constant inputs included (or that was refused
at load, which does not depend on the values), says the node fails; one that matches but for
input values may or may not apply.

Example::

    data = op_support("opencv", "onnx")
    data.status("Softmax"), data.failures("Softmax")      # ('partial', {'test_softmax_...': 'failed: ...'})
    data.status("Add", "float32")                          # 'supported' (where int8 Add is not)
    same, similar, other = data.failures_for(use)          # use: an OpUse of the model's Clip node
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.catalog import catalog_dir, runtime_info
from edgekit.errors import ConfigError
from edgekit.tomlfile import read_toml

__all__ = ["BLOCKING", "OpSupport", "OpUse", "onnx_use", "op_support"]

#: statuses that stop a model from running on a runtime
BLOCKING = frozenset({"failing", "unsupported", "not_registered"})


@dataclass(frozen=True)
class OpSupport:
    """One runtime's operator-support data for one model format."""

    runtime: str
    format: str
    version: str
    evidence: str
    source: str
    path: Path
    totals: Mapping[str, int] = field(default_factory=dict)
    ops: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def status(self, op: str, dtype: str | None = None) -> str:
        """The operator's status (``untested`` when the data has no case for it).

        With ``dtype`` (the element type of the operator's first input, ``"float32"``), the status of
        the cases of that type where the data distinguishes types (an ``int8`` Add may crash where a
        ``float32`` one passes); else the operator's overall status.
        """
        rec = self.ops.get(op, {})
        by_type = rec.get("dtypes", {})
        if dtype and dtype in by_type:
            return str(by_type[dtype])
        return str(rec.get("status", "untested"))

    def failures(self, op: str) -> dict[str, str]:
        """Non-passing cases of ``op`` with their reasons (measured data only)."""
        return dict(self.ops.get(op, {}).get("cases", {}))

    def failures_for(self, use: OpUse) -> tuple[dict[str, str], dict[str, str], int]:
        """The failing cases of ``use.op`` as they bear on ``use``: ``(same, similar, unrelated)``.

        ``same``: the case is this use (attributes, arity, element types, ranks and constant inputs), or it
        was refused at load with the same attributes, arity, types and ranks; ``similar``: it matches but
        for input values (or the case data is not installed, so it cannot be compared); ``unrelated``: how
        many differ in attributes, arity, types or ranks. Skipped, ``passed_const`` and ``_expanded`` cases
        (the function body, run as other operators) are not failures of the operator itself.
        """
        same: dict[str, str] = {}
        similar: dict[str, str] = {}
        unrelated = 0
        for case, why in self.failures(use.op).items():
            if why.startswith(("passed_const", "skipped")) or case.endswith("_expanded"):
                continue
            ref = _case_use(case)
            how = "similar" if ref is None else _compare(ref, use)
            if how == "similar" and ref is not None and why.startswith("unsupported: load"):
                how = "same"  # refused while loading: the values do not enter into it
            if how == "same":
                same[case] = why
            elif how == "similar":
                similar[case] = why
            else:
                unrelated += 1
        return same, similar, unrelated

    def describe(self) -> str:
        """``'onnxruntime 1.32.0, measured: ONNX backend node test cases ...'``."""
        return f"{self.runtime} {self.version}, {self.evidence}: {self.source}"


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    return read_toml(path)


def op_support(runtime: str, fmt: str) -> OpSupport | None:
    """The ``fmt`` (``"onnx"``/``"tflite"``) operator data of ``runtime``; None when there is none."""
    info = runtime_info(runtime)
    if info is None:
        return None
    rel = info.ops.get(fmt)
    if rel is None:
        return None
    where = f"runtimes/{runtime}.toml [ops] {fmt}"
    if not isinstance(rel, str):
        raise ConfigError(f"{where}: expected a path relative to runtimes/, got {rel!r}.")
    path = catalog_dir("runtimes") / rel
    if not path.is_file():
        raise ConfigError(f"{where}: {path} does not exist. Regenerate it: python scripts/measure_op_support.py "
                           f"--runtime {runtime}")
    data = _read(path)
    ops = data.get("ops", {})
    if not isinstance(ops, dict):
        raise ConfigError(f"{path}: key 'ops' expected a table, got {type(ops).__name__}.")
    return OpSupport(runtime=runtime, format=str(data.get("format", fmt)), version=str(data.get("version", "?")),
                     evidence=str(data.get("evidence", "?")), source=str(data.get("source", "")), path=path,
                     totals=dict(data.get("totals", {})), ops=ops)


# -- comparing a model's node with the backend cases ------------------------------------------

@dataclass(frozen=True)
class OpUse:
    """How one ONNX node uses its operator, as far as a backend case can be compared with it."""

    op: str  # "Clip", or "domain:Op" outside the default domain
    attrs: Mapping[str, Any] = field(default_factory=dict)  # explicit, else the schema's default
    inputs: tuple[str | None, ...] = ()  # element type per input; "" omitted (optional), None unknown
    ranks: tuple[int | None, ...] = ()  # rank per input, None unknown
    outputs: int = 1  # outputs the node produces (named)
    values: Mapping[int, Any] = field(default_factory=dict)  # input index (>= 1) -> value, where constant

    @property
    def dtype(self) -> str | None:
        """The element type of the first input (what the data's ``dtypes`` table is keyed by)."""
        return self.inputs[0] if self.inputs else None


def onnx_use(node: Any, opset: int, types: Mapping[str, str | None], values: Mapping[str, Any],
             ranks: Mapping[str, int] | None = None) -> OpUse:
    """The :class:`OpUse` of an ONNX ``node``; ``types``, ``values``, ``ranks``: element types, constant values
    and ranks by tensor name, where known."""
    import onnx
    from onnx import helper

    domain = node.domain if node.domain not in ("", "ai.onnx") else ""
    attrs: dict[str, Any] = {}
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, domain)
        for name, a in schema.attributes.items():
            if a.default_value.type:
                attrs[name] = helper.get_attribute_value(a.default_value)
    except Exception:  # noqa: BLE001 - no schema (custom op, opset out of range): explicit attributes only
        pass
    for a in node.attribute:
        if a.type not in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            attrs[a.name] = helper.get_attribute_value(a)
    return OpUse(op=f"{domain}:{node.op_type}" if domain else node.op_type, attrs=attrs,
                 inputs=tuple(types.get(n) if n else "" for n in node.input),
                 ranks=tuple((ranks or {}).get(n) for n in node.input),
                 outputs=sum(1 for n in node.output if n),
                 values={i: values[n] for i, n in enumerate(node.input) if i and n in values})


@functools.cache
def _case_use(case: str) -> OpUse | None:
    """The :class:`OpUse` of a backend case's single node, its fed inputs as values; None where not installed."""
    try:
        import onnx
        from onnx import numpy_helper

        from edgekit.models.model_io import element_type

        folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node" / case
        proto = onnx.load(str(folder / "model.onnx"))
        if len(proto.graph.node) != 1 or not (folder / "test_data_set_0").is_dir():
            return None
        node, g = proto.graph.node[0], proto.graph
        fed = [vi.name for vi in g.input if vi.name not in {i.name for i in g.initializer}]
        values = {name: numpy_helper.to_array(onnx.load_tensor(str(folder / "test_data_set_0" / f"input_{i}.pb")))
                  for i, name in enumerate(fed)}
        values.update({i.name: numpy_helper.to_array(i) for i in g.initializer})
        types = {vi.name: element_type(vi) or None for vi in [*g.input, *g.output]}
        domain = node.domain if node.domain not in ("", "ai.onnx") else ""
        opset = next((o.version for o in proto.opset_import if (o.domain or "") == domain), 1)
        return onnx_use(node, opset, types, values, {name: v.ndim for name, v in values.items()})
    except Exception:  # noqa: BLE001 - another onnx version, or no test data: the case cannot be compared
        return None


def _equal(a: Any, b: Any) -> bool:
    import numpy as np

    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:  # noqa: BLE001 - values numpy cannot compare are taken as different
        return False


def _compare(case: OpUse, use: OpUse) -> str:
    """``"unrelated"``, ``"same"`` or ``"similar"`` (see :meth:`OpSupport.failures_for`)."""
    if len(case.inputs) != len(use.inputs) or case.outputs != use.outputs:
        return "unrelated"
    for a, b in [*zip(case.inputs, use.inputs), *zip(case.ranks, use.ranks)]:
        if a is not None and b is not None and a != b:
            return "unrelated"
    if case.attrs.keys() != use.attrs.keys():  # a feature one sets and the other does not (Shape's start/end)
        return "unrelated"
    for name in case.attrs:
        if not _equal(case.attrs[name], use.attrs[name]):
            return "unrelated"
    fed = [i for i in range(1, len(use.inputs)) if use.inputs[i] != "" and i not in use.values]
    if fed or any(not _equal(case.values.get(i), v) for i, v in use.values.items()):
        return "similar"
    return "same"
