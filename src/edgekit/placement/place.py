"""The entry point, :func:`place`: by a deployment plan, a cached plan (``device="auto"``), a device profile,
emulation, or the runtime :func:`choose_runtime` picks.

Example::

    d = place(open_model("det.onnx"), plan="plan.toml")
    d.placement.plan       # 'plan.toml (tuned 2026-11-29 on Intel Xeon, p50 1.23 ms)'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from edgekit.errors import (
    EdgekitError,
    InvalidOptionError,
    PlanError,
    RuntimeNotInstalledError,
    UnsupportedModelError,
    option,
)
from edgekit.models.formats import ModelFile
from edgekit.placement.decision import EMULATOR, Decision, Placement, Rejection
from edgekit.placement.device import no_fallback, place_emulated, place_on_device
from edgekit.plan import Plan, check
from edgekit.plan_cache import find_plan
from edgekit.registry import get_runtime, iter_runtimes
from edgekit.runtime import Runtime

__all__ = ["choose_runtime", "place", "place_by_plan"]

logger = logging.getLogger("edgekit")


def place(model: ModelFile, *, runtime: str | None = None, device: Any = None, accelerator: str | None = None,
          threads: int | None = None, precision: str | None = None, strict: bool = False, emulate: bool = False,
          profile_ops: bool = False, options: Mapping[str, Any] | None = None,
          plan: Plan | str | os.PathLike[str] | None = None) -> Decision:
    """Decide where ``model`` runs and open it there (see the module docstring for the strategies).

    >>> d = place(open_model("det.onnx"), runtime="openvino", precision="fp32")   # doctest: +SKIP
    >>> d.placement.runtime, d.session.precision                                  # doctest: +SKIP
    ('openvino', 'fp32')
    """
    opts = dict(options or {})
    if plan is not None:
        return place_by_plan(model, plan, runtime=runtime, device=device, accelerator=accelerator, threads=threads,
                             precision=precision, strict=strict, emulate=emulate, profile_ops=profile_ops, options=opts)
    return _place(model, runtime=runtime, device=device, accelerator=accelerator, threads=threads, precision=precision,
                  strict=strict, emulate=emulate, profile_ops=profile_ops, options=opts, lookup=True)


def _place(model: ModelFile, *, runtime: str | None, device: Any, accelerator: str | None, threads: int | None,
           precision: str | None, strict: bool, emulate: bool, profile_ops: bool, options: dict[str, Any],
           lookup: bool) -> Decision:
    """Placement without an explicit plan; ``lookup``: consult the plan cache for ``device="auto"``."""
    if emulate or (runtime is not None and get_runtime(runtime).has("estimate")):
        return place_emulated(model, device, runtime=runtime or EMULATOR, accelerator=accelerator, threads=threads,
                              precision=precision, strict=strict, options=options)
    if device is not None:
        if lookup and _is_auto(device):
            return _place_auto(model, runtime=runtime, accelerator=accelerator, threads=threads, precision=precision,
                               strict=strict, options=options, profile_ops=profile_ops)
        return place_on_device(model, device, runtime=runtime, accelerator=accelerator, threads=threads,
                               precision=precision, strict=strict, options=options, profile_ops=profile_ops)
    rt = choose_runtime(model, runtime)
    if strict:  # no switch to the CPU inside the runtime either
        options = no_fallback(rt, options)
    session = rt.open(model, accelerator=accelerator, threads=threads, precision=precision, options=options,
                      profile_ops=profile_ops)
    return Decision(session, Placement(runtime=rt.name, version=rt.version(), accelerator=session.accelerator,
                                       precision=session.precision, options=dict(session.options)))


def _is_auto(device: Any) -> bool:
    return isinstance(device, str) and device == "auto"


# --- placement by a deployment plan --------------------------------------------------------------

def place_by_plan(model: ModelFile, plan: Plan | str | os.PathLike[str], *, runtime: str | None = None,
                  device: Any = None, accelerator: str | None = None, threads: int | None = None,
                  precision: str | None = None, strict: bool = False, emulate: bool = False,
                  profile_ops: bool = False, options: Mapping[str, Any] | None = None) -> Decision:
    """Open ``model`` with the configuration ``plan`` (a :class:`~edgekit.plan.Plan` or a plan file) chose.

    ``runtime``/``accelerator``/``precision``/``threads``/``options`` may repeat the plan's values;
    a different value (or ``emulate=True``) is an InvalidOptionError. Runtime options the plan does
    not set are added to its own. ``device`` (a profile, or ``"auto"``) is checked against the plan's.
    A plan that does not apply here (:func:`edgekit.plan.check`), or whose configuration fails to
    open, is not used: a warning names every reason, the Placement's ``trail`` and ``notes`` keep
    them, and placement goes on as without ``plan=`` (``device``'s targets, or the default runtime;
    the plan cache is not consulted); ``strict=True`` raises PlanError instead. A malformed plan
    file raises PlanError in any case.

    >>> d = place_by_plan(open_model("det.onnx"), "plan.toml")       # doctest: +SKIP
    >>> print(d.placement.explain())                                 # doctest: +SKIP
    chosen: openvino 2026.4.1 on cpu, fp32, threads=1, hint=latency
    plan: plan.toml (tuned 2026-11-29 on Intel(R) Xeon(R) Processor, p50 1.23 ms)
    """
    p = plan if isinstance(plan, Plan) else Plan.read(plan)
    opts = dict(options or {})
    c, label = p.chosen, p.source or "(a Plan object)"
    clashes = [f"{name}={given!r} (the plan chose {chosen!r})" for name, given, chosen in (
        ("runtime", runtime, c.runtime), ("accelerator", accelerator.lower() if accelerator else None, c.accelerator),
        ("precision", precision.lower() if precision else None, c.precision), ("threads", threads, c.threads))
        if given is not None and given != chosen]
    clashes += [f"{k}={v!r} (the plan chose {c.options[k]!r})" for k, v in opts.items()
                if k in c.options and c.options[k] != v]
    if emulate:
        clashes.append("emulate=True (a plan runs a real runtime, not the device emulator)")
    if clashes:
        raise InvalidOptionError(
            f"plan {label} chose {c.describe()}, and load() was also given {', '.join(clashes)}. Pass either the plan "
            "or your own choice, not both: drop plan= to choose yourself, drop those arguments to follow the plan, "
            "or re-run `edgekit tune` to make a plan with them.")
    device_name = _device_name(device)
    reasons = check(p, model, device=device_name)
    error: BaseException | None = None
    if not reasons:
        try:
            decision = _open_plan(model, p, device=device_name, options=opts, profile_ops=profile_ops)
        except Exception as exc:  # noqa: BLE001 - a configuration that fails to open is a reason to fall back
            msg = str(exc) if isinstance(exc, EdgekitError) else f"{type(exc).__name__}: {exc}"
            reasons.append(f"its configuration {c.describe()} failed to open here: {msg}")
            error = exc
        else:
            added = sorted(set(opts) - set(c.options))
            if added:
                decision = _with(decision, notes=(f"runtime options added to the plan's: {added}",))
            return decision
    instead = f"device {device_name}'s targets in order" if device_name else "the default runtime choice"
    why = f"plan {label} does not apply here: " + "; ".join(reasons)
    if strict:
        raise PlanError(f"{why}. Expected a plan made for this model on this host with these runtime versions. "
                        f"Re-run `edgekit tune {model.path.name}` here to make a new one, or load without "
                        f"strict=True to fall back (with a warning) to {instead}.") from error
    logger.warning("edgekit: %s; falling back to %s (re-run `edgekit tune` to make a plan for this host)", why, instead)
    decision = _place(model, runtime=runtime, device=device, accelerator=accelerator, threads=threads,
                      precision=precision, strict=False, emulate=False, profile_ops=profile_ops, options=opts,
                      lookup=False)
    return _with(decision, trail=(Rejection(f"plan {label}", "; ".join(reasons)),),
                 notes=(f"plan {label} not used ({'; '.join(reasons)}); placed by {instead} instead",))


def _place_auto(model: ModelFile, *, runtime: str | None, accelerator: str | None, threads: int | None,
                precision: str | None, strict: bool, options: dict[str, Any], profile_ops: bool) -> Decision:
    """``device="auto"``: a cached plan for this model and the detected device when one applies, else its targets."""
    from edgekit.devices import detect

    profile = detect().profile
    given = [f"{k}=" for k, v in (("runtime", runtime), ("accelerator", accelerator), ("precision", precision),
                                  ("threads", threads)) if v is not None] + [f"{k}=" for k in options]
    if given:
        decision = place_on_device(model, profile, runtime=runtime, accelerator=accelerator, threads=threads,
                                   precision=precision, strict=strict, options=options, profile_ops=profile_ops)
        return _with(decision, notes=(f"plan: the plan cache was not consulted ({', '.join(given)} given)",))
    found, reasons = find_plan(model, profile.name)
    if found is not None:
        try:
            return _with(_open_plan(model, found, device=profile.name, options={}, profile_ops=profile_ops),
                         notes=tuple(f"plan: {r}" for r in reasons))
        except Exception as exc:  # noqa: BLE001 - a cached configuration that fails to open: fall back
            msg = str(exc) if isinstance(exc, EdgekitError) else f"{type(exc).__name__}: {exc}"
            reasons.append(f"cached plan {found.source} ignored: its configuration {found.chosen.describe()} failed "
                           f"to open here: {msg}")
    stale = [r for r in reasons if "ignored" in r]  # not "no plan in the cache": that is no news
    if stale:
        logger.warning("edgekit: %s: %s; placing by device %s's targets instead", model.path.name, "; ".join(stale),
                       profile.name)
    decision = place_on_device(model, profile, strict=strict, options=options, profile_ops=profile_ops)
    return _with(decision, notes=tuple(f"plan: none used: {r}" for r in reasons)
                 + (f"plan: placed by device {profile.name}'s targets instead",))


def _device_name(device: Any) -> str | None:
    """The profile name a ``device=`` argument means (``"auto"``: the detected one), or None."""
    if device is None:
        return None
    from edgekit.devices import detect, get_profile


    return detect().profile.name if _is_auto(device) else get_profile(device).name


def _open_plan(model: ModelFile, plan: Plan, *, device: str | None, options: dict[str, Any],
               profile_ops: bool) -> Decision:
    """Open the plan's chosen configuration (the plan was checked); raise whatever opening raises."""
    from edgekit.models.precision import model_precision

    c = plan.chosen
    rt = get_runtime(c.runtime)
    int8 = model_precision(model) == "int8"  # as on a device: a quantized model runs in its own precision
    session = rt.open(model, accelerator=c.accelerator, threads=c.threads, precision=None if int8 else c.precision,
                      options={**c.options, **options}, profile_ops=profile_ops)
    return Decision(session, Placement(
        runtime=rt.name, version=rt.version(), accelerator=session.accelerator,
        precision="int8" if int8 else session.precision, options=dict(session.options), device=plan.device or device,
        target=c.target, plan=plan.describe()))


