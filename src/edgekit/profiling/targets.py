"""``edgekit profile --device``: one row per target of the device profile.

Each target (runtime + accelerator + precision, in the profile's preference order) becomes a
job on the first model file its runtime reads. The worker loads it through
``edgekit.load(model, device=profile, runtime=..., accelerator=..., precision=...)``, so the
placement (and its trail) is the device profile's own. A target whose runtime is not
installed, or whose runtime reads none of the model files, is a skipped row with the
reason; one whose accelerator is absent here is skipped by the worker, with the runtime's
own explanation.

Example::

    jobs = device_jobs(models, "raspberry-pi-5", runtimes=None, precision=None)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgekit.models.formats import ModelFile

__all__ = ["device_jobs"]


def _runtime(name: str) -> tuple[Any, str]:
    """The adapter, or None and why (not registered, or its plugin fails to import)."""
    from edgekit.registry import get_runtime, runtime_names

    if name not in runtime_names():
        return None, f"runtime {name!r} is not registered (no plugin provides it)"
    try:
        return get_runtime(name), ""
    except Exception as exc:  # a broken plugin is a skipped row, as the registry makes it a warning
        return None, f"runtime plugin {name!r} failed to load: {type(exc).__name__}: {exc}"


def device_jobs(models: list[ModelFile], device: str, *, runtimes: Sequence[str] | None,
                precision: str | Mapping[str, str] | None) -> list[Any]:
    """Jobs for every target of ``device`` (a profile name, a ``.toml`` path or ``"auto"``)."""
    from edgekit.devices import detect, get_profile
    from edgekit.profiling.engine import Job, _pick_model

    profile = detect().profile if device == "auto" else get_profile(device)
    wanted = [r for r in (runtimes or []) if r != "all"]
    multi = len(models) > 1
    jobs: list[Job] = []
    ids: set[str] = set()
    for t in profile.targets:
        if wanted and t.runtime not in wanted:
            continue
        user_prec = precision.get(t.runtime) if isinstance(precision, Mapping) else precision
        base = f"{t.runtime}/{t.accelerator}" + ("" if t.precision == "fp32" else f"/{t.precision}")
        rt, why = _runtime(t.runtime)
        if rt is None:
            job = Job(base, t.runtime, models[0], accelerator=t.accelerator, precision=user_prec or t.precision,
                      device=profile.name, target=t.describe(), skip=why)
        else:
            m = _pick_model(rt, models)
            job = Job(base + (f"/{m.format}" if multi and m is not None else ""), t.runtime, m or models[0],
                      accelerator=t.accelerator, precision=user_prec or t.precision, device=profile.name,
                      target=t.describe())
            if m is None:
                job.skip = f"{t.runtime} reads none of: {', '.join(sorted({x.format for x in models}))}"
            elif not rt.is_installed():
                job.skip = f"not installed: {rt.info.install_hint}"
        if job.id in ids:
            job.id = f"{job.id}#{t.index}"
        ids.add(job.id)
        jobs.append(job)
    return jobs
