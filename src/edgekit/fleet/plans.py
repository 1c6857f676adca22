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

A bundle (``bundle=`` a folder or ``.zip``, ``edgekit tune --bundle B --fleet``) is shipped whole
(:func:`edgekit.fleet.payload.bundle_payload`: regular files only, within the bundle limits) and
each node tunes its model through the bundle's pre- and post-processing, as ``edgekit tune
--bundle`` does there. ``embed=True`` (a folder bundle) also writes each device's plan into the
bundle as ``plans/<device>.toml`` as it arrives: an existing plan is replaced only with ``force``
(refused before anything runs for named devices), and the bundle never holds more than
:data:`edgekit.pipeline.config.MAX_PLANS` plans.

Example::

    for p in tune_on_fleet("det.onnx", "10.0.0.5:6379", ["all"], "plans/", budget=60):
        print(p.device, p.status, p.code, p.plan or p.reason)
    for p in tune_on_fleet(None, "10.0.0.5:6379", ["raspberry-pi-5"], None, bundle="bundles/face", embed=True):
        print(p.device, p.embedded or p.reason)          # bundles/face/plans/raspberry-pi-5.toml
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.fleet.jobs import Outcome, paths_here, run_on_devices, safe_name
from edgekit.fleet.payload import InputItem, bundle_payload, input_payload, local_inputs, model_payload

__all__ = ["DevicePlan", "plan_path", "tune_on_fleet"]

#: the exit code of a device on which nothing passed the gate (``edgekit.cli.codes.NOTHING``)
_NOTHING = 4


@dataclass
class DevicePlan:
    """What tuning did on one device."""

    device: str
    status: str  # the job's: ok | unavailable | failed | cancelled
    code: int | None = None  # the device's `edgekit tune` exit code when the job ran
    plan: str | None = None  # the plan file written here (output_dir/<device>.toml)
    embedded: str | None = None  # the plan written into the bundle here (embed=True: B/plans/<device>.toml)
    plan_text: str | None = None  # the plan the device made (TOML), written or not
    summary: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the device's TuneReport as JSON data
    reason: str | None = None
    host: str | None = None
    node: str | None = None
    error: BaseException | None = None  # what the device's job raised (status failed), e.g. an InputError


def plan_path(output_dir: str | os.PathLike[str], device: str) -> Path:
    """Where the plan of ``device`` goes.

    >>> plan_path("plans", "raspberry-pi-5").as_posix()
    'plans/raspberry-pi-5.toml'
    """
    return Path(output_dir) / f"{safe_name(device)}.toml"


def _tune_job(files: dict[str, Path], model: str | None, inputs: list[InputItem], kwargs: dict[str, Any],
              bundle: str | None = None) -> dict[str, Any]:
    """Runs on the node: tune for this node's device profile (``model`` or ``bundle``, payload names); report,
    summary, code and plan text."""
    import ray

    from edgekit.errors import DeviceUnavailableError
    from edgekit.fleet.cluster import DEVICE_LABEL
    from edgekit.pipeline.config import CONFIG_NAME
    from edgekit.tuning import tune

    device = str(ray.get_runtime_context().get_node_labels()[DEVICE_LABEL])
    if bundle is not None:  # a .zip as shipped, or the folder the bundle's files were written into
        target = files[bundle] if bundle in files else files[f"{bundle}/{CONFIG_NAME}"].parent
        what: dict[str, Any] = {"bundle": target}
        plan = target.parent / "edgekit-fleet.plan.toml"  # the job's folder, outside the bundle
    else:
        assert model is not None
        what = {"model": files[model]}
        plan = files[model].parent / "edgekit-fleet.plan.toml"
    try:
        report = tune(**what, device=device, inputs=local_inputs(files, inputs) or None, output=plan, force=True,
                      **kwargs)
    except DeviceUnavailableError as exc:  # nothing runs there and passes the gate: that device's answer
        return {"code": _NOTHING, "summary": [f"nothing to choose: {exc}"], "report": None, "plan": None}
    return {"code": report.exit_code, "summary": report.summary_lines(), "report": report.to_dict(),
            "plan": plan.read_text(encoding="utf-8") if report.plan else None}


