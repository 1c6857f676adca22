"""Will this model run there? Operator compatibility per runtime and per device target.

:func:`check_runtimes` checks every operator of a model against each runtime's recorded
operator data (:mod:`edgekit.tools.opdata`: measured with ONNX's backend cases for ONNX, a
kernel-registration probe for LiteRT) and gives a verdict per runtime:

- ``supported``: every operator passes for the element types the model uses. An operator the
  data records as ``partial`` (some of its cases fail) counts as passing when no failing case
  is how the model uses it (other attributes, arity or types); where failing cases match but
  for input values the model's constants may not share, ``reason`` says so: ``1 case of Clip
  fails: test_clip_min_greater_than_max``;
- ``unsupported``: some operator is failing or unsupported there, for the model's types or
  exactly as the model uses it (``blocking`` names them), or the runtime cannot read the format;
- ``unknown``: there is no operator data for this runtime and format, or for some operator.

:func:`check_device` gives each target of a device profile the same verdict (one logic for
both), then adds what the target requires: a format its runtime reads, the precision it runs
(an int8-only NPU with a float model is ``unsupported``), and the operators its accelerator
runs, from the emulation specs (``devices/emulation/*.toml``) — operators outside that list run
on the CPU, so the target is ``partitioned`` (or ``unsupported`` where the accelerator's
compiler refuses partial graphs).

Example::

    for r in check_runtimes("det.onnx"): print(r.runtime, r.verdict, r.blocking)
    for t in check_device("det.onnx", "coral-edgetpu"): print(t.target, t.verdict, t.reasons)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgekit.catalog import runtime_info, runtime_infos
from edgekit.models.formats import ModelFile, open_model, quantize_hint
from edgekit.tools.opdata import BLOCKING, OpSupport, OpUse, onnx_use, op_support

__all__ = ["RuntimeCheck", "TargetCheck", "check_device", "check_runtimes", "model_operators"]

_SUPPORTED = frozenset({"supported", "registered"})


@dataclass
class RuntimeCheck:
    """One runtime's verdict on a model, with the operators behind it."""

    runtime: str
    verdict: str  # supported | unsupported | unknown
    ops: dict[str, str] = field(default_factory=dict)  # op type -> status for this model (see _op_status)
    blocking: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # ops with failing cases that may apply (in `reason`)
    untested: list[str] = field(default_factory=list)
    reason: str = ""
    data_version: str | None = None  # runtime version the data was measured with
    evidence: str = ""
    cases: dict[str, dict[str, str]] = field(default_factory=dict)  # op -> failing cases that apply, with why
    unrelated: dict[str, int] = field(default_factory=dict)  # op -> failing cases unlike the model's use

    def details(self, limit: int = 3) -> list[str]:
        """Why each blocking or partial operator is so (its failing cases and their reasons), and which
        failing cases were set aside as unlike the model's use."""
        data = op_support(self.runtime, "onnx") if self.evidence == "measured" else None
        lines = []
        for op in self.blocking + self.partial:
            fails = self.cases.get(op) or {c: w for c, w in (data.failures(op) if data else {}).items()
                                          if not w.startswith(("passed_const", "skipped"))}
            for case, why in list(fails.items())[:limit]:
                lines.append(f"{op}: {case}: {why}")
        for op, n in self.unrelated.items():
            if n:
                lines.append(f"{op}: {n} failing case{'s' if n > 1 else ''} with other attributes, arity, "
                             "element types or ranks than the model's: not counted")
        return lines


#: verdict of a target whose runtime does not read the model's format: not a candidate, not a failure
OTHER_FORMAT = "other format"


@dataclass
class TargetCheck:
    """One device target's verdict: ``supported``, ``partitioned``, ``unsupported``, ``unknown`` or
    ``other format`` (its runtime does not read the model's format, so placement passes over it)."""

    index: int
    target: str  # "litert/edgetpu int8 on edgetpu"
    verdict: str
    reasons: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)  # operators that stop the runtime
    on_cpu: list[str] = field(default_factory=list)  # operators the accelerator leaves to the CPU
    runtime: RuntimeCheck | None = None
    accelerated: bool = False  # the target's unit is not a CPU


