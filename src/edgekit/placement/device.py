"""Placement on a device profile: its targets in order, each rejection kept (:func:`place_on_device`), or its
accelerator emulated on this CPU (:func:`place_emulated`).

Example::

    d = place_on_device(open_model("face.tflite"), "coral-edgetpu")
    d.placement.trail        # (Rejection('#1 litert/edgetpu int8 on edgetpu', "accelerator 'edgetpu' is not present ..."),)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgekit.catalog import runtime_info
from edgekit.errors import (
    DeviceUnavailableError,
    EdgekitError,
    InvalidOptionError,
    UnknownRuntimeError,
    option,
)
from edgekit.models.formats import ModelFile, a_model, quantize_hint
from edgekit.placement.decision import EMULATOR, Decision, Placement, Rejection
from edgekit.registry import get_runtime
from edgekit.runtime import Runtime

if TYPE_CHECKING:
    from edgekit.devices import DeviceProfile, Target

__all__ = ["no_fallback", "place_emulated", "place_on_device"]

logger = logging.getLogger("edgekit")


def _target_checks(t: Target, profile: DeviceProfile, model: ModelFile, mprec: str, precision: str | None,
                   accs: dict[str, list[str] | str]) -> tuple[Runtime | None, list[str]]:
    """Every reason ``t`` cannot take ``model`` here, without opening it (empty: worth opening)."""
    reasons: list[str] = []
    rt: Runtime | None = None
    try:
        rt = get_runtime(t.runtime)
    except UnknownRuntimeError:
        reasons.append(f"runtime {t.runtime!r} is not registered in edgekit" + (f": {t.plugin}" if t.plugin else ""))
    except Exception as exc:  # noqa: BLE001 - an adapter that fails to import is a reason, not a crash
        reasons.append(f"runtime {t.runtime!r} adapter failed to load ({type(exc).__name__}: {exc})")
    if rt is not None and not rt.is_installed():
        reasons.append(f"runtime {t.runtime!r} is not installed: {rt.info.install_hint}")
    elif rt is not None:
        if t.runtime not in accs:
            try:
                accs[t.runtime] = list(rt.accelerators())
            except Exception as exc:  # noqa: BLE001 - a runtime that cannot list its accelerators is a reason, not a crash
                accs[t.runtime] = f"{type(exc).__name__}: {exc}"
        present = accs[t.runtime]
        if isinstance(present, str):
            reasons.append(f"{t.runtime} could not list its accelerators ({present})")
        elif t.accelerator not in present:
            reasons.append(f"accelerator {t.accelerator!r} is not present ({t.runtime} reports {present} here)")
    if rt is not None and not rt.can_read(model.format):  # plugins without a catalog entry land here
        reasons.append(f"{t.runtime} does not read {model.format} models (it reads "
                       f"{list(rt.info.formats + rt.info.converts)})")
    unit = profile.unit(t.unit)
    allowed = t.constraints.precisions
    if t.precision == "int8" and mprec != "int8":
        reasons.append(f"target computes int8 only and the model is {mprec}: quantize it to int8 first "
                       f"({quantize_hint(model.format)})"
                       + (" and compile it for the accelerator" if t.plugin or t.delegate else ""))
    elif mprec == "int8" and "int8" not in unit.precisions:
        reasons.append(f"the model is int8-quantized and unit {t.unit!r} computes only {list(unit.precisions)}")
    elif allowed and mprec not in allowed:
        reasons.append(f"the model is {mprec} and this target accepts only {list(allowed)} models")
    if precision and mprec != "int8" and precision not in unit.precisions:
        reasons.append(f"{option('precision', precision)} was asked and unit {t.unit!r} computes "
                       f"{list(unit.precisions)}")
    if t.constraints.max_model_mb and model.size > t.constraints.max_model_mb * 2**20:
        reasons.append(f"the model is {model.size / 2**20:.1f} MB, over this target's limit of "
                       f"{t.constraints.max_model_mb:g} MB")
    return rt, reasons


def _dynamic_inputs(session: Any) -> list[str]:
    return [f"{s.name}{tuple(s.shape)}" for s in session.inputs
            if any(d is None or isinstance(d, str) for d in s.shape)]


def _unavailable(profile: DeviceProfile, trail: list[Rejection], rest: list[str], why: str) -> DeviceUnavailableError:
    lines = [f"device {profile.name!r} ({profile.title}): {why}"]
    lines += [f"  {r.target}: {r.reason}" for r in trail] + [f"  {line}" for line in rest]
    lines.append("Install what is missing (each reason says what)" + (", pass strict=False to allow falling back"
                 if "strict" in why else "") + ", or choose another device (`edgekit devices`).")
    return DeviceUnavailableError("\n".join(lines))


def no_fallback(rt: Runtime, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for ``strict=True``: ``allow_fallback=False`` added for an adapter that may switch to the CPU on its
    own (OpenCV's opencl), unless the caller set it."""
    return {"allow_fallback": False, **options} if "allow_fallback" in rt.options_help else dict(options)


