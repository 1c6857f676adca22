"""Per-operator times from the runtimes' own profilers, in one shape.

* ONNX Runtime: ``enable_profiling`` writes a chrome-trace JSON; each ``cat == "Node"`` event
  named ``<node>_kernel_time`` is one operator execution (``dur`` in µs, ``args.op_name`` the
  type). Events before the ``skip_runs``-th ``model_run`` are dropped (cold runs).
* OpenVINO (``perf_counts=True``) and OpenCV DNN: the adapter session's ``op_profile()``
  gives the last run's ``{name, type, real_time_us[, exec_type, status]}``; the worker sums it
  over runs.
* LiteRT exposes no per-op timing in Python: the report says "not available".

Example::

    ops = parse_ort_trace("ort_2026-01-01.json", skip_runs=2)
    ops[0]    # {'name': 'dw1', 'type': 'Conv', 'time_ms': 0.05, 'share': 0.31, 'kernel': 'CPUExecutionProvider'}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["TOP_OPS", "parse_ort_trace", "summarize_ops"]

TOP_OPS = 20  # operators kept per result, by time


def summarize_ops(entries: list[dict[str, Any]], runs: int, top: int = TOP_OPS) -> list[dict[str, Any]]:
    """``entries`` with total ``time_us`` over ``runs`` -> the ``top`` by average time, with their share.

    >>> ops = [{"name": "a", "type": "Conv", "time_us": 300.0}, {"name": "b", "type": "Add", "time_us": 100.0}]
    >>> summarize_ops(ops, runs=2)[0]
    {'name': 'a', 'type': 'Conv', 'time_ms': 0.15, 'share': 0.75, 'kernel': None}
    """
    total = sum(e["time_us"] for e in entries) or 1.0
    rows = sorted(entries, key=lambda e: -e["time_us"])[:top]
    return [{"name": e["name"], "type": e.get("type") or "", "time_ms": e["time_us"] / 1000.0 / max(runs, 1),
             "share": e["time_us"] / total, "kernel": e.get("kernel")} for e in rows]


def parse_ort_trace(path: str | Path, skip_runs: int = 0, top: int = TOP_OPS) -> list[dict[str, Any]]:
    """Top operators of an ONNX Runtime profile (chrome-trace JSON), averaged per run."""
    events = json.loads(Path(path).read_text())
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[skip_runs] if len(runs) > skip_runs else 0
    kept = max(len(runs) - skip_runs, 1)
    totals: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time") or e.get("ts", 0) < start:
            continue
        name = e["name"][: -len("_kernel_time")]
        args = e.get("args") or {}
        entry = totals.setdefault(name, {"name": name, "type": args.get("op_name", ""),
                                         "kernel": args.get("provider"), "time_us": 0.0})
        entry["time_us"] += float(e.get("dur", 0))
    try:
        Path(path).unlink()
    except OSError:
        pass
    return summarize_ops(list(totals.values()), kept, top)