def model_operators(model: str | os.PathLike[str] | ModelFile) -> tuple[str, list[str]]:
    """``(format, operator types in execution order)``; ONNX types outside the default domain are
    ``"domain:Op"``, subgraph operators included; TFLite uses builtin (or custom) names."""
    fmt, uses = _operators(open_model(model))
    return fmt, [u.op for u in uses]


def _operators(mf: ModelFile) -> tuple[str, list[OpUse]]:
    """How the model uses each operator, node by node in execution order (ONNX: attributes, element types,
    constant inputs, for comparison with the recorded cases; other formats: the operator name only)."""
    if mf.format == "onnx":
        import onnx
        from onnx import numpy_helper

        from edgekit.models.model_io import element_type

        proto = onnx.load(str(mf.path), load_external_data=False)
        try:
            proto = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
        except Exception:  # noqa: BLE001 - types are a refinement; without them ops match on their name
            pass
        opsets = {(o.domain if o.domain not in ("", "ai.onnx") else ""): o.version for o in proto.opset_import}
        uses: list[OpUse] = []
        types: dict[str, str | None] = {}
        ranks: dict[str, int] = {}
        values: dict[str, Any] = {}
        graphs = [proto.graph]
        while graphs:  # a subgraph sees its outer scope: names accumulate
            g = graphs.pop(0)
            for vi in [*g.input, *g.value_info, *g.output]:
                types[vi.name] = element_type(vi) or None
                if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                    ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
            for init in g.initializer:
                types[init.name] = _init_type(init.data_type)
                ranks[init.name] = len(init.dims)
                if _small(init):
                    values[init.name] = numpy_helper.to_array(init)
            for node in g.node:
                dom = node.domain if node.domain not in ("", "ai.onnx") else ""
                if node.op_type == "Constant" and not dom and node.output:
                    value = next((a.t for a in node.attribute if a.name == "value"), None)
                    if value is not None and _small(value):
                        values[node.output[0]] = numpy_helper.to_array(value)
                uses.append(onnx_use(node, opsets.get(dom, 1), types, values, ranks))
                for a in node.attribute:
                    graphs.extend([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs))
        return "onnx", uses
    if mf.format == "tflite":
        from edgekit.models import tflite_schema

        return "tflite", [OpUse(name) for name in tflite_schema.operator_names(mf.path.read_bytes())]
    from edgekit.tools.inspect import inspect_model

    return mf.format, [OpUse(name) for name in Counter(inspect_model(mf, flops=False).operators).elements()]


def _small(tensor: Any) -> bool:
    """A constant compared by value with the cases' inputs (min/max, axes, pads, scales), not weights."""
    import math

    from onnx import TensorProto

    return tensor.data_location != TensorProto.EXTERNAL and math.prod(tensor.dims) <= 64


def _init_type(elem: int) -> str | None:
    import numpy as np
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name
    except (KeyError, TypeError, ValueError):
        return None


def _reads(runtime: str, fmt: str) -> bool:
    info = runtime_info(runtime)
    return info is not None and (fmt in info.formats or fmt in info.converts)


