"""``edgekit devices``: list device profiles, show one in full, detect this host.

Example::

    $ edgekit devices                       # name, kind, title, targets in order
    $ edgekit devices show coral-edgetpu    # every field, each hardware figure with its source
    $ edgekit devices detect --format json  # matched profile, why, accelerators per runtime
"""

from __future__ import annotations

from typing import Any

import click

from edgekit.cli.output import emit, output_options
from edgekit.devices import DeviceProfile, detect, get_profile, list_profiles

__all__ = ["devices"]


def _target_row(t: Any) -> str:
    return f"{t.runtime}/{t.accelerator} {t.precision}"


def _targets(p: DeviceProfile) -> list[str]:
    """Each target once: with the unit it runs on when the profile has several (CoreML on the ANE and on the GPU)."""
    return [_target_row(t) + (f" on {t.unit}" if len(p.units) > 1 else "") for t in p.targets]


@click.group(invoke_without_command=True)
@output_options
@click.pass_context
def devices(ctx: click.Context, fmt: str, output: str | None) -> None:
    """Device profiles: built-in ones and those in $EDGEKIT_DEVICES folders."""
    if ctx.invoked_subcommand is not None:
        return
    rows = [{"name": p.name, "kind": p.kind, "title": p.title, "targets (in order)": _targets(p)}
            for p in list_profiles()]
    emit(rows, fmt=fmt, output=output, title="edgekit device profiles",
         footer="`edgekit devices show NAME` for units, figures and sources; `edgekit devices detect` for this host.")


def profile_rows(p: DeviceProfile) -> list[dict[str, Any]]:
    """One profile as section/field/value/source rows (every hardware figure carries its source)."""
    rows: list[dict[str, Any]] = []

    def add(section: str, fld: str, value: Any, source: str | None = None) -> None:
        if value not in (None, "", (), [], {}):
            rows.append({"section": section, "field": fld, "value": value, "source": source})

    for fld in ("name", "kind", "title", "vendor", "extends"):
        add("profile", fld, getattr(p, fld))
    add("profile", "file", str(p.path) if p.path else None)
    for note in p.notes:  # sentences: one row each (a list cell would join them with ", ")
        add("profile", "note", note)
    for u in p.units:
        sec = f"unit {u.name}"
        add(sec, "kind", u.kind)
        add(sec, "title", u.title)
        for prec, gops in u.peak_gops.items():
            add(sec, f"peak {prec} (GOPS)", gops, u.sources.get("peak_gops"))
        add(sec, "bandwidth (GB/s)", u.bandwidth_gb_s, u.sources.get("bandwidth_gb_s"))
        add(sec, "memory (GB)", u.memory_gb, u.sources.get("memory_gb"))
        add(sec, "note", u.note)
    for t in p.targets:
        sec = f"target #{t.index}"
        add(sec, "run", f"{_target_row(t)} on unit {t.unit}")
        add(sec, "options", ", ".join(f"{k}={v}" for k, v in t.options.items()))
        add(sec, "delegate", t.delegate)
        add(sec, "plugin", t.plugin)
        add(sec, "note", t.note)
        if t.constraints != p.constraints:
            add(sec, "constraints", _constraints_text(t.constraints))
    add("constraints", "all targets", _constraints_text(p.constraints))
    for rule, patterns in vars(p.detect).items():
        add("detect", rule, list(patterns))
    return rows


def _constraints_text(c: Any) -> str:
    parts = []
    if c.precisions:
        parts.append(f"precisions {list(c.precisions)}")
    if c.static_shapes:
        parts.append("static shapes")
    if c.max_model_mb:
        parts.append(f"model <= {c.max_model_mb:g} MB")
    if c.max_memory_mb:
        parts.append(f"memory <= {c.max_memory_mb:g} MB")
    if c.ops:
        parts.append(f"ops: {c.ops}")
    parts.extend(c.notes)
    return _join(parts)


def _join(parts: list[str]) -> str:
    """Phrases joined with "; ", a sentence (it ends with a full stop) followed by a space instead."""
    out = ""
    for part in parts:
        out += ("" if not out else " " if out.endswith((".", "!", "?")) else "; ") + part
    return out


@devices.command()
@click.argument("name")
@output_options
def show(name: str, fmt: str, output: str | None) -> None:
    """Show profile NAME (or a path to a profile .toml) in full, with the source of each figure."""
    p = get_profile(name)
    emit(profile_rows(p), fmt=fmt, output=output, title=f"{p.name}: {p.title}")


@devices.command(name="detect")
@output_options
def detect_cmd(fmt: str, output: str | None) -> None:
    """Which profile matches this host and why; which accelerators each runtime reports here."""
    r = detect()
    rows: list[dict[str, Any]] = [{"item": "profile", "value": f"{r.profile.name} ({r.profile.title})"}]
    rows += [{"item": "because", "value": reason} for reason in r.reasons]
    rows += [{"item": "also matched", "value": f"{m.profile} (score {m.score})"} for m in r.candidates[1:]]
    for runtime, accs in r.accelerators.items():
        rows.append({"item": f"accelerators: {runtime}", "value": list(accs) if isinstance(accs, tuple) else accs})
    emit(rows, fmt=fmt, output=output, title="edgekit devices detect",
         footer="Load with device='auto' to use this profile; `edgekit devices show NAME` for its targets.")
