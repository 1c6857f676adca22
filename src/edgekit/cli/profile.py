"""``edgekit profile``: measure a model on this device across runtimes, in one comparable report.

Exit codes (:mod:`edgekit.cli.codes`), the first that applies:

* 130 INTERRUPTED: Ctrl-C; the partial report is still written;
* 4 NOTHING: no row was measured (every one errored, crashed, timed out or was skipped);
* 1 FAILED: ``--compare`` found a p50 regression beyond ``--tolerance`` (or a row measured in the
  baseline failed now);
* 3 INCOMPLETE: with ``--strict``, some rows could not be measured; without ``--strict`` such a
  run exits 0 and says on stderr how many rows could not be measured;
* 2 USAGE: usage or input error (``--emulate`` without ``--device`` is refused before measuring;
  ``--fleet`` without ``--device``; a fleet head that does not answer). With ``--fleet``, the
  ``--input``/``--shape``/``--runtime`` a local run would refuse are refused before anything is
  shipped, with the same message; an input error only the nodes can see is exit code 2 when every
  device that ran failed with that same error (the report with its ``failed`` rows is still
  written to ``-o``, never to stdout);
* 0 OK: every row was measured.

The report is written (stdout or ``-o``) whatever the code.

With ``--fleet HEAD --device A --device B`` (or ``--device all``) the model, its external data and
the ``--input`` files are shipped to a node of each device (``edgekit agent``), the normal profiler
runs there, devices in parallel, and the rows are merged into one report with a device column
(:func:`edgekit.fleet.profile`). A device with no node is an ``unavailable`` row, one whose job
failed a ``failed`` row: they count as rows not measured, for the codes above as for a local run.

Example::

    $ edgekit profile                                   # the bundled sample, every installed runtime
    $ edgekit profile det.onnx --runtime all --duration 10 --format html -o report.html
    $ edgekit profile face.tflite --runtime litert --threads 4 --input input=frame.npy --format json > run.json
    $ edgekit profile face.tflite --compare baseline.json --tolerance 5%
    $ edgekit profile det.onnx --fleet 10.0.0.5:6379 --device all --format json -o fleet.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edgekit.cli.codes import FAILED, INCOMPLETE, INTERRUPTED, NOTHING, OK
from edgekit.cli.output import FORMATS as TABLE_FORMATS
from edgekit.cli.output import output_options
from edgekit.cli.params import Shapes, fleet_options, shape_option

#: profile renders an HTML report too
FORMATS = (*TABLE_FORMATS, "html")


def _precision(items: tuple[str, ...]) -> str | dict[str, str] | None:
    """``-p fp16`` -> ``"fp16"``; ``-p openvino=bf16 -p mnn=fp32`` -> a dict; a name that is no precision is a
    usage error before anything is measured."""
    from edgekit.runtime import PRECISIONS

    if not items:
        return None
    per: dict[str, str] = {}
    for item in items:
        name, sep, prec = item.rpartition("=")
        if prec.lower() not in PRECISIONS:
            raise click.BadParameter(f"{item!r}: {prec!r} is not a precision; expected one of {list(PRECISIONS)}, "
                                     "or RUNTIME=PRECISION.", param_hint="'--precision'")
        if not sep:
            if len(items) > 1:
                raise click.BadParameter(f"{item!r}: with several --precision, each must be RUNTIME=PRECISION.",
                                         param_hint="'--precision'")
            return prec.lower()
        per[name] = prec.lower()
    return per


class _Progress:
    """Progress on stderr: a rich bar on a terminal, one plain line per runtime otherwise."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.quiet = quiet
        self.live = not quiet and self.console.is_terminal
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description:<24}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), console=self.console, transient=True)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, ev: dict[str, Any]) -> None:
        kind, jid = ev["event"], ev.get("id", "")
        if self.quiet:
            return
        if kind == "start":
            if self.bar is not None:
                self.tasks[jid] = self.bar.add_task(jid, total=1.0, info="starting")
            else:
                self.console.print(f"[{ev['index'] + 1}/{ev['total']}] {jid}: starting", highlight=False)
        elif kind == "progress":
            stage = ev.get("stage", "")
            if self.bar is not None and jid in self.tasks:
                done = min(ev.get("elapsed", 0.0) / ev["budget"], 0.99) if ev.get("budget") else None
                info = stage + (f" n={ev['n']} p50={ev['p50_ms']:.3g} ms" if "n" in ev else "")
                self.bar.update(self.tasks[jid], info=info, **({"completed": done} if done is not None else {}))
            elif self.bar is None and stage in ("measuring",) and "n" not in ev:
                self.console.print(f"    {jid}: measuring", highlight=False)
        elif kind == "done":
            r = ev["result"]
            what = f"p50 {r.latency.p50:.4g} ms (n={r.latency.n})" if r.latency else (r.error or r.status)
            if self.bar is not None and jid in self.tasks:
                self.bar.update(self.tasks[jid], completed=1.0, info=f"{r.status}: {what}"[:70])
            else:
                self.console.print(f"    {jid}: {r.status}: {what}", highlight=False)


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _render(report: Any, fmt: str, output: str | None) -> None:
    from edgekit.profiling import render

    if fmt == "json":
        _write(report.to_json(), output)
    elif fmt == "csv":
        _write(render.to_csv(report), output)
    elif fmt == "markdown":
        _write(render.to_markdown(report), output)
    elif fmt == "html":
        from edgekit.profiling.html import to_html

        _write(to_html(report), output)
    else:
        from rich.console import Console

        if output:
            with open(output, "w", encoding="utf-8") as f:
                render.print_table(report, Console(file=f, width=200, no_color=True))
        else:
            console = Console()
            if not console.is_terminal:
                console = Console(width=160)
            render.print_table(report, console)