def check_runtime(runtime: str, fmt: str, uses: list[OpUse]) -> RuntimeCheck:
    """The verdict of ``runtime`` on a ``fmt`` model whose nodes use operators as ``uses`` say."""
    if not _reads(runtime, fmt):
        info = runtime_info(runtime)
        formats = sorted(set(info.formats) | set(info.converts)) if info else []
        return RuntimeCheck(runtime, "unsupported", reason=f"{runtime} does not read {fmt} models "
                            f"(it reads {', '.join(formats) or 'nothing known'})")
    data: OpSupport | None = op_support(runtime, fmt)
    if data is None:
        return RuntimeCheck(runtime, "unknown", reason=f"no operator data for {fmt} models on {runtime}; "
                            f"load the model to find out (`edgekit profile MODEL --runtime {runtime}`)")
    rc = RuntimeCheck(runtime, "supported", data_version=data.version, evidence=data.evidence)
    types = list(dict.fromkeys(u.op for u in uses))
    for op in types:
        rc.ops[op] = _op_status(rc, data, [u for u in uses if u.op == op])
    rc.blocking = [op for op, st in rc.ops.items() if st in BLOCKING]
    rc.partial = [op for op, st in rc.ops.items() if st == "partial"]
    rc.untested = [op for op, st in rc.ops.items() if st not in BLOCKING | _SUPPORTED | {"partial"}]
    notes = [_cases_text(op, rc.cases[op]) for op in rc.partial]
    if rc.blocking:
        rc.verdict = "unsupported"
        rc.reason = "blocking operator(s): " + ", ".join(
            f"{op} ({'fails as ' + ', '.join(rc.cases[op]) if rc.cases.get(op) else rc.ops[op]})" for op in rc.blocking)
    elif rc.untested:
        rc.verdict = "unknown"
        notes.insert(0, f"no data for {', '.join(rc.untested)}: load the model to find out "
                        f"(`edgekit profile MODEL --runtime {runtime}`)")
        rc.reason = "; ".join(notes)
    else:
        rc.reason = "; ".join(notes) or \
            f"all {len(types)} operator types {'registered' if data.evidence == 'registered' else 'pass'}"
    return rc


_RANK = ["supported", "registered", "partial", "untested", "failing", "unsupported", "not_registered"]


def _op_status(rc: RuntimeCheck, data: OpSupport, uses: list[OpUse]) -> str:
    """The status of one operator for this model: the data's, for the element types the model uses; where that
    is ``partial``, ``supported`` unless a failing case matches how a node uses it (``failing``/``unsupported``:
    one matches exactly; ``partial``: some match but for input values, listed in ``rc.cases``)."""
    op = uses[0].op
    worst = max((data.status(op, u.dtype) for u in uses), key=lambda st: _RANK.index(st) if st in _RANK else 3)
    if worst != "partial":
        return worst
    same: dict[str, str] = {}
    similar: dict[str, str] = {}
    for u in uses:
        if data.status(op, u.dtype) == "partial":
            s, m, _ = data.failures_for(u)
            same.update(s)
            similar.update(m)
    similar = {c: w for c, w in similar.items() if c not in same}
    counted = [c for c, w in data.failures(op).items()
               if not w.startswith(("passed_const", "skipped")) and not c.endswith("_expanded")]
    rc.unrelated[op] = len([c for c in counted if c not in same and c not in similar])
    if same:
        rc.cases[op] = same
        return "unsupported" if any(w.startswith("unsupported") for w in same.values()) else "failing"
    if similar:
        rc.cases[op] = similar
        return "partial"
    return "supported"


def _cases_text(op: str, cases: Mapping[str, str], limit: int = 3) -> str:
    """``"1 case of Clip fails: test_clip_min_greater_than_max"``."""
    names = ", ".join(list(cases)[:limit]) + (", ..." if len(cases) > limit else "")
    n = len(cases)
    return f"{n} case{'s' if n > 1 else ''} of {op} fail{'s' if n == 1 else ''}: {names}"


def check_runtimes(model: str | os.PathLike[str] | ModelFile,
                   runtimes: list[str] | None = None) -> list[RuntimeCheck]:
    """One :class:`RuntimeCheck` per runtime with operator data in the catalog (or per name in ``runtimes``)."""
    fmt, uses = _operators(open_model(model))
    names = runtimes or [n for n, info in runtime_infos().items() if info.ops]
    return [check_runtime(rt, fmt, uses) for rt in names]


def _accelerator(profile: Any, unit: str) -> Any | None:
    """The emulation spec (operator list, partition rule) of ``unit``; None when none is available."""
    try:
        from edgekit.emulation.spec import accelerator_spec
    except ImportError:
        return None
    return accelerator_spec(profile, unit)