def tune_on_fleet(model: str | os.PathLike[str] | None, address: str, devices: Sequence[str],
                  output_dir: str | os.PathLike[str] | None, *, bundle: str | os.PathLike[str] | None = None,
                  embed: bool = False, inputs: Sequence[str] = (), force: bool = False,
                  unavailable_after: float = 10.0, retries: int = 1,
                  on_outcome: Callable[[DevicePlan], None] | None = None, **tune_kwargs: Any) -> list[DevicePlan]:
    """Tune ``model`` (or ``bundle``'s model) on each device (``["all"]``: every device of the fleet); write
    ``output_dir/<device>.toml`` (``output_dir`` None: no file, each plan's text in ``plan_text``).

    ``bundle``: a bundle folder or ``.zip`` instead of ``model`` (then ``model`` is None), shipped
    whole and tuned with its pre- and post-processing; ``embed=True`` (a folder bundle) also writes
    each plan into it as ``plans/<device>.toml`` (:attr:`DevicePlan.embedded`).
    ``inputs``: ``--input`` items (``NAME=PATH``, a file or a folder) shipped to every device;
    ``tune_kwargs`` go to :func:`edgekit.tuning.tune` on the node (``budget=``, ``runtimes=``, ...;
    not ``device=`` nor ``output=``, which this function sets).
    Raises before anything runs: :class:`~edgekit.errors.InvalidOptionError` when a named device's
    plan exists (in ``output_dir``, or in the bundle with ``embed``) and ``force`` is false
    (``["all"]``: checked again as each plan arrives, and kept), when ``embed`` would put more than
    ``MAX_PLANS`` plans in the bundle, or when ``embed`` is given a ``.zip``;
    :class:`~edgekit.errors.BundleError` for a bundle that is not sound or holds a symbolic link.

    >>> plans = tune_on_fleet("det.onnx", "10.0.0.5:6379", ["all"], "plans/", budget=60)  # doctest: +SKIP
    >>> plans = tune_on_fleet(None, "10.0.0.5:6379", ["all"], None, bundle="bundles/face", embed=True)  # doctest: +SKIP
    """
    for key in ("device", "output"):
        if key in tune_kwargs:
            raise InvalidOptionError(f"tune_on_fleet sets {key}= itself (the node's device, the plan beside the "
                                     "model); pass devices and output_dir instead")
    from edgekit.tuning.tuner import check_model_or_bundle

    check_model_or_bundle(model, bundle, embed, "`edgekit tune MODEL --fleet` or `edgekit tune --bundle B --fleet`")
    named = [d for d in devices if d != "all"]
    if output_dir is not None and not force:
        _refuse_existing([plan_path(output_dir, d) for d in named], "Choose another folder, or pass --force "
                         "(force=True) to replace them.")
    plans_dir = _embed_dir(bundle, devices, named, force) if embed and bundle is not None else None
    if bundle is not None:
        from edgekit.pipeline.config import CONFIG_NAME

        payload, key = bundle_payload(bundle)
        target: dict[str, Any] = {"args": (None,), "kwargs": {"bundle": key}}
        named_here: dict[str, Path] = {key: payload[key] if key in payload else payload[f"{key}/{CONFIG_NAME}"].parent}
    else:
        payload, [name, *_] = model_payload(model)
        target, named_here = {"args": (name,), "kwargs": {}}, {}
    extra, items = input_payload(list(inputs))
    payload.update(extra)
    # the node's copies (the bundle, each --input file and folder) in its summary, named as here
    named_here.update(extra)
    named_here.update({shipped: next(p for k, p in extra.items() if k.startswith(f"{shipped}/")).parent
                       for _, shipped, folder in items if folder})
    shown = paths_here(named_here)

    def done(o: Outcome) -> None:
        o.value = _device_plan(o, output_dir, plans_dir, force, shown)
        if on_outcome is not None:
            on_outcome(o.value)

    outcomes = run_on_devices(address, devices, _tune_job, payload, args=(*target["args"], items, tune_kwargs),
                              kwargs=target["kwargs"], unavailable_after=unavailable_after, retries=retries,
                              on_outcome=done)
    return [o.value for o in outcomes]


