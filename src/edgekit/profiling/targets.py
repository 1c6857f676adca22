"""The rows ``edgekit profile`` measures (:class:`Job`), and ``--device``: one row per target of a device profile.

A :class:`Job` is a runtime (and optionally a device target) on one model file;
:func:`resolve_runtime` finds a runtime's adapter without letting a broken plugin stop the run,
and :func:`pick_model` chooses the model file it measures. ``engine.plan`` builds the jobs of a
plain run from these; :func:`device_jobs` those of a ``--device`` run.

Each target (runtime + accelerator + precision, in the profile's preference order) becomes a
job on the first model file its runtime reads. The worker loads it through
``edgekit.load(model, device=profile, runtime=..., accelerator=..., precision=...)``, so the
placement (and its trail) is the device profile's own. A target whose runtime reads none of
the model files is no candidate, as in placement: it has no row unless its runtime is named
(``runtimes``), then a skipped row labelled with the runtime's own format. A target whose
runtime is not installed is a skipped row with the reason; one whose accelerator is absent
here is skipped by the worker, with the runtime's own explanation.

Example::

    jobs = device_jobs(models, "raspberry-pi-5", runtimes=None, precision=None)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import InvalidOptionError, option
from edgekit.models.formats import ModelFile

__all__ = ["Job", "device_jobs", "label_model", "own_format", "pick_model", "resolve_runtime", "unreadable"]


@dataclass
class Job:
    """One row to measure: a runtime (and optionally a device target) on one model file."""

    id: str
    runtime: str
    model: ModelFile
    accelerator: str | None = None
    precision: str | None = None
    device: str | None = None
    target: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    skip: str | None = None  # reason not to run it
    format: str | None = None  # the row's format label when it is not the model's (a runtime that reads none)

    @property
    def label_format(self) -> str:
        """The format the row shows: the model file's, or the runtime's own when it reads none of the files."""
        return self.format or self.model.format


def resolve_runtime(name: str) -> tuple[Any, str]:
    """The adapter, or None and why (not registered, or its plugin fails to import).

    >>> resolve_runtime("no-such-runtime")
    (None, "runtime 'no-such-runtime' is not registered (no plugin provides it)")
    """
    from edgekit.registry import get_runtime, runtime_names

    if name not in runtime_names():
        return None, f"runtime {name!r} is not registered (no plugin provides it)"
    try:
        return get_runtime(name), ""
    except Exception as exc:  # noqa: BLE001 - a broken plugin is a skipped row, as the registry makes it a warning
        return None, f"runtime plugin {name!r} failed to load: {type(exc).__name__}: {exc}"


def pick_model(rt: Any, models: list[ModelFile]) -> ModelFile | None:
    """The first of ``models`` the runtime ``rt`` reads natively, else the first it converts, else None.

    Example: ``pick_model(get_runtime("litert"), [onnx_file, tflite_file])`` is ``tflite_file``.
    """
    native = [m for m in models if m.format in rt.info.formats]
    converted = [m for m in models if m.format in rt.info.converts]
    return next(iter(native or converted), None)


def own_format(runtime: Any) -> str | None:
    """The format a runtime (an adapter, or a name looked up in the catalog) reads natively, first of them.

    >>> own_format("litert")
    'tflite'
    """
    if isinstance(runtime, str):
        from edgekit.catalog import runtime_info

        info = runtime_info(runtime)
        formats = info.formats if info is not None else ()
    else:
        formats = runtime.info.formats
    return formats[0] if formats else None


def unreadable(name: str, models: list[ModelFile], reads: Sequence[str]) -> str:
    """Why the runtime ``name`` has no model file to measure: what it was given and what it reads."""
    given = ", ".join(sorted({m.format for m in models}))
    return f"{name} cannot read {given} models (it reads {', '.join(reads) or 'no known format'})"


def label_model(name: str, models: list[ModelFile]) -> ModelFile:
    """The model file a row of runtime ``name`` is about when its adapter cannot be loaded: by the catalog."""
    from edgekit.catalog import runtime_info

    info = runtime_info(name)
    reads = (info.formats + info.converts) if info is not None else ()
    return next((m for m in models if m.format in reads), models[0])


def device_jobs(models: list[ModelFile], device: str, *, runtimes: Sequence[str] | None,
                precision: str | Mapping[str, str] | None) -> list[Job]:
    """Jobs for every target of ``device`` (a profile name, a ``.toml`` path or ``"auto"``)."""
    from edgekit.devices import detect, get_profile

    profile = detect().profile if device == "auto" else get_profile(device)
    where = profile.name if device == "auto" else device  # what the worker loads: a name, or the user's .toml path
    wanted = [r for r in (runtimes or []) if r != "all"]
    multi = len(models) > 1
    jobs: list[Job] = []
    ids: set[str] = set()
    for t in profile.targets:
        if wanted and t.runtime not in wanted:
            continue
        user_prec = precision.get(t.runtime) if isinstance(precision, Mapping) else precision
        base = f"{t.runtime}/{t.accelerator}" + ("" if t.precision == "fp32" else f"/{t.precision}")
        rt, why = resolve_runtime(t.runtime)
        if rt is None:
            job = Job(base, t.runtime, label_model(t.runtime, models), accelerator=t.accelerator,
                      precision=user_prec or t.precision, device=where, target=t.describe(), skip=why)
        else:
            m = pick_model(rt, models)
            job = Job(base + (f"/{m.format}" if multi and m is not None else ""), t.runtime, m or models[0],
                      accelerator=t.accelerator, precision=user_prec or t.precision, device=where,
                      target=t.describe())
            if m is None and not wanted:  # not a candidate for these files (placement skips it too): no row
                continue
            if m is None:
                job.skip, job.format = unreadable(t.runtime, models, rt.formats), own_format(rt)
            elif not rt.is_installed():
                job.skip = f"not installed: {rt.info.install_hint}"
        if job.id in ids:
            job.id = f"{job.id}#{t.index}"
        ids.add(job.id)
        jobs.append(job)
    if wanted and not any(t.runtime in wanted for t in profile.targets):
        raise InvalidOptionError(
            f"device {profile.name!r} has no target with {option('runtime', ', '.join(wanted))}; its targets run "
            f"{sorted({t.runtime for t in profile.targets})}. Name one of those, or leave out {option('runtime')} to "
            "measure every target of the device.")
    return jobs
