"""Where a model runs: the chosen runtime, accelerator, precision and options, and why.

Placement decides; :func:`edgekit.load` builds. :func:`place` returns a :class:`Decision` —
the opened session and the :class:`Placement` that explains it — by one of four strategies:

* a deployment plan (``plan=``, :mod:`edgekit.plan`): its chosen configuration, when the plan
  applies here (:func:`place_by_plan`); ``device="auto"`` uses a cached plan for the model and
  the detected device when one applies and the caller left runtime, accelerator, precision,
  threads and options to edgekit. A plan that does not apply is never used silently: a warning
  names every reason, ``Placement.trail`` keeps them, and placement falls back to what it does
  without a plan (``strict=True`` raises :class:`~edgekit.errors.PlanError` instead);
* no device profile: :func:`choose_runtime` takes the named runtime or the first installed
  one (catalog ``priority``: onnxruntime, litert, openvino, mnn, opencv) that reads the
  model's format natively, then one that converts it;
* a device profile: its targets are tried in order and each rejection is kept in
  ``Placement.trail`` (:func:`place_on_device`);
* emulation: the profile's accelerator is emulated on this CPU (:func:`place_emulated`).

Example::

    decision = place(open_model("face.tflite"), device="raspberry-pi-5")
    print(decision.placement.explain())
    decision.session.close()

    decision = place(open_model("det.onnx"), plan="plan.toml")
    decision.placement.plan       # 'plan.toml (tuned 2026-11-29 on Intel Xeon, p50 1.23 ms)'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edgekit.catalog import runtime_info
from edgekit.errors import (
    DeviceUnavailableError,
    EdgekitError,
    InvalidOptionError,
    PlanError,
    RuntimeNotInstalledError,
    UnknownRuntimeError,
    UnsupportedModelError,
    option,
)
from edgekit.models.formats import ModelFile, a_model, quantize_hint
from edgekit.plan import Plan, check
from edgekit.plan_cache import find_plan
from edgekit.registry import get_runtime, iter_runtimes
from edgekit.runtime import Runtime, Session

if TYPE_CHECKING:
    from edgekit.devices import DeviceProfile, Target

__all__ = ["Decision", "Placement", "Rejection", "choose_runtime", "place", "place_by_plan", "place_emulated",
           "place_on_device"]

logger = logging.getLogger("edgekit")

#: the runtime that emulates device profiles (edgekit.runtimes.emulated)
EMULATOR = "emulated"


@dataclass(frozen=True)
class Rejection:
    """A target that was considered and not used, with the reason."""

    target: str
    reason: str


@dataclass(frozen=True)
class Placement:
    """What actually runs the model."""

    runtime: str
    version: str | None
    accelerator: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    target: str | None = None
    trail: tuple[Rejection, ...] = ()
    emulated: bool = False
    notes: tuple[str, ...] = ()
    plan: str | None = None  # the deployment plan used: "plan.toml (tuned 2026-11-29 on <cpu>, p50 1.23 ms)"

    @property
    def fell_back(self) -> bool:
        """True when a plan or an earlier target of the device profile was rejected."""
        return bool(self.trail)

    def __str__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        dev = f" [device {self.device}]" if self.device else ""
        emu = " (emulated)" if self.emulated else ""
        return f"{self.runtime} {self.version or ''} on {self.accelerator}{emu}, {self.precision}" + (f", {opts}" if opts else "") + dev

    def explain(self) -> str:
        """A human-readable account: the chosen target and every rejected one before it."""
        lines = [f"chosen: {self}"]
        if self.target:
            lines[0] += f"  (target {self.target})"
        if self.plan:
            lines.append(f"plan: {self.plan}")
        for r in self.trail:
            lines.append(f"rejected {r.target}: {r.reason}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class Decision:
    """What placement decided: an opened session and the :class:`Placement` that explains it.

    The caller owns the session: :func:`edgekit.load` wraps it in a Predictor; anyone else closes it.
    """

    session: Session
    placement: Placement


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
    if strict and "allow_fallback" in rt.options_help:  # no switch to the CPU inside the runtime either
        options = {"allow_fallback": False, **options}
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


# --- placement on a device profile ---------------------------------------------------------------

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
            if strict and "allow_fallback" in rt.options_help:  # an adapter that may switch to the CPU on its own
                opts.setdefault("allow_fallback", False)
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
