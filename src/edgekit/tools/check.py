"""Will this model run there? Operator compatibility per runtime and per device target.

:func:`check_runtimes` checks every operator type of a model against each runtime's recorded
operator data (:mod:`edgekit.tools.opdata`: measured with ONNX's backend cases for ONNX, a
kernel-registration probe for LiteRT) and gives a verdict per runtime:

- ``supported``: every operator is recorded as supported;
- ``partial``: nothing blocks, but some operators fail in some of their cases (attribute
  variants, dtypes) or have no data; the model may run — try it;
- ``unsupported``: some operator is failing or unsupported there (``blocking`` names them),
  or the runtime cannot read the format;
- ``unknown``: there is no operator data for this runtime and format.

:func:`check_device` does this for each target of a device profile and adds what the target
requires: a format its runtime reads, the precision it runs (an int8-only NPU with a float
model is ``unsupported``), and the operators its accelerator runs, from the emulation specs
(``devices/emulation/*.toml``) — operators outside that list run on the CPU, so the target
is ``partitioned`` (or ``unsupported`` where the accelerator's compiler refuses partial graphs).

Example::

    for r in check_runtimes("det.onnx"): print(r.runtime, r.verdict, r.blocking)
    for t in check_device("det.onnx", "coral-edgetpu"): print(t.target, t.verdict, t.reasons)
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from edgekit.catalog import runtime_info, runtime_infos
from edgekit.models.formats import ModelFile, open_model, quantize_hint
from edgekit.tools.opdata import BLOCKING, OpSupport, op_support

__all__ = ["RuntimeCheck", "TargetCheck", "check_device", "check_runtimes", "model_operators"]

_SUPPORTED = frozenset({"supported", "registered"})


@dataclass
class RuntimeCheck:
    """One runtime's verdict on a model, with the operators behind it."""

    runtime: str
    verdict: str  # supported | partial | unsupported | unknown
    ops: dict[str, str] = field(default_factory=dict)  # op type -> status in the data
    blocking: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    reason: str = ""
    data_version: str | None = None  # runtime version the data was measured with
    evidence: str = ""

    def details(self, limit: int = 3) -> list[str]:
        """Why each blocking or partial operator is so (first non-passing cases and their reasons)."""
        data = op_support(self.runtime, "onnx") if self.evidence == "measured" else None
        lines = []
        for op in self.blocking + self.partial:
            fails = data.failures(op) if data else {}
            real = {c: w for c, w in fails.items() if not w.startswith(("passed_const", "skipped"))}
            for case, why in list(real.items())[:limit]:
                lines.append(f"{op}: {case}: {why}")
        return lines


@dataclass
class TargetCheck:
    """One device target's verdict: ``supported``, ``partitioned`` or ``unsupported``."""

    index: int
    target: str  # "litert/edgetpu int8 on edgetpu"
    verdict: str
    reasons: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)  # operators that stop the runtime
    on_cpu: list[str] = field(default_factory=list)  # operators the accelerator leaves to the CPU
    runtime: RuntimeCheck | None = None


def model_operators(model: str | os.PathLike[str] | ModelFile) -> tuple[str, list[str]]:
    """``(format, operator types in execution order)``; ONNX types outside the default domain are
    ``"domain:Op"``, subgraph operators included; TFLite uses builtin (or custom) names."""
    fmt, ops, _ = _operators(open_model(model))
    return fmt, ops


def _operators(mf: ModelFile) -> tuple[str, list[str], list[str | None]]:
    """Operators in execution order, with the element type of each one's first input (None: unknown)."""
    if mf.format == "onnx":
        import onnx

        from edgekit.models.model_io import element_type

        proto = onnx.load(str(mf.path), load_external_data=False)
        try:
            proto = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
        except Exception:  # noqa: BLE001 - types are a refinement; without them ops match on their name
            pass
        ops: list[str] = []
        types: list[str | None] = []
        graphs = [proto.graph]
        while graphs:
            g = graphs.pop(0)
            known = {vi.name: element_type(vi) for vi in [*g.input, *g.value_info, *g.output]}
            known.update({i.name: _init_type(i.data_type) for i in g.initializer})
            for node in g.node:
                dom = node.domain if node.domain not in ("", "ai.onnx") else ""
                ops.append(f"{dom}:{node.op_type}" if dom else node.op_type)
                types.append(known.get(node.input[0]) if node.input and node.input[0] else None)
                for a in node.attribute:
                    graphs.extend([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs))
        return "onnx", ops, types
    if mf.format == "tflite":
        from edgekit.models import tflite_schema

        names = tflite_schema.operator_names(mf.path.read_bytes())
        return "tflite", names, [None] * len(names)
    from edgekit.tools.inspect import inspect_model

    names = list(Counter(inspect_model(mf, flops=False).operators).elements())
    return mf.format, names, [None] * len(names)


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