def place_on_device(model: ModelFile, device: Any, *, runtime: str | None = None, accelerator: str | None = None,
                    threads: int | None = None, precision: str | None = None, strict: bool = False,
                    options: Mapping[str, Any] | None = None, profile_ops: bool = False) -> Decision:
    """Open ``model`` on the first target of ``device`` (name, .toml path, profile or ``"auto"``) that works.

    Targets are tried in order; ``runtime=``/``accelerator=`` keep only matching ones. Each
    rejected target is a :class:`Rejection` in ``Placement.trail``; a fallback logs a warning on
    the ``edgekit`` logger; ``strict=True`` raises DeviceUnavailableError instead of falling back, to another
    target or, inside a runtime that may switch to the CPU on its own (OpenCV's opencl), to its CPU
    (``allow_fallback=False`` is passed to such adapters). ``edgekit.load(..., device=...)`` calls this (through
    :func:`place`).

    >>> d = place_on_device(open_model("face.tflite"), "coral-edgetpu")   # doctest: +SKIP
    >>> print(d.placement.explain())                                     # doctest: +SKIP
    chosen: litert 2.3.0 on cpu, fp32, threads=4 [device coral-edgetpu]  (target #2 litert/cpu fp32 on cpu (threads=4))
    rejected #1 litert/edgetpu int8 on edgetpu: accelerator 'edgetpu' is not present (...); target computes int8 only ...
    """
    from edgekit.devices import detect, get_profile
    from edgekit.models.precision import model_precision

    profile = detect().profile if isinstance(device, str) and device == "auto" else get_profile(device)
    targets, skipped = [], []
    for t in profile.targets:
        if (runtime is not None and t.runtime != runtime) or (accelerator is not None and t.accelerator != accelerator.lower()):
            continue
        info = runtime_info(t.runtime)
        if info is not None and model.format not in info.formats + info.converts:
            skipped.append(t.describe())  # not a candidate for this format: not a fallback either
        else:
            targets.append(t)
    if not targets:
        raise DeviceUnavailableError(
            f"device {profile.name!r} has no target for {a_model(model.format)}"
            + (f" with {option('runtime', runtime)}" if runtime else "")
            + (f" accelerator={accelerator!r}" if accelerator else "")
            + f"; its targets are {[t.describe() for t in profile.targets]}. Convert the model, drop "
            + (f"{option('runtime')}" if runtime and not accelerator else "the filter")
            + f", or leave out {option('device')} to let edgekit choose a runtime.")
    mprec = model_precision(model)
    trail: list[Rejection] = []
    accs: dict[str, list[str] | str] = {}
    for i, t in enumerate(targets):
        rt, reasons = _target_checks(t, profile, model, mprec, precision, accs)
        session, error = None, None
        if not reasons and rt is not None:
            opts = {k: v for k, v in t.options.items() if k != "threads"}
            if t.delegate and t.accelerator == "delegate" and rt.has("delegate"):
                opts.setdefault("delegate", t.delegate)
            opts.update(options or {})
            if strict:
                opts = no_fallback(rt, opts)
            try:
                session = rt.open(model, accelerator=t.accelerator, threads=threads or t.options.get("threads"),
                                  precision=None if mprec == "int8" else (precision or t.precision), options=opts,
                                  profile_ops=profile_ops)
            except Exception as exc:  # noqa: BLE001 - any failure to open is recorded in the trail and the next target tried
                msg = str(exc) if isinstance(exc, EdgekitError) else f"{type(exc).__name__}: {exc}"
                reasons.append(f"{t.runtime} failed to open the model: {msg}")
                error = exc
            if session is not None and t.constraints.static_shapes and _dynamic_inputs(session):
                reasons.append(f"this target needs static shapes and inputs {_dynamic_inputs(session)} are dynamic: "
                               "re-export the model with fixed input shapes")
                session.close()
                session = None
        if session is None:
            trail.append(Rejection(t.describe(), "; ".join(reasons)))
            if strict:
                rest = []
                for u in targets[i + 1:]:
                    _, why = _target_checks(u, profile, model, mprec, precision, accs)
                    rest.append(f"{u.describe()}: " + ("; ".join(why) if why else "usable here, not tried (strict)"))
                raise _unavailable(profile, trail, rest, "strict=True and its first target cannot be used") from error
            continue
        assert rt is not None
        placement = Placement(
            runtime=rt.name, version=rt.version(), accelerator=session.accelerator,
            precision="int8" if mprec == "int8" else session.precision, options=dict(session.options),
            device=profile.name, target=t.describe(), trail=tuple(trail),
            notes=(f"model precision: {mprec}",) + ((t.note,) if t.note else ())
            + ((f"skipped targets whose runtime does not read {model.format}: {', '.join(skipped)}",) if skipped else ()))
        if trail:
            logger.warning("edgekit: device %s: %s fell back to %s after rejecting: %s", profile.name,
                           model.path.name, t.describe(), "; ".join(f"{r.target} ({r.reason})" for r in trail))
        return Decision(session, placement)
    raise _unavailable(profile, trail, [], "no target can run this model here")


