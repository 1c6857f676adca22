"""Merge the per-device reports of a fleet run into one :class:`ProfileReport` (schema 1.2).

The merged report has the same schema as a local one, with three things added per row:

* ``device``, ``node``, ``host``: where the row ran (the node's ``edgekit/device`` label, its
  Ray node id, its host name); the row's ``id`` is prefixed with the device,
  ``raspberry-pi-5:onnxruntime``, so ids stay unique across devices;
* parity stays within a device: each node compared its rows with its own float32 reference, and
  ``parity.reference`` names that row with the same prefix. The top-level ``reference`` is
  null (there is one reference per device, listed in ``provenance.fleet.devices[]``);
* a device whose job did not run is one row of status ``unavailable`` (no node carries its
  label), ``failed`` (the job raised, or its node died and the retry found no other) or
  ``interrupted`` (Ctrl-C before it finished), with the reason in ``error``.

``provenance`` is this machine's (``edgekit``, ``python``, ``host``: where the report was merged),
``cpu`` lists each device's CPU, ``method`` is the devices' (the same options everywhere), and
``fleet`` holds the address and one entry per device: status, node, host, edgekit, python, cpu,
runtime library versions, reference, attempts, seconds, reason and, when its job raised, the
class of what it raised (``error_type``, e.g. ``InputError``).

Example::

    outcomes = profile_on_fleet("det.onnx", "10.0.0.5:6379", ["all"], duration=2)
    report = merge_reports(outcomes, "10.0.0.5:6379", model_names=["det.onnx"])
    print([(r.device, r.runtime, r.status) for r in report.results])
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import socket
import sys
from collections.abc import Sequence
from typing import Any

from edgekit.fleet.jobs import Outcome
from edgekit.profiling.results import ModelInfo, ProfileReport, RuntimeResult

__all__ = ["fleet_row_id", "merge_reports"]

#: an outcome's status -> the status of the row that stands for a device whose job did not run
_ROW_STATUS = {"unavailable": "unavailable", "failed": "failed", "cancelled": "interrupted"}


def fleet_row_id(device: str, row_id: str) -> str:
    """A row id made unique across devices.

    >>> fleet_row_id("raspberry-pi-5", "onnxruntime")
    'raspberry-pi-5:onnxruntime'
    """
    return f"{device}:{row_id}"


def _device_rows(o: Outcome, report: ProfileReport) -> list[RuntimeResult]:
    rows = []
    for r in report.results:
        parity = r.parity
        if parity is not None:
            parity = dataclasses.replace(parity, reference=fleet_row_id(o.device, parity.reference))
        rows.append(dataclasses.replace(r, id=fleet_row_id(o.device, r.id), parity=parity, device=o.device,
                                        node=o.node, host=o.host))
    return rows


def _missing_row(o: Outcome, runtimes: str, model: str, fmt: str) -> RuntimeResult:
    reason = o.reason or o.status
    if o.failures and o.status != "failed":
        reason += f" ({'; '.join(o.failures)})"
    return RuntimeResult(id=fleet_row_id(o.device, runtimes), runtime=runtimes, model=model, format=fmt,
                         status=_ROW_STATUS.get(o.status, "failed"), error=reason,  # type: ignore[arg-type]
                         error_type=f"Fleet{o.status.capitalize()}", device=o.device, node=o.node, host=o.host)


def _device_entry(o: Outcome, report: ProfileReport | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"device": o.device, "status": o.status, "node": o.node, "host": o.host,
                             "attempts": o.attempts, "seconds": round(o.seconds, 3)}
    if report is not None:
        prov = report.provenance
        entry.update({"edgekit": prov.get("edgekit"), "python": prov.get("python"), "cpu": prov.get("cpu"),
                      "cpu_count": prov.get("cpu_count"), "platform": prov.get("platform"),
                      "libraries": prov.get("libraries") or {},
                      "runtimes": {r.runtime: r.version for r in report.results if r.version},
                      "reference": fleet_row_id(o.device, report.reference) if report.reference else None})
        if report.reference_run is not None:
            entry["reference_run"] = {"id": report.reference_run.id, "runtime": report.reference_run.runtime,
                                      "version": report.reference_run.version}
    if o.reason:
        entry["reason"] = o.reason
    if o.error is not None:
        entry["error_type"] = type(o.error).__name__
    if o.failures:
        entry["failures"] = list(o.failures)
    return entry


def _models(reports: list[ProfileReport]) -> list[ModelInfo]:
    """Each model file once (the devices measured the same files; inputs may differ only by device)."""
    seen: dict[tuple[str, str, str], ModelInfo] = {}
    for report in reports:
        for m in report.models:
            key = (m.name, m.sha256, repr(m.inputs))
            seen.setdefault(key, m)
    return list(seen.values())


def merge_reports(outcomes: Sequence[Outcome], address: str, *, model_names: Sequence[str] = (),
                  runtimes: Sequence[str] | None = None) -> ProfileReport:
    """One report of every device's rows (see the module docstring); ``outcomes`` of :func:`profile_on_fleet`.

    ``model_names`` (the files shipped) and ``runtimes`` (those asked for, None: all) name what a
    device that did not run would have measured, in its ``unavailable``/``failed`` row.

    >>> merge_reports([Outcome("hailo-8", "unavailable", reason="no node")], "h:6379",
    ...               model_names=["m.onnx"]).results[0].id
    'hailo-8:*'
    """
    from edgekit._version import __version__

    ran = [(o, o.value) for o in outcomes if o.ok and isinstance(o.value, ProfileReport)]
    names = list(model_names) or sorted({m.name for _, r in ran for m in r.models})
    model = ", ".join(names) or "-"
    fmt = ", ".join(dict.fromkeys(n.rpartition(".")[2] for n in names)) or "-"
    what = ",".join(runtimes) if runtimes else "*"
    results: list[RuntimeResult] = []
    for o in outcomes:
        report = o.value if o.ok and isinstance(o.value, ProfileReport) else None
        results.extend(_device_rows(o, report) if report is not None else [_missing_row(o, what, model, fmt)])
    first = ran[0][1].provenance if ran else {}
    prov: dict[str, Any] = {
        "edgekit": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": "; ".join(f"{o.device}: {r.provenance.get('cpu')}" for o, r in ran) or None,
        "libraries": {k: v for _, r in ran for k, v in (r.provenance.get("libraries") or {}).items()},
        "device": None, "threads": first.get("threads"), "precision": first.get("precision"),
        "seed": first.get("seed"), "command": " ".join(["edgekit", *sys.argv[1:]]) if sys.argv else "",
        "method": {**(first.get("method") or {}),
                   "fleet": "each device profiled on its own node (isolated workers, adaptive stopping, parity "
                            "against that device's own float32 reference); devices in parallel"},
        "fleet": {"address": address, "devices": [_device_entry(o, o.value if o.ok else None) for o in outcomes]},
    }
    return ProfileReport(provenance=prov, models=_models([r for _, r in ran]), results=results, reference=None,
                         reference_run=None, partial=any(o.status == "cancelled" or (o.ok and o.value.partial)
                                                         for o in outcomes),
                         created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