def check_runtime(runtime: str, fmt: str, ops: list[str], dtypes: list[str | None] | None = None) -> RuntimeCheck:
    """The verdict of ``runtime`` on a ``fmt`` model made of ``ops`` (first-input types ``dtypes``)."""
    types = sorted(set(ops), key=ops.index)
    uses: dict[str, set[str | None]] = {}
    for op, t in zip(ops, dtypes or [None] * len(ops)):
        uses.setdefault(op, set()).add(t)
    if not _reads(runtime, fmt):
        info = runtime_info(runtime)
        formats = sorted(set(info.formats) | set(info.converts)) if info else []
        return RuntimeCheck(runtime, "unsupported", reason=f"{runtime} does not read {fmt} models "
                            f"(it reads {', '.join(formats) or 'nothing known'})")
    data: OpSupport | None = op_support(runtime, fmt)
    if data is None:
        return RuntimeCheck(runtime, "unknown", reason=f"no operator data for {fmt} models on {runtime}; "
                            "try loading the model (`edgekit profile MODEL --runtime ...`)")
    rank = ["supported", "registered", "partial", "untested", "failing", "unsupported", "not_registered"]
    status = {op: max((data.status(op, t) for t in uses[op]), key=lambda st: rank.index(st) if st in rank else 3)
              for op in types}
    rc = RuntimeCheck(runtime, "supported", ops=status, data_version=data.version, evidence=data.evidence)
    rc.blocking = [op for op, s in status.items() if s in BLOCKING]
    rc.partial = [op for op, s in status.items() if s == "partial"]
    rc.untested = [op for op, s in status.items() if s not in BLOCKING | _SUPPORTED | {"partial"}]
    if rc.blocking:
        rc.verdict = "unsupported"
        rc.reason = "blocking operator(s): " + ", ".join(f"{op} ({status[op]})" for op in rc.blocking)
    elif rc.partial or rc.untested:
        rc.verdict = "partial"
        parts = []
        if rc.partial:
            parts.append("fails some cases of " + ", ".join(rc.partial))
        if rc.untested:
            parts.append("no data for " + ", ".join(rc.untested))
        rc.reason = "; ".join(parts)
    else:
        rc.reason = f"all {len(types)} operator types {'registered' if data.evidence == 'registered' else 'pass'}"
    return rc


def check_runtimes(model: str | os.PathLike[str] | ModelFile,
                   runtimes: list[str] | None = None) -> list[RuntimeCheck]:
    """One :class:`RuntimeCheck` per runtime with operator data in the catalog (or per name in ``runtimes``)."""
    fmt, ops, dtypes = _operators(open_model(model))
    names = runtimes or [n for n, info in runtime_infos().items() if info.ops]
    return [check_runtime(rt, fmt, ops, dtypes) for rt in names]


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
    fmt, ops, dtypes = _operators(mf)
    mprec = model_precision(mf)
    out = []
    for t in profile.targets:
        tc = TargetCheck(t.index, f"{t.runtime}/{t.accelerator} {t.precision} on {t.unit}", "supported")
        unit = profile.unit(t.unit)
        allowed = t.constraints.precisions
        if (t.precision == "int8" and mprec != "int8") or (allowed and mprec not in allowed and mprec != "int8"):
            tc.reasons.append(f"the model is {mprec}; this target runs {list(allowed) or [t.precision]} only: "
                              f"quantize it first ({quantize_hint(mf.format)})")
        elif mprec == "int8" and "int8" not in unit.precisions:
            tc.reasons.append(f"the model is int8-quantized; unit {unit.name!r} computes {list(unit.precisions)}")
        refused = bool(tc.reasons)
        rc = check_runtime(t.runtime, fmt, ops, dtypes)
        tc.runtime = rc
        if rc.verdict == "unsupported":
            tc.blocking = rc.blocking
            tc.reasons.append(rc.reason)
            refused = True
        elif rc.verdict in ("partial", "unknown"):
            tc.reasons.append(f"{t.runtime}: {rc.reason}")
        if refused:
            tc.verdict = "unsupported"
        elif unit.kind != "cpu":
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
    tc.verdict = "partitioned" if len(cpu) < len(ops) else "unsupported"
    tc.reasons.append(f"{len(cpu)} of {len(ops)} operators on the CPU: not in {spec.lists_for(fmt)}: "
                      f"{', '.join(not_listed)}; {rule}")