def _with(decision: Decision, *, trail: tuple[Rejection, ...] = (), notes: tuple[str, ...] = ()) -> Decision:
    """``decision`` with rejections put first in its trail and notes added."""
    p = decision.placement
    return Decision(decision.session, replace(p, trail=trail + p.trail, notes=p.notes + notes))


def choose_runtime(model: ModelFile, runtime: str | None) -> Runtime:
    """The runtime to use for ``model`` when no device profile is given."""
    if runtime is not None:
        rt = get_runtime(runtime)
        if not rt.can_read(model.format):
            readers = [r.name for r in iter_runtimes() if r.can_read(model.format)]
            raise UnsupportedModelError(
                f"runtime {runtime!r} cannot read {model.format} models ({model.path.name}); it reads "
                f"{list(rt.info.formats + rt.info.converts)}. Runtimes that read {model.format}: {readers}; pass "
                f"{option('runtime')} one of them."
            )
        rt.require()
        return rt
    native, converting = [], []
    for rt in iter_runtimes():
        if not rt.picked_by_default:  # the emulator and the reference evaluator run only when named
            continue
        if model.format in rt.info.formats:
            native.append(rt)
        elif model.format in rt.info.converts:
            converting.append(rt)
    for rt in native + converting:
        if rt.is_installed() and not rt.not_ready(model.format):
            return rt
    hints = "; ".join(f"{rt.name}: {rt.info.install_hint}" for rt in native + converting)
    raise RuntimeNotInstalledError(
        f"no installed runtime reads {model.format} models ({model.path.name}). Install one of them — {hints}"
        + (" — or everything with: pip install 'edgekit[all]'." if hints else ".")
    )