def _refuse_existing(paths: list[Path], fix: str) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise InvalidOptionError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; a plan "
                                 f"is never overwritten by accident. {fix}")


def _embed_dir(bundle: str | os.PathLike[str], devices: Sequence[str], named: list[str], force: bool) -> Path:
    """``embed``: the bundle's plans folder, once what would be written there is allowed (see tune_on_fleet)."""
    from edgekit.pipeline.config import MAX_PLANS, PLANS_DIR
    from edgekit.tuning.tuner import embed_target

    root = embed_target(bundle, devices[0] if devices else None)  # a .zip: the message of a local --embed
    folder = root / PLANS_DIR
    if not force:
        _refuse_existing([plan_path(folder, d) for d in named], "Pass --force (force=True) to replace them, or "
                         "remove them from the bundle.")
    held = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    new = {plan_path(folder, d).name for d in named} - held
    if len(held) + len(new) > MAX_PLANS:
        raise InvalidOptionError(f"--embed: {folder} holds {len(held)} plan(s) and {len(new)} more would make "
                                 f"{len(held) + len(new)}; a bundle holds at most {MAX_PLANS} (one per device). "
                                 "Remove the plans of devices you no longer deploy to, or tune fewer devices.")
    return folder


def _embed(text: str, folder: Path, device: str, force: bool) -> tuple[str | None, str | None]:
    """Write a device's plan into the bundle's plans folder: (the path written, None) or (None, why not)."""
    import tempfile

    from edgekit.errors import PlanError
    from edgekit.pipeline.config import MAX_PLANS
    from edgekit.plan import Plan

    path = plan_path(folder, device)
    if path.exists() and not force:
        return None, f"{path} already exists (pass --force to replace it); this device's plan was not embedded"
    if not path.exists() and folder.is_dir() and sum(1 for _ in folder.iterdir()) >= MAX_PLANS:
        return None, (f"{folder} already holds {MAX_PLANS} plans, the most a bundle may hold; this device's plan "
                      "was not embedded (remove a plan and run again)")
    with tempfile.TemporaryDirectory(prefix="edgekit-plan-") as tmp:  # checked as the bundle will read it
        (Path(tmp) / "plan.toml").write_text(text, encoding="utf-8")
        try:
            plan = Plan.read(Path(tmp) / "plan.toml")
        except PlanError as exc:
            return None, f"the plan made on {device} is not valid ({exc}); it was not embedded"
    if plan.device != device:
        return None, (f"the plan made on {device} names device {plan.device!r}; a bundle keeps the plan for D as "
                      f"plans/D.toml, so it was not embedded")
    try:
        return str(plan.write(path, force=force)), None
    except InvalidOptionError as exc:  # appeared since the check above
        return None, f"{exc} This device's plan was not embedded."


def _device_plan(o: Outcome, output_dir: str | os.PathLike[str] | None, plans_dir: Path | None, force: bool,
                 shown: Callable[[str], str] | None) -> DevicePlan:
    if not o.ok:
        return DevicePlan(o.device, o.status, reason=o.reason, host=o.host, node=o.node, error=o.error)
    res: dict[str, Any] = o.value
    summary = [shown(line) if shown else line for line in res["summary"] if not line.startswith("plan written:")]
    out = DevicePlan(o.device, o.status, code=int(res["code"]), summary=summary, report=res["report"],
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
    if res["plan"] is not None and plans_dir is not None:
        out.embedded, why = _embed(res["plan"], plans_dir, o.device, force)
        out.summary.append(f"plan embedded in the bundle: {out.embedded}" if out.embedded else str(why))
        out.reason = out.reason or why
    return out