def check_device(model: str | os.PathLike[str] | ModelFile, device: Any) -> list[TargetCheck]:
    """One :class:`TargetCheck` per target of ``device`` (a profile name, path or DeviceProfile)."""
    from edgekit.devices import get_profile
    from edgekit.models.precision import model_precision

    mf = open_model(model)
    profile = get_profile(device)
    fmt, uses = _operators(mf)
    ops = [u.op for u in uses]
    mprec = model_precision(mf)
    out = []
    for t in profile.targets:
        tc = TargetCheck(t.index, f"{t.runtime}/{t.accelerator} {t.precision} on {t.unit}", "supported",
                         accelerated=profile.unit(t.unit).kind != "cpu")
        if not _reads(t.runtime, fmt):  # placement, profile and --emulate pass over it too
            tc.verdict, tc.runtime = OTHER_FORMAT, check_runtime(t.runtime, fmt, uses)
            tc.reasons.append(tc.runtime.reason + "; placement passes over this target")
            out.append(tc)
            continue
        unit = profile.unit(t.unit)
        allowed = t.constraints.precisions
        if (t.precision == "int8" and mprec != "int8") or (allowed and mprec not in allowed and mprec != "int8"):
            tc.reasons.append(f"the model is {mprec}; this target runs {list(allowed) or [t.precision]} only: "
                              f"quantize it first ({quantize_hint(mf.format)})")
        elif mprec == "int8" and "int8" not in unit.precisions:
            tc.reasons.append(f"the model is int8-quantized; unit {unit.name!r} computes {list(unit.precisions)}")
        refused = bool(tc.reasons)
        rc = check_runtime(t.runtime, fmt, uses)  # the same verdict as `edgekit check --runtime`
        tc.runtime = rc
        if rc.verdict == "unsupported":
            tc.blocking = rc.blocking
            tc.reasons.append(rc.reason)
            refused = True
        elif rc.verdict == "unknown" or rc.partial:
            tc.reasons.append(f"{t.runtime}: {rc.reason}")
        if refused:
            tc.verdict = "unsupported"
        else:
            tc.verdict = rc.verdict  # supported or unknown
            if unit.kind != "cpu":
                _partition(tc, _accelerator(profile, t.unit), fmt, ops)
        if t.constraints.ops and unit.kind != "cpu" and tc.verdict != "supported":
            tc.reasons.append(t.constraints.ops)
        out.append(tc)
    return out


#: operators every runtime folds away at load time: never a partition boundary
_FOLDED = frozenset({"Constant"})


def _partition(tc: TargetCheck, spec: Any, fmt: str, ops: list[str]) -> None:
    ops = [op for op in ops if op not in _FOLDED]
    if spec is None:
        tc.reasons.append("no operator list for this accelerator: only the runtime's support was checked")
        return
    first_bad = next((i for i, op in enumerate(ops) if not spec.supports(op, fmt)), None)
    if first_bad is None:
        tc.reasons.append(f"every operator is in {spec.lists_for(fmt)}")
        return
    if spec.partition == "prefix":  # the compiler stops at the first unsupported operator
        cpu = ops[first_bad:]
        rule = f"its compiler stops at the first unsupported operator ({ops[first_bad]}); the rest runs on the CPU"
    else:
        cpu = [op for op in ops if not spec.supports(op, fmt)]
        rule = "unsupported operators run on the CPU"
    tc.on_cpu = sorted(set(cpu), key=cpu.index)
    not_listed = sorted({op for op in ops if not spec.supports(op, fmt)})
    if len(cpu) == len(ops):
        tc.verdict = "unsupported"
    elif tc.verdict == "supported":
        tc.verdict = "partitioned"
    tc.reasons.append(f"{len(cpu)} of {len(ops)} operators on the CPU: not in {spec.lists_for(fmt)}: "
                      f"{', '.join(not_listed)}; {rule}")