def place_emulated(model: ModelFile, device: Any = None, *, runtime: str = EMULATOR, accelerator: str | None = None,
                   threads: int | None = None, precision: str | None = None, strict: bool = False,
                   options: Mapping[str, Any] | None = None) -> Decision:
    """Open ``model`` in an emulating runtime for ``device``; the Placement says which target and why.

    ``edgekit.load(model, device=..., emulate=True)`` and ``edgekit.load(model, runtime=...)`` with a runtime
    that declares the ``estimate`` capability (edgekit's emulator) come here.
    """
    from edgekit.runtimes.emulated import EmulatedSession

    opts = dict(options or {})
    if "device" in opts and device is not None and opts["device"] != device:
        raise InvalidOptionError(f"device given twice ({device!r} and option device={opts['device']!r}); pass one.")
    opts["device"] = device if device is not None else opts.get("device")
    opts["strict"] = strict or bool(opts.get("strict", False))
    rt = get_runtime(runtime)
    session = rt.open(model, accelerator=accelerator, threads=threads, precision=precision, options=opts)
    if not isinstance(session, EmulatedSession):  # a plugin that declares "estimate" without being the emulator
        session.close()
        raise UnknownRuntimeError(f"runtime {runtime!r} ({type(rt).__name__}) is not edgekit's device emulator; pass "
                                  f"emulate=True without runtime=, or load it without emulate.")
    emu = session.emulation
    notes = tuple(emu.explain()) + tuple(emu.notes) + (
        f"reference runtime: {session.options['reference']} on this host's CPU",)
    return Decision(session, Placement(
        runtime=rt.name, version=rt.version(), accelerator=session.accelerator, precision=session.precision,
        options=dict(session.options), device=emu.profile.name, target=emu.target.describe(),
        trail=tuple(Rejection(t, r) for t, r in emu.trail), emulated=True, notes=notes))
