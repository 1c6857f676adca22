"""``edgekit devices``: list device profiles, show one in full, detect this host.

Example::

    $ edgekit devices                       # name, kind, title, targets in order
    $ edgekit devices show coral-edgetpu    # every field, each hardware figure with its source
    $ edgekit devices detect --format json  # matched profile, why, accelerators per runtime
"""

from __future__ import annotations

import tempfile
from pathlib import Path
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


@devices.command()
@click.argument("device")
@click.option("--from", "sources", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="figures .toml (devices/emulation/calibration/ layout), an `edgekit profile --device DEVICE "
                   "--format json` report measured on the device, or a fleet report (`profile --fleet`: its DEVICE "
                   "rows; models not at the report's paths are looked up by name and sha256 beside the report and "
                   "here); repeat it to pool several")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), default=None,
              help="user profile to write (default ./DEVICE-calibrated.toml); its fitted spec goes to emulation/ "
                   "beside it")
@click.option("--force", is_flag=True, help="overwrite an existing --out")
@click.option("--runtime", default=None, help="calibrate to the figures of this published runtime (default: the "
                                              "runtime of the device's targets on that unit)")
@output_options(output=False)
def calibrate(device: str, sources: tuple[str, ...], out: str | None, force: bool, runtime: str | None,
              fmt: str) -> None:
    """Fit DEVICE's latency parameters to published figures or to a profile report measured on it.

    Prints each figure predicted by the hand-set parameters and, leaving its network out, by fitted ones;
    writes a user profile that extends DEVICE with the fitted values and their provenance.
    """
    raise SystemExit(_run_calibration(device, sources, out, force, runtime, fmt))


def _samples(profile: DeviceProfile, source: Path, runtime: str | None) -> tuple[list[Any], list[str], str]:
    """``(samples, skipped reasons, data label)`` from a figures file or a profile report."""
    import json

    from edgekit.emulation.figures import read_figures
    from edgekit.emulation.samples import figure_samples, report_samples, select_metric, select_runtime
    from edgekit.errors import InvalidOptionError
    from edgekit.testing.networks import NETWORKS, graph_builder

    if source.suffix == ".json":
        try:
            report = json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidOptionError(f"--from {source}: cannot read it as a JSON report ({exc}); expected the output "
                                     f"of `edgekit profile --device {profile.name} --format json`.") from exc
        if not isinstance(report, dict) or not isinstance(report.get("provenance"), dict):
            raise InvalidOptionError(f"--from {source}: not an edgekit profile report (no 'provenance' object); "
                                     f"expected the output of `edgekit profile --device {profile.name} --format json`.")
        from edgekit.errors import ReportError
        from edgekit.profiling.results import ProfileReport

        try:  # the report's own schema, strictly: a hand-edited or truncated file is named, not a traceback
            ProfileReport.from_dict(report)
        except ReportError as exc:
            raise InvalidOptionError(f"--from {source}: {exc}") from exc
        try:
            samples, skipped = report_samples(report, profile, search=(source.parent, Path.cwd()))
        except ValueError as exc:
            raise InvalidOptionError(f"--from {source}: {exc}") from exc
        return samples, skipped, f"{source.name} (edgekit profile report, p50 per model)"
    figures = read_figures(source, named_by_file=False)
    other = sorted({f.device for f in figures} - {profile.name})
    if other:
        raise InvalidOptionError(f"--from {source}: its figures are for device {other[0]!r}, not {profile.name!r}; "
                                 f"pass figures of {profile.name} (or calibrate {other[0]}).")
    known = [f for f in figures if f.network in NETWORKS]
    skipped = [f"{f.where}: edgekit cannot build network {f.network!r} (buildable: {sorted(NETWORKS)})"
               for f in figures if f.network not in NETWORKS]
    kept, other_rt = select_runtime(known, profile, runtime)
    kept, other_metric = select_metric(kept)
    skipped += [why for _, why in other_rt + other_metric]
    samples, bad = figure_samples(kept, profile, graph_builder(Path(tempfile.mkdtemp(prefix="edgekit-calibrate-"))))
    skipped += [why for _, why in bad]
    return samples, skipped, f"{source.name} ({len(samples)} published figures)"


