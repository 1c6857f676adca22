"""Per-operator times for a report: the runtime's :class:`~edgekit.runtime.OpProfile`, top operators first.

Runtimes time operators with their own profilers (ONNX Runtime's chrome trace, OpenVINO's
``PERF_COUNT``, OpenCV's ``getPerfProfile``); each adapter that can declares the
``op_profile`` capability and returns one :class:`~edgekit.runtime.OpProfile` shape, so
nothing here knows which runtime measured.

Example::

    >>> from edgekit.runtime import OpProfile, OpTiming
    >>> ops = OpProfile(runs=2, ops=(OpTiming("a", "Conv", 300.0), OpTiming("b", "Add", 100.0)))
    >>> summarize_ops(ops)[0]
    {'name': 'a', 'type': 'Conv', 'time_ms': 0.15, 'share': 0.75, 'kernel': None}
"""

from __future__ import annotations

from typing import Any

from edgekit.runtime import OpProfile

__all__ = ["TOP_OPS", "summarize_ops"]

TOP_OPS = 20  # operators kept per result, by time


def summarize_ops(profile: OpProfile, top: int = TOP_OPS) -> list[dict[str, Any]]:
    """The ``top`` operators of ``profile`` by time: average ms per run and share of the total."""
    total = sum(op.time_us for op in profile.ops) or 1.0
    rows = sorted(profile.ops, key=lambda op: -op.time_us)[:top]
    return [{"name": op.name, "type": op.type or "", "time_ms": op.time_us / 1000.0 / max(profile.runs, 1),
             "share": op.time_us / total, "kernel": op.kernel} for op in rows]
