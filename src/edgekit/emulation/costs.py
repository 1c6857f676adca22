"""A plan's work on its accelerator, kept apart from the latency parameters, to re-price it fast.

Calibration (:mod:`edgekit.emulation.calibrate`) evaluates hundreds of parameter sets per network:
:func:`cost_table` keeps what the parameters do not change (each accelerator op's FLOPs, its activation
and weight bytes, its class, its partition; the fixed-cost chain of each partition; the tensors crossing
to the CPU; the CPU partitions' time) and :meth:`CostTable.total_s` prices it with any
:class:`~edgekit.emulation.spec.LatencyParams`: compute efficiency per precision and op class, memory
efficiency, the activation bytes an op keeps on chip (``onchip_mb``), dispatch, layout, invoke and sync
costs, the link. With the spec's own parameters it equals :func:`~edgekit.emulation.latency.estimate_plan`.
:class:`StackedCosts` prices many tables in one pass (a fit's every sample at once).

Example::

    est = estimate_plan(plan, flops, unit, cpu_unit, "int8", spec, cpu_spec)
    table = cost_table(plan, est, unit, cpu_unit, spec)
    table.total_s(spec.latency) == est.total_s          # up to rounding
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.emulation.latency import Estimate, crossings, fixed_chains

if TYPE_CHECKING:
    from edgekit.device_schema import Unit
    from edgekit.emulation.graph import Plan
    from edgekit.emulation.spec import AcceleratorSpec, LatencyParams

__all__ = ["CostTable", "StackedCosts", "cost_table"]


@dataclass(frozen=True)
class CostTable:
    """The work of one plan on its accelerator (see the module docstring)."""

    peak_gops: np.ndarray  # per accelerator op: the unit's datasheet peak at the op's precision
    precision: tuple[str, ...]  # per accelerator op
    flops: np.ndarray
    act_bytes: np.ndarray  # activations in and out of each op (on chip when they fit onchip_mb)
    weight_moved: np.ndarray  # weight bytes each op reads from memory (0 where weights stay on chip)
    fused: np.ndarray  # bool: compute only, no fixed cost
    op_class: tuple[str, ...]  # per accelerator op (LatencyParams.op_efficiency; "layout" pays layout_us)
    part: np.ndarray  # compact accelerator-partition index of each op
    n_parts: int  # accelerator partitions
    chain_part: np.ndarray  # the fixed-cost chains (latency.fixed_chains): each one's compact partition,
    chain_ops: np.ndarray  # ... its compute ops
    chain_layout: np.ndarray  # ... and its layout ops; a partition pays its most expensive chain
    invokes: int  # partitions that pay invoke_us (none when the target is the CPU itself)
    crossing_bytes: float  # CPU<->accelerator tensor bytes over the link
    crossings: int  # each pays sync_us
    stream_bytes: float  # weights streamed per accelerator partition on every inference
    cpu_s: float  # CPU partitions (CPU spec, not calibrated here)
    bandwidth_gb_s: float

    @functools.cached_property
    def _stacked(self) -> StackedCosts:
        return StackedCosts([self])

    def total_s(self, p: LatencyParams) -> float:
        """Predicted latency (s) with latency parameters ``p`` for the accelerator."""
        return float(self._stacked.total_s(p)[0])


def cost_table(plan: Plan, est: Estimate, target_unit: Unit, cpu_unit: Unit, spec: AcceleratorSpec) -> CostTable:
    """The :class:`CostTable` of ``plan`` from its estimate ``est`` (made with ``spec``)."""
    same_unit = target_unit.name == cpu_unit.name
    acc_parts = [p.index for p in plan.partitions if p.on_accelerator] if not same_unit else [
        p.index for p in plan.partitions]
    compact = {k: i for i, k in enumerate(acc_parts)}
    acc_ops = [o for o in est.ops if o.partition in compact and o.bound != "free"]
    chains = [(compact[k], c, lay) for k, ch in enumerate(fixed_chains(plan, est.ops, same_unit)) if k in compact
              for c, lay in ch]
    cpu_s = sum(p.time_s for p in est.partitions if p.index not in compact)
    cpu_float = "fp32" if "fp32" in cpu_unit.peak_gops else next(iter(cpu_unit.peak_gops))
    cross = crossings(plan, target_unit, est.precision, cpu_float) if not same_unit else []
    lat = spec.latency
    link = (lat.link_gb_s or target_unit.bandwidth_gb_s * lat.memory_efficiency) * 1e9
    streams = [p.weight_stream_s for p in est.partitions if p.index in compact]
    return CostTable(
        peak_gops=np.array([target_unit.peak_gops[o.precision] for o in acc_ops], dtype=float),
        precision=tuple(o.precision for o in acc_ops), flops=np.array([o.flops for o in acc_ops], dtype=float),
        act_bytes=np.array([o.bytes - o.weight_bytes for o in acc_ops], dtype=float),
        weight_moved=np.array([o.weight_bytes if lat.weights == "dram" else 0 for o in acc_ops], dtype=float),
        fused=np.array([o.bound == "fused" for o in acc_ops], dtype=bool), op_class=tuple(o.op_class for o in acc_ops),
        part=np.array([compact[o.partition] for o in acc_ops], dtype=int), n_parts=len(acc_parts),
        chain_part=np.array([k for k, _, _ in chains], dtype=int),
        chain_ops=np.array([c for _, c, _ in chains], dtype=float),
        chain_layout=np.array([lay for _, _, lay in chains], dtype=float),
        invokes=0 if same_unit else len(acc_parts), crossing_bytes=float(sum(b for _, b in cross)),
        crossings=len(cross), stream_bytes=(max(streams) if streams else 0.0) * link, cpu_s=cpu_s,
        bandwidth_gb_s=target_unit.bandwidth_gb_s)


def _cat(arrays: Sequence[np.ndarray], dtype: Any = float) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if len(arrays) else np.zeros(0, dtype)


class StackedCosts:
    """Several cost tables priced at once: :meth:`total_s` gives each table's :meth:`CostTable.total_s` from one pass
    of array arithmetic over all their ops (a fit prices every sample hundreds of times).

    >>> stacked = StackedCosts([table_a, table_b])            # doctest: +SKIP
    >>> stacked.total_s(spec.latency)                          # doctest: +SKIP
    array([0.00123, 0.00456])
    """

    def __init__(self, tables: Sequence[CostTable]) -> None:
        self.n = len(tables)
        part_off = np.cumsum([0] + [t.n_parts for t in tables])
        self.n_parts = int(part_off[-1])
        ops = [pair for t in tables for pair in zip(t.precision, t.op_class, strict=True)]
        #: the distinct (precision, op class) pairs, and each op's index into them: efficiencies are looked up per pair
        self.pairs = tuple(sorted(set(ops)))
        index = {pair: i for i, pair in enumerate(self.pairs)}
        self.pair_of = np.array([index[pair] for pair in ops], dtype=int)
        self.peak = _cat([t.peak_gops for t in tables])
        self.flops = _cat([t.flops for t in tables])
        self.act = _cat([t.act_bytes for t in tables])
        self.weight_moved = _cat([t.weight_moved for t in tables])
        self.fused = _cat([t.fused for t in tables], bool)
        self.op_bw = _cat([np.full(len(t.flops), t.bandwidth_gb_s) for t in tables])
        self.part = _cat([t.part + part_off[i] for i, t in enumerate(tables)], int)
        self.chain_part = _cat([t.chain_part + part_off[i] for i, t in enumerate(tables)], int)
        self.chain_ops = _cat([t.chain_ops for t in tables])
        self.chain_layout = _cat([t.chain_layout for t in tables])
        self.part_of_table = _cat([np.full(t.n_parts, i) for i, t in enumerate(tables)], int)
        self.stream = _cat([np.full(t.n_parts, t.stream_bytes) for t in tables])
        self.bw = np.array([t.bandwidth_gb_s for t in tables], dtype=float)
        self.invokes = np.array([t.invokes for t in tables], dtype=float)
        self.crossing_bytes = np.array([t.crossing_bytes for t in tables], dtype=float)
        self.crossings = np.array([t.crossings for t in tables], dtype=float)
        self.cpu_s = np.array([t.cpu_s for t in tables], dtype=float)

    def total_s(self, p: LatencyParams) -> np.ndarray:
        """Each table's predicted latency (s) with latency parameters ``p``."""
        eff = np.array([p.efficiency(q, c) for q, c in self.pairs], dtype=float)[self.pair_of] if self.pairs else (
            np.zeros(0))
        tc = self.flops / (self.peak * 1e9 * eff) if len(eff) else np.zeros(0)
        spill = self.act > p.onchip_mb * 1e6 if p.activations == "onchip" else np.ones(len(tc), dtype=bool)
        tm = (np.where(spill, self.act, 0.0) + self.weight_moved) / (self.op_bw * 1e9 * p.memory_efficiency)
        t = np.where(self.fused, tc, np.maximum(tc, tm))
        fixed = np.zeros(self.n_parts)
        np.maximum.at(fixed, self.chain_part, (self.chain_ops * p.dispatch_us + self.chain_layout
                                               * p.fixed_us("layout")) * 1e-6)
        comp = np.bincount(self.part, weights=t, minlength=self.n_parts) + fixed
        link = (p.link_gb_s * np.ones(self.n) if p.link_gb_s else self.bw * p.memory_efficiency) * 1e9
        acc = np.bincount(self.part_of_table, weights=np.maximum(comp, self.stream / link[self.part_of_table]),
                          minlength=self.n)
        return (acc + self.invokes * p.invoke_us * 1e-6 + self.crossing_bytes / link + self.crossings * p.sync_us
                * 1e-6 + self.cpu_s)
