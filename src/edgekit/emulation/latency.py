"""The roofline latency model: predicted device latency from a profile's hardware figures.

For each operator on unit *u* computing in precision *p* (``devices/README.md``, *Latency model*)::

    t_op = max(FLOPs / (peak_gops[u][p] x compute_efficiency[p] x op_efficiency[class]),
               bytes / (bandwidth_gb_s[u] x memory_efficiency)) + dispatch_us    (layout_us: data movement)

FLOPs come from :mod:`edgekit.models.flops`; an op's class (:func:`op_class`: depthwise, pointwise, conv,
matmul) may run at a fraction of the precision's efficiency (``op_efficiency``, 1 when not given); bytes
are the op's activation inputs and outputs plus its weights, at *p*'s element size (int8: 1, fp16/bf16: 2, fp32: 4); an ``onchip`` unit leaves
out what stays on chip (activations: up to ``onchip_mb`` per op). Ops the compiler folds (``free_ops``) cost nothing; an activation
fused into the op that feeds it (``fused_ops``) costs its compute only. The fixed per-op costs of
parallel branches overlap: an accelerator partition pays them along its longest dependency chain
(:func:`fixed_chains`); a CPU partition pays every op's. Each accelerator partition adds ``invoke_us``; every tensor crossing a CPU<->accelerator boundary adds
``bytes / link_gb_s + sync_us``; weights that do not fit an ``onchip`` unit's memory stream over
the link on every inference, overlapped with compute (a partition takes ``max(compute, streaming)``
plus its fixed and transfer costs). CPU partitions use the profile's CPU unit and the ``cpu`` spec.

Example::

    est = estimate_plan(plan, flops, target_unit, cpu_unit, "int8", acc_spec, cpu_spec)
    print(est)                      # total, per partition, top ops
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edgekit.emulation.graph import Graph, Node, Plan, is_quantized
from edgekit.emulation.spec import LAYOUT_OPS, AcceleratorSpec, LatencyParams

if TYPE_CHECKING:
    from edgekit.device_schema import Unit

__all__ = ["Estimate", "OpEstimate", "PartitionEstimate", "calibration_notes", "chain_s", "crossings",
           "estimate_plan", "fixed_chains", "op_class"]

_ELEM = {"int8": 1, "fp16": 2, "bf16": 2, "fp32": 4}


@dataclass(frozen=True)
class OpEstimate:
    """Predicted time of one operator and why (``bound``: compute, memory, dispatch, fused or free)."""

    name: str
    type: str
    unit: str
    precision: str
    flops: int
    bytes: int
    time_s: float
    bound: str
    partition: int
    moved: int = 0  # bytes to and from the unit's memory (what stays on chip is not counted)
    op_class: str = ""  # "depthwise", "pointwise", "conv", "matmul", "layout" or "" (LatencyParams.op_efficiency)
    weight_bytes: int = 0  # of ``bytes``, the constant inputs (weights); the rest are activations


@dataclass(frozen=True)
class PartitionEstimate:
    """One partition: its unit, ops, compute time and the fixed and transfer costs it adds."""

    index: int
    unit: str
    on_accelerator: bool
    ops: int
    compute_s: float
    invoke_s: float
    transfer_s: float
    weight_stream_s: float

    @property
    def time_s(self) -> float:
        """Weight streaming overlaps compute (the parameter DMA is double-buffered); the rest adds up."""
        return max(self.compute_s, self.weight_stream_s) + self.invoke_s + self.transfer_s


@dataclass(frozen=True)
class Estimate:
    """Predicted latency of one inference on the device: total, per partition, per op, with assumptions."""

    device: str
    target: str
    precision: str
    total_s: float
    partitions: tuple[PartitionEstimate, ...]
    ops: tuple[OpEstimate, ...]
    transfer_s: float
    notes: tuple[str, ...] = ()
    parameters: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return self.total_s * 1e3

    def top_ops(self, n: int = 10) -> list[OpEstimate]:
        """The ``n`` slowest operators."""
        return sorted(self.ops, key=lambda o: -o.time_s)[:n]

    def __str__(self) -> str:
        lines = [f"predicted latency on {self.device} ({self.target}): {self.total_ms:.3f} ms"]
        for p in self.partitions:
            where = f"{p.unit} (accelerator)" if p.on_accelerator else f"{p.unit} (cpu fallback)"
            lines.append(f"  partition {p.index}: {where:<28} {p.ops:>4} ops  {p.time_s * 1e3:9.3f} ms"
                         f"  (compute {p.compute_s * 1e3:.3f}, invoke {p.invoke_s * 1e3:.3f}, transfers "
                         f"{p.transfer_s * 1e3:.3f}, weight streaming {p.weight_stream_s * 1e3:.3f})")
        lines.append("  slowest ops:")
        for o in self.top_ops(5):
            lines.append(f"    {o.name:<32} {o.type:<18} {o.unit:<8} {o.precision:<5} {o.time_s * 1e6:9.1f} us  "
                         f"({o.bound})")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _elem(g: Graph, name: str, prec: str) -> int:
    t = g.tensor(name)
    if t.dtype is not None and t.dtype.kind not in "fc" and t.dtype.itemsize > 1:
        return t.dtype.itemsize  # index and bias tensors keep their own width
    return _ELEM[prec]


def _node_precision(g: Graph, node: Node, unit: Unit, float_prec: str) -> str:
    if is_quantized(g, node) and "int8" in unit.peak_gops:
        return "int8"
    return float_prec


_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "CONV_2D": 1}


def op_class(g: Graph, node: Node) -> str:
    """The operator's class for :attr:`LatencyParams.op_efficiency`: ``depthwise`` (one filter per channel, no
    reduction over channels), ``pointwise`` (1x1 convolution), ``conv`` (any other convolution), ``matmul``; or
    ``layout`` (data movement, :data:`~edgekit.emulation.spec.LAYOUT_OPS`: costs ``layout_us``); else ``""``."""
    if node.op in LAYOUT_OPS:
        return "layout"
    if node.op == "DEPTHWISE_CONV_2D":
        return "depthwise"
    if node.op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "FULLY_CONNECTED", "BATCH_MATMUL"):
        return "matmul"
    if node.op not in _CONV_WEIGHT or len(node.inputs) <= _CONV_WEIGHT[node.op]:
        return ""
    w = g.tensor(node.inputs[_CONV_WEIGHT[node.op]]).shape
    x = g.tensor(node.inputs[0]).shape
    if not w or len(w) < 3:
        return "conv"
    if g.fmt == "onnx" and w[1] == 1 and x and len(x) >= 2 and x[1] > 1:
        return "depthwise"
    spatial = w[2:] if g.fmt == "onnx" else w[1:-1]
    return "pointwise" if all(d == 1 for d in spatial) else "conv"


def _fused(g: Graph, plan: Plan, node: Node, params: LatencyParams) -> bool:
    if node.op not in params.fused_ops:
        return False
    src = next((t for t in node.inputs if t and not g.is_const(t)), None)
    if src is None:
        return False
    p = g.producer.get(src)
    if p is None or plan.part_of[p] != plan.part_of[node.index]:
        return False
    prod = g.nodes[p]
    return prod.op not in params.free_ops and len(g.consumers.get(src, [])) == 1 and prod.op not in params.fused_ops


def estimate_plan(plan: Plan, flops: Sequence[int | None], target_unit: Unit, cpu_unit: Unit, precision: str,
                  spec: AcceleratorSpec, cpu_spec: AcceleratorSpec, *, device: str = "", target: str = "") -> Estimate:
    """Predict one inference of ``plan``: accelerator nodes on ``target_unit`` at ``precision``, the rest on ``cpu_unit``."""
    g = plan.graph
    same_unit = target_unit.name == cpu_unit.name
    cpu_float = "fp32" if "fp32" in cpu_unit.peak_gops else next(iter(cpu_unit.peak_gops))
    ops: list[OpEstimate] = []
    compute = [0.0] * len(plan.partitions)
    weights_on_acc = 0
    notes: list[str] = []
    uncounted: set[str] = set()
    for node in g.nodes:
        on_acc = plan.on_accelerator[node.index]
        unit, params = (target_unit, spec.latency) if on_acc else (cpu_unit, cpu_spec.latency)
        prec = _node_precision(g, node, unit, precision if on_acc else cpu_float)
        if prec not in unit.peak_gops:
            prec = next(iter(unit.peak_gops))
        f = flops[node.index] if node.index < len(flops) else None
        if f is None:
            uncounted.add(node.op)
            f = 0
        act = sum(g.tensor(t).elements * _elem(g, t, prec) for t in (*node.inputs, *node.outputs)
                  if t and not g.is_const(t))
        wts = sum(g.tensor(t).elements * _elem(g, t, prec) for t in node.inputs if t and g.is_const(t))
        moved, fixed = 0.0, 0.0  # fixed: paid along the partition's chain (fixed_chains), not per op
        cls = op_class(g, node)
        if node.op in params.free_ops or node.op == "Constant":
            t_op, bound = 0.0, "free"
        else:
            if on_acc and not same_unit:
                weights_on_acc += wts
            t_compute = f / (unit.peak_gops[prec] * 1e9 * params.efficiency(prec, cls))
            if _fused(g, plan, node, params):
                t_op, bound = t_compute, "fused"
            else:
                spills = params.activations == "dram" or act > params.onchip_mb * 1e6
                moved = (act if spills else 0) + (wts if params.weights == "dram" else 0)
                t_mem = moved / (unit.bandwidth_gb_s * 1e9 * params.memory_efficiency)
                fixed = params.fixed_us(cls) * 1e-6
                t_op = max(t_compute, t_mem) + fixed
                bound = "dispatch" if fixed > max(t_compute, t_mem) else (
                    "compute" if t_compute >= t_mem else "memory")
        k = plan.part_of[node.index]
        compute[k] += t_op - fixed
        ops.append(OpEstimate(node.name, node.op, unit.name, prec, int(f), int(act + wts), t_op, bound, k,
                              int(moved) if bound not in ("free", "fused") else 0, cls, int(wts)))
    if uncounted:
        notes.append(f"no FLOP count for {sorted(uncounted)}: their compute time is taken as zero")
    for k, chains in enumerate(fixed_chains(plan, ops, same_unit)):
        compute[k] += chain_s(chains, spec.latency if plan.partitions[k].on_accelerator else cpu_spec.latency)

    link = (spec.latency.link_gb_s or target_unit.bandwidth_gb_s * spec.latency.memory_efficiency) * 1e9
    transfer = [0.0] * len(plan.partitions)
    if not same_unit:
        for k, nbytes in crossings(plan, target_unit, precision, cpu_float):
            transfer[k] += nbytes / link + spec.latency.sync_us * 1e-6
    invoke = [spec.latency.invoke_us * 1e-6 if p.on_accelerator and not same_unit else 0.0 for p in plan.partitions]
    stream = [0.0] * len(plan.partitions)
    if spec.latency.weights == "onchip" and not same_unit and target_unit.memory_gb:
        overflow = max(0.0, weights_on_acc - target_unit.memory_gb * 1e9)
        acc_parts = [p.index for p in plan.partitions if p.on_accelerator]
        if overflow and acc_parts:
            per = overflow / (link * max(1, len(acc_parts)))
            for k in acc_parts:
                stream[k] = per
            notes.append(f"{weights_on_acc / 1e6:.1f} MB of weights on {target_unit.name}, whose memory holds "
                         f"{target_unit.memory_gb * 1e3:g} MB: {overflow / 1e6:.1f} MB stream over the link on every "
                         "inference")
    parts = tuple(PartitionEstimate(
        p.index, target_unit.name if p.on_accelerator else cpu_unit.name, p.on_accelerator,
        sum(1 for i in p.nodes if g.nodes[i].op != "Constant"), compute[p.index], invoke[p.index],
        transfer[p.index], stream[p.index]) for p in plan.partitions)
    notes.extend(calibration_notes(spec, target_unit.name))
    fitted = {"accelerator": _params(spec), "cpu": _params(cpu_spec)}
    return Estimate(device=device, target=target, precision=precision,
                    total_s=float(np.sum([p.time_s for p in parts])), partitions=parts, ops=tuple(ops),
                    transfer_s=sum(transfer), notes=tuple(notes), parameters=fitted)


def fixed_chains(plan: Plan, ops: Sequence[OpEstimate], same_unit: bool) -> list[list[tuple[int, int]]]:
    """Per partition, the ``(compute ops, layout ops)`` whose fixed costs it pays: one pair, or several to choose
    the most expensive of once the per-op costs are known (:func:`chain_s`).

    An accelerator issues an op's setup while independent ops compute, so the fixed costs of parallel branches
    (an Inception block's four, a residual shortcut) overlap: an accelerator partition pays them along its
    longest dependency chain, while arithmetic and memory traffic share the units and add up over every op.
    Which chain is longest depends on ``dispatch_us`` against ``layout_us``, so every chain no other beats on
    both counts is kept. A CPU partition, or a target that is the CPU, runs its ops one after another and pays
    every one. ``ops`` are :func:`estimate_plan`'s, one per graph node in order.
    """
    g = plan.graph
    best: dict[int, list[tuple[int, int]]] = {}  # node -> the undominated chains ending at it, in its partition
    totals: list[list[tuple[int, int]]] = [[(0, 0)] for _ in plan.partitions]
    for node, op in zip(g.nodes, ops, strict=True):
        k = plan.part_of[node.index]
        paid = op.bound not in ("free", "fused")
        dc, dl = int(paid and op.op_class != "layout"), int(paid and op.op_class == "layout")
        if not (plan.partitions[k].on_accelerator and not same_unit):
            (c, lay), = totals[k]
            totals[k] = [(c + dc, lay + dl)]
            continue
        prev = [ch for t in node.inputs if t and (p := g.producer.get(t)) is not None and p in best
                and plan.part_of[p] == k for ch in best[p]]
        best[node.index] = _undominated([(c + dc, lay + dl) for c, lay in prev or [(0, 0)]])
        totals[k] = _undominated(totals[k] + best[node.index])
    return totals


def _undominated(chains: list[tuple[int, int]]) -> list[tuple[int, int]]:
    keep = sorted(set(chains), reverse=True)
    out: list[tuple[int, int]] = []
    for c, lay in keep:  # by compute ops, descending: a chain survives when it has more layout ops than all before
        if not out or lay > max(x[1] for x in out):
            out.append((c, lay))
    return out


def chain_s(chains: Sequence[tuple[int, int]], params: LatencyParams) -> float:
    """The fixed costs (s) a partition pays: its most expensive chain (:func:`fixed_chains`) under ``params``."""
    return max(c * params.dispatch_us + lay * params.fixed_us("layout") for c, lay in chains) * 1e-6


def crossings(plan: Plan, target_unit: Unit, precision: str, cpu_float: str) -> list[tuple[int, int]]:
    """``(accelerator partition, bytes)`` of every tensor crossing a CPU<->accelerator boundary (each pays sync)."""
    g = plan.graph
    out: list[tuple[int, int]] = []
    seen: set[tuple[str, int]] = set()
    for t in g.tensors.values():
        if t.const:
            continue
        src = g.producer.get(t.name)
        src_part = plan.part_of[src] if src is not None else -1  # -1: the host (graph input)
        sinks = {plan.part_of[c] for c in g.consumers.get(t.name, [])}
        if t.name in g.outputs:
            sinks.add(-1)
        for dst in sinks - {src_part}:
            acc = [p for p in (src_part, dst) if p >= 0 and plan.partitions[p].on_accelerator]
            if not acc or (t.name, dst) in seen:
                continue
            seen.add((t.name, dst))
            node = g.nodes[src] if src is not None else g.nodes[g.consumers[t.name][0]]
            width = 1 if is_quantized(g, node) and "int8" in target_unit.peak_gops else _elem(
                g, t.name, precision if plan.on_accelerator[node.index] else cpu_float)
            out.append((acc[0], t.elements * width))
    return out


def calibration_notes(spec: AcceleratorSpec, unit: str) -> list[str]:
    """Which latency parameters of ``spec`` were fitted, to what data, with what error; or that they are hand-set."""
    cal = spec.calibration
    if not cal:
        return [f"{unit}'s latency parameters ({spec.name}) are hand-set estimates, not calibrated to measurements "
                "(`edgekit devices calibrate` fits them)"]
    fitted = ", ".join(str(p) for p in cal.get("fitted", [])) or "none"
    err = cal.get("loo_median_error", cal.get("fit_median_error"))
    how = "leave-one-network-out" if "loo_median_error" in cal else "in-sample"
    worst = cal.get("loo_worst_error", cal.get("fit_worst_error"))
    return [f"{unit}'s latency parameters {fitted} were fitted ({cal.get('date', '?')}, edgekit "
            f"{cal.get('edgekit', '?')}) to {cal.get('figures', '?')} figures from {cal.get('data', '?')}"
            + (f"; {how} |error| median {float(err) * 100:.0f}%, worst {float(worst) * 100:.0f}%"
               if err is not None and worst is not None else "")]


def _params(spec: AcceleratorSpec) -> dict[str, object]:
    lat = spec.latency
    return {"spec": spec.name, "compute_efficiency": lat.compute_efficiency,
            "compute_efficiency_by_precision": dict(lat.compute_efficiency_by_precision),
            "op_efficiency": dict(lat.op_efficiency),
            "calibration": dict(spec.calibration),
            "memory_efficiency": lat.memory_efficiency, "dispatch_us": lat.dispatch_us, "layout_us": lat.layout_us,
            "invoke_us": lat.invoke_us,
            "sync_us": lat.sync_us, "link_gb_s": lat.link_gb_s, "weights": lat.weights,
            "activations": lat.activations, "onchip_mb": lat.onchip_mb}