def _run_calibration(device: str, sources: tuple[str, ...], out: str | None, force: bool, runtime: str | None,
                     fmt: str) -> int:
    import datetime as dt

    from edgekit._version import __version__
    from edgekit.cli.codes import INCOMPLETE, NOTHING, OK
    from edgekit.emulation.calibrate import cross_validate, fit, predict_ms
    from edgekit.emulation.calibration_toml import spec_table
    from edgekit.emulation.spec import accelerator_spec, hand_set
    from edgekit.errors import InvalidOptionError
    from edgekit.tomlfile import toml_text

    profile = get_profile(device)
    target = Path(out or f"{profile.name}-calibrated.toml")
    if target.suffix != ".toml":
        raise InvalidOptionError(f"-o {target}: expected a .toml path for the user profile.")
    if target.exists() and not force:
        raise InvalidOptionError(f"-o {target} exists: pass --force to overwrite it, or another -o path.")
    samples: list[Any] = []
    skipped: list[str] = []
    labels: list[str] = []
    for source in sources:
        got, reasons, label = _samples(profile, Path(source), runtime)
        samples += got
        skipped += reasons
        labels.append(label)
    data = "; ".join(labels)
    for why in skipped:
        click.echo(f"skipped: {why}", err=True)
    if not samples:
        click.echo(f"nothing to calibrate {profile.name} with: no usable figure or row in {', '.join(sources)}.",
                   err=True)
        return NOTHING
    rows: list[dict[str, Any]] = []
    tables: dict[str, dict[str, Any]] = {}
    code = OK
    for unit in dict.fromkeys(s.unit for s in samples):
        mine = [s for s in samples if s.unit == unit]
        family, base = hand_set(accelerator_spec(profile, unit))
        result = fit(mine, base)
        cv = cross_validate(mine, base) if len({s.network for s in mine}) > 1 else None
        after = cv.after if cv else tuple(
            predict_ms(s, result.params, result.throughput_ratio, result.postprocess_ms) / s.ms for s in mine)
        before = cv.before if cv else tuple(predict_ms(s, base) / s.ms for s in mine)
        for s, b, a in zip(mine, before, after, strict=True):
            rows.append({"unit": unit, "network": s.network, "precision": s.precision, "runtime": s.label,
                         "metric": s.metric, "measured ms": round(s.ms, 4), "before": round(b, 3),
                         "after" + (" (left out)" if cv else " (in-sample)"): round(a, 3)})
        summ = cv.summary() if cv else None
        click.echo(f"{profile.name} {unit}: fitted {', '.join(f'{k}={v:.4g}' for k, v in result.fitted.items())}; "
                   f"in-sample |error| median {result.median_error:.0%}, worst {result.worst_error:.0%}"
                   + (f"; leave-one-network-out median {summ['before_median']:.0%} -> {summ['after_median']:.0%}, "
                      f"worst {summ['before_worst']:.0%} -> {summ['after_worst']:.0%}" if summ else
                      "; one network: no cross-validation"), err=True)
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        if not result.reached:
            code = INCOMPLETE
            continue
        tables[unit] = spec_table(family, result, cv, data=data, runtime=mine[0].label,
                                  date=dt.date.today().isoformat(), version=__version__)
    emit(rows, fmt=fmt, output=None, title=f"calibration of {profile.name}: predicted / measured",
         footer="before: hand-set parameters; after: fitted without the network (leave-one-network-out)")
    if code != OK:
        click.echo(f"not written: the fit of {profile.name} does not reach the data (see the warning); "
                   f"{target} is unchanged.", err=True)
        return code
    _write_profile(profile, target, tables, toml_text)
    click.echo(f"wrote {target} (extends {profile.name}); use it with --device {target}", err=True)
    return OK


def _write_profile(profile: DeviceProfile, target: Path, specs: dict[str, dict[str, Any]],
                   toml_text: Any) -> None:
    """The user profile: ``extends`` the shipped one, its calibrated units pointing at spec files in emulation/."""
    from edgekit.tomlfile import read_toml

    assert profile.path is not None
    raw = read_toml(profile.path)
    folder = target.parent / "emulation"
    folder.mkdir(parents=True, exist_ok=True)
    units = []
    for u in raw.get("units", []):
        if u.get("name") in specs:
            spec_path = folder / f"{target.stem}-{u['name']}.toml"
            spec_path.write_text(toml_text(specs[u["name"]], header=f"Latency parameters of {profile.name}'s "
                                           f"{u['name']} fitted by `edgekit devices calibrate`."))
            units.append({**u, "emulation": f"emulation/{spec_path.name}"})
    data = {"name": target.stem, "extends": profile.name, "kind": profile.kind,
            "title": f"{profile.title} (latency parameters calibrated)", "units": units,
            "targets": raw.get("targets", [])}
    target.write_text(toml_text(data, header=f"{target.stem}: {profile.name} with latency parameters fitted by "
                                              "`edgekit devices calibrate` ([[targets]] are copied: a profile "
                                              "that extends another lists its own)."))