@click.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@click.option("--device", "-d", "devices", multiple=True, help="Device profile: a name, a .toml path, or 'auto'. "
              "Each usable target of the profile is measured. With --fleet: a device of the fleet to profile on "
              "(repeatable), or 'all' for one job per distinct device.")
@fleet_options("Profile", "one merged report with a device column")
@click.option("--runtime", "-r", "runtimes", multiple=True, help="Runtime to measure (repeatable), or 'all' to list "
              "every registered one (not installed ones as skipped rows). Default: every installed runtime that "
              "reads the model.")
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None,
              help="Threads per runtime (default: all cores).")
@click.option("--precision", "-p", multiple=True, help="fp32|fp16|bf16|int8, or RUNTIME=PRECISION (repeatable).")
@click.option("--duration", type=click.FloatRange(min=0.0), default=3.0, show_default=True,
              help="Time budget per runtime for the timed runs, seconds; stops earlier when the p50's 95% CI is "
                   "within ±2%.")
@click.option("--ci", "ci_tol", default="2%", show_default=True,
              help="Stop a runtime early when its p50's 95% CI is within ± this (2% or 0.02); 0: use the whole "
                   "--duration.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Warm-up runs.")
@click.option("--input", "-i", "inputs", multiple=True, help="NAME=FILE.npy, FILE.npz, or [NAME=]IMAGE (png/jpg…, "
              "resized to the input). Default: random data, seed --seed.")
