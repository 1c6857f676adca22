"""Tune a model on devices of a fleet: one deployment plan per device, ``plans/<device>.toml``.

Each device runs :func:`edgekit.tuning.tune` on its own node with ``device=`` its profile's name
(the node's ``edgekit/device`` label), on a shipped copy of the model and ``inputs``, devices in
parallel. The node returns the tune report (JSON), its summary lines, its exit code and the plan's
text; :func:`tune_on_fleet` writes each plan into ``output_dir`` here. Existing plan files are
refused before anything runs unless ``force``.

Per device, :class:`DevicePlan` says what happened: ``code`` is the device's exit code as
``edgekit tune`` would give it on that device (0 confirmed, 3 not confirmed within the budget,
4 nothing passes the gate, 130 interrupted), or ``None`` when the job did not run (``status``
``unavailable``/``failed``/``cancelled`` and ``reason``).

Example::

    for p in tune_on_fleet("det.onnx", "10.0.0.5:6379", ["all"], "plans/", budget=60):
        print(p.device, p.status, p.code, p.plan or p.reason)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.fleet.jobs import Outcome, run_on_devices, safe_name
from edgekit.fleet.payload import InputItem, input_payload, local_inputs, model_payload

__all__ = ["DevicePlan", "plan_path", "tune_on_fleet"]

#: the exit code of a device on which nothing passed the gate (``edgekit.cli.codes.NOTHING``)
_NOTHING = 4


@dataclass
class DevicePlan:
    """What tuning did on one device."""

    device: str
    status: str  # the job's: ok | unavailable | failed | cancelled
    code: int | None = None  # the device's `edgekit tune` exit code when the job ran
    plan: str | None = None  # the plan file written here
    plan_text: str | None = None  # the plan the device made (TOML), written or not
    summary: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the device's TuneReport as JSON data
    reason: str | None = None
    host: str | None = None
    node: str | None = None


def plan_path(output_dir: str | os.PathLike[str], device: str) -> Path:
    """Where the plan of ``device`` goes.

    >>> plan_path("plans", "raspberry-pi-5").as_posix()
    'plans/raspberry-pi-5.toml'
    """
    return Path(output_dir) / f"{safe_name(device)}.toml"


def _tune_job(files: dict[str, Path], model: str, inputs: list[InputItem], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Runs on the node: tune for this node's device profile; report, summary, code and plan text."""
    import ray

    from edgekit.errors import DeviceUnavailableError
    from edgekit.fleet.cluster import DEVICE_LABEL
    from edgekit.tuning import tune

    device = str(ray.get_runtime_context().get_node_labels()[DEVICE_LABEL])
    plan = files[model].parent / "edgekit-fleet.plan.toml"
    try:
        report = tune(files[model], device=device, inputs=local_inputs(files, inputs) or None, output=plan,
                      force=True, **kwargs)
    except DeviceUnavailableError as exc:  # nothing runs there and passes the gate: that device's answer
        return {"code": _NOTHING, "summary": [f"nothing to choose: {exc}"], "report": None, "plan": None}
    return {"code": report.exit_code, "summary": report.summary_lines(), "report": report.to_dict(),
            "plan": plan.read_text(encoding="utf-8") if report.plan else None}


def tune_on_fleet(model: str | os.PathLike[str], address: str, devices: Sequence[str],
                  output_dir: str | os.PathLike[str] | None, *, inputs: Sequence[str] = (), force: bool = False,
                  unavailable_after: float = 10.0, retries: int = 1,
                  on_outcome: Callable[[DevicePlan], None] | None = None, **tune_kwargs: Any) -> list[DevicePlan]:
    """Tune ``model`` on each device (``["all"]``: every device of the fleet); write ``output_dir/<device>.toml``.

    ``inputs``: ``--input`` items (``NAME=PATH``, a file or a folder) shipped to every device;
    ``tune_kwargs`` go to :func:`edgekit.tuning.tune` on the node (``budget=``, ``runtimes=``, ...).
    Raises :class:`~edgekit.errors.InvalidOptionError` before anything runs when a named device's
    plan exists and ``force`` is false (``["all"]``: checked again as each plan arrives, and kept).
    """
    for key in ("device", "output", "bundle", "embed"):
        if key in tune_kwargs:
            raise InvalidOptionError(f"tune_on_fleet sets {key}= itself (the node's device, the plan beside the "
                                     "model); pass devices and output_dir instead")
    if output_dir is not None and not force:
        existing = [str(plan_path(output_dir, d)) for d in devices if d != "all" and plan_path(output_dir, d).exists()]
        if existing:
            raise InvalidOptionError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; a plan "
                                     "is never overwritten by accident. Choose another folder, or pass --force "
                                     "(force=True) to replace them.")
    payload, [name, *_] = model_payload(model)
    extra, items = input_payload(list(inputs))
    payload.update(extra)

    def done(o: Outcome) -> None:
        o.value = _device_plan(o, output_dir, force)
        if on_outcome is not None:
            on_outcome(o.value)

    outcomes = run_on_devices(address, devices, _tune_job, payload, args=(name, items, tune_kwargs),
                              unavailable_after=unavailable_after, retries=retries, on_outcome=done)
    return [o.value for o in outcomes]


def _device_plan(o: Outcome, output_dir: str | os.PathLike[str] | None, force: bool) -> DevicePlan:
    if not o.ok:
        return DevicePlan(o.device, o.status, reason=o.reason, host=o.host, node=o.node)
    res: dict[str, Any] = o.value
    out = DevicePlan(o.device, o.status, code=int(res["code"]),
                     summary=[line for line in res["summary"] if not line.startswith("plan written:")], report=res["report"],
                     host=o.host, node=o.node, plan_text=res["plan"])
    if res["plan"] is not None and output_dir is not None:
        path = plan_path(output_dir, o.device)
        if path.exists() and not force:
            out.reason = f"{path} already exists (pass --force to replace it); this device's plan was not written"
            out.summary.append(out.reason)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(res["plan"], encoding="utf-8")
            out.plan = str(path)
            out.summary.append(f"plan written: {path}")
    return out