@shape_option("The shape of random data for an input with dynamic dimensions (repeatable; default: batch 1, "
              "image height/width 224, others 1).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@output_options(formats=FORMATS)
@click.option("--compare", "baseline", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A JSON report of an earlier run: exit code 1 when a p50 regressed beyond --tolerance.")
@click.option("--tolerance", default="10%", show_default=True, help="Allowed p50 slowdown for --compare (10% or 0.1).")
@click.option("--timeout", type=click.FloatRange(min=1.0), default=120.0, show_default=True,
              help="Seconds per runtime (load + measure) before its process is killed and reported as a timeout.")
@click.option("--reference", default=None, help="Runtime (or result id) whose outputs the others are compared with. "
              "Default: the format's reference runtime (onnxruntime for ONNX, litert for TFLite).")
@click.option("--rtol", type=float, default=None, help="Parity: allowed max |out - ref| relative to max |ref| of "
              "each output (default 2e-4).")
@click.option("--atol", type=float, default=None, help="Parity: absolute floor of that allowance (default 1e-6).")
@click.option("--no-op-profile", is_flag=True, help="Skip the per-operator profile.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--schema", is_flag=True, help="Print the JSON Schema of the report and exit.")
@click.option("--emulate", is_flag=True, help="With --device: also print the device latency predicted by the "
              "emulated backend's latency model beside the latency measured on this host.")
@click.option("--strict", is_flag=True, help="Exit with code 3 when some rows could not be measured (error, crash, "
              "timeout, skipped); without it such a run exits 0 and says so on stderr.")
def profile(model: str | None, devices: tuple[str, ...], fleet: str | None, unavailable_after: float,
            runtimes: tuple[str, ...], threads: int | None,
            precision: tuple[str, ...], duration: float, ci_tol: str, warmup: int, inputs: tuple[str, ...],
            shapes: Shapes, seed: int, fmt: str,
            output: str | None, baseline: str | None, tolerance: str, timeout: float, reference: str | None,
            atol: float | None, rtol: float | None, no_op_profile: bool, quiet: bool, schema: bool,
            emulate: bool = False, strict: bool = False) -> None:
    """Measure MODEL (default: the bundled sample CNN, ONNX and TFLite) on every runtime, each in its own process.

    Reports load time, cold first inference, warm latency (min/p50/p90/p99/max/mean/std), throughput, memory,
    FLOPs and GFLOP/s, placement, top operators and output parity against a reference runtime.
    """
    from edgekit.profiling.compare import compare, parse_tolerance, print_compare
    from edgekit.profiling.engine import profile as run_profile
    from edgekit.profiling.inputs import parse_input_args
    from edgekit.profiling.parity import ATOL, RTOL
    from edgekit.profiling.results import ProfileReport

    if schema:
        from edgekit.profiling.schema import SCHEMA

        _write(json.dumps(SCHEMA, indent=2) + "\n", output)
        return
    from edgekit.profiling.stats import StoppingRule

    if fleet is None and len(devices) > 1:
        raise click.UsageError("--device names one device profile here; several --device are for --fleet HEAD "
                               "(profile on each device of a fleet).")
    device = devices[0] if devices else None
    if fleet is not None and not devices:
        raise click.UsageError("--fleet needs the devices to profile on: --device NAME (repeatable) or --device all "
                               "(one job per distinct device of the fleet).")
    if fleet is not None and emulate:
        raise click.UsageError("--emulate predicts a device's latency on this host; with --fleet the devices measure "
                               "themselves: drop --emulate.")
    if emulate and (not device or not model):  # refused before anything is measured
        raise click.UsageError("--emulate needs a MODEL and --device (the profile whose latency is predicted), "
                               "e.g. edgekit profile det.onnx --device snapdragon-8-gen-3 --emulate.")
    tol = parse_tolerance(tolerance)
    rule = StoppingRule(rel_tol=parse_tolerance(ci_tol))
    base = ProfileReport.read(baseline) if baseline else None
    kwargs: dict[str, Any] = {
        "runtimes": list(runtimes) or None, "threads": threads, "precision": _precision(precision),
        "duration": duration, "warmup": warmup, "shapes": dict(shapes), "seed": seed, "timeout": timeout,
        "op_profile": not no_op_profile, "reference": reference, "atol": ATOL if atol is None else atol,
        "rtol": RTOL if rtol is None else rtol, "rule": rule}
    if fleet is not None:
        report, refused = _profile_fleet(model, fleet, devices, parse_input_args(inputs), unavailable_after, quiet,
                                         kwargs)
        if refused is not None and not report.partial:  # every device refused what was passed: as a local run
            if output:
                _render(report, fmt, output)
            raise refused
    else:
        warned = _warn_threads(threads)
        with _Progress(quiet) as progress:
            report = run_profile(model, device=device, inputs=parse_input_args(inputs), on_event=progress, **kwargs)
        if not warned:
            _warn_row_threads(report)
    _render(report, fmt, output)
    to_stderr = fmt != "table" and not output  # keep stdout machine-readable
    if emulate and model and device:  # predicted device latency (edgekit.emulation) beside the measured host latency
        from edgekit.emulation.summary import predicted_vs_measured

        # the shapes the run measured (--shape, --input or the defaults) fix the model's dynamic inputs
        click.echo("\n".join(predicted_vs_measured(model, device, report)), err=to_stderr)
    regressed = False
    if base is not None:
        from rich.console import Console

        from edgekit.profiling.compare import differences

        name = Path(baseline or "baseline").name
        differ = differences(report, base)
        if differ:
            click.echo(f"warning: {name} was measured differently: " + "; ".join(differ)
                       + ". A change in latency may come from these, not from the model or runtime.", err=True)
        rows = compare(report, base, tol)
        print_compare(rows, tol, Console(stderr=to_stderr), name)
        regressed = any(r.regressed for r in rows)
    if report.partial and not quiet:
        click.echo("interrupted: partial results written.", err=True)
    code = exit_code(report, regressed=regressed, strict=strict)
    if code != OK:
        raise SystemExit(code)


def _profile_fleet(model: str | None, address: str, devices: tuple[str, ...], inputs: list[Any],
                   unavailable_after: float, quiet: bool, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """``--fleet``: the merged report of every device (one line per device on stderr as it finishes), and the
    usage error every device that ran failed with, if they did (:func:`edgekit.fleet.jobs.usage_error`)."""
    from edgekit.fleet import profile as fleet_profile
    from edgekit.fleet.jobs import usage_error

    outcomes: list[Any] = []

    def said(o: Any) -> None:
        outcomes.append(o)
        if quiet:
            return
        if o.ok:
            rows = o.value.results
            done = sum(1 for r in rows if r.measured)
            click.echo(f"{o.device}: {done} of {len(rows)} row{'s' if len(rows) != 1 else ''} measured on host "
                       f"{o.host} in {o.seconds:.1f} s", err=True)
        else:
            click.echo(f"{o.device}: {o.status}: {o.reason}", err=True)

    if not quiet:
        click.echo(f"profiling on {', '.join(devices)} of the fleet at {address} ...", err=True)
    report = fleet_profile(model, address, list(devices), inputs=inputs, unavailable_after=unavailable_after,
                           on_outcome=said, **kwargs)
    return report, usage_error(outcomes)


def exit_code(report: Any, *, regressed: bool = False, strict: bool = False) -> int:
    """The exit code of a finished run (see the module docstring); says on stderr why rows are missing."""
    missing = [r for r in report.results if not r.measured]
    total = len(report.results)
    if report.partial:
        return INTERRUPTED
    if not total:
        click.echo(f"nothing was measured: no runtime (or device target) chosen reads this model; `edgekit runtimes` "
                   f"lists what reads which format. Exit code {NOTHING}.", err=True)
        return NOTHING
    if len(missing) == total:
        click.echo(f"no row was measured: {_count(missing, total)} (the report says why); exit code {NOTHING}.",
                   err=True)
        return NOTHING
    if missing:
        click.echo(f"{_count(missing, total)}: {', '.join(r.id for r in missing)}"
                   + (f"; exit code {INCOMPLETE} (--strict)." if strict else
                      f". --strict makes such a run exit with code {INCOMPLETE}."), err=True)
    if regressed:
        return FAILED
    return INCOMPLETE if missing and strict else OK


def _count(missing: list[Any], total: int) -> str:
    return f"{len(missing)} of {total} row{'s' if total != 1 else ''} could not be measured"


def _cores() -> int:
    """The CPU cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _oversubscribed(what: str, threads: int, cores: int) -> None:
    click.echo(f"warning: {what} {threads} threads on this host's {cores} cores: the threads oversubscribe the cores, "
               f"so the latency measured is not what a device with {threads} cores sees. Pass --threads {cores} (or "
               "fewer) to measure this host.", err=True)


def _warn_threads(threads: int | None) -> bool:
    """Warn (once) before measuring when ``--threads`` is more than the cores here; True when it warned."""
    cores = _cores()
    if threads is not None and threads > cores:
        _oversubscribed("--threads asks for", threads, cores)
        return True
    return False


def _warn_row_threads(report: Any) -> None:
    """Warn once when rows ran with more threads than cores without --threads (a device profile's setting)."""
    cores = _cores()
    over = [r for r in report.results if r.threads is not None and r.threads > cores]
    if over:
        _oversubscribed(f"{', '.join(r.id for r in over)} ran, as the device profile sets, with",
                        max(r.threads for r in over), cores)
