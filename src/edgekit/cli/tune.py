"""``edgekit tune``: find the fastest configuration of a model that still matches the float32 reference here.

Exit codes (``edgekit.cli.codes``): 0 a winner was found and confirmed (its p50's 95% CI within
±2%); 2 usage or input error — inputs that do not fit the model (InputError, before anything is
measured), an existing plan file without ``--force``, an unknown runtime or device; 3 the budget ran
out before the winner was confirmed (the report and the plan name the best so far); 4 nothing to
choose: no configuration runs here and passes the accuracy gate (every candidate listed);
130 interrupted (Ctrl-C): the partial report is still printed, no plan is written.

With ``--fleet HEAD --device A --device B`` (or ``--device all``) the model is tuned on a node of
each device of the fleet (``edgekit.tuning.tune`` there, with the device's profile as
``--device``), devices in parallel, and ``-o DIR`` receives one plan per device,
``DIR/<device>.toml`` (never over an existing file without ``--force``). ``--bundle B`` instead of
MODEL ships the bundle (a folder: its regular files, a symbolic link refused; or the ``.zip``) and
tunes its model through its pre- and post-processing on each node; ``--embed`` (a folder bundle)
writes each device's plan into it as ``B/plans/<device>.toml`` as the plans arrive (with or
without ``-o``; existing plans of named devices refused before anything runs unless ``--force``,
at most ``MAX_PLANS`` plans in a bundle). ``--format html`` renders one tune report, so it is
refused with ``--fleet``, whose summary is per device (table or json). The exit code is the worst
device's: 130 interrupted; 4 when no device produced a plan; 3 when some device did not confirm
its winner, had nothing to choose, or was unavailable or failed (or its plan could not be
written); 0 when every device confirmed; 2 for a usage error, before anything is submitted.

Example::

    $ edgekit tune det.onnx --input images/ -o det.plan.toml
    $ edgekit tune face.tflite --device auto --budget 5m --format html --report tune.html
    $ edgekit tune det.onnx --objective throughput --tolerance rtol=1e-3 --format json > tune.json
    $ edgekit tune --bundle bundles/blazeface --input faces/ --device auto --embed
    $ edgekit tune --bundle ppocr-det.zip --input page.jpg --tolerance iou=0.8 -o det.plan.toml
    $ edgekit tune det.onnx --fleet 10.0.0.5:6379 --device all --budget 5m -o plans/
    $ edgekit tune --bundle bundles/blazeface --fleet 10.0.0.5:6379 --device all --input faces/ --embed
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from edgekit.cli.output import output_options
from edgekit.cli.params import Shapes, fleet_options, shape_option

#: what ``--format`` renders
FORMATS = ("table", "json", "html")


def parse_budget(text: str) -> float:
    """``"120"``, ``"120s"``, ``"2m"``, ``"1.5h"`` -> seconds.

    >>> parse_budget("2m"), parse_budget("90s"), parse_budget("45")
    (120.0, 90.0, 45.0)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h|min)?\s*", text.lower())
    if m is None or float(m[1]) <= 0:
        raise click.BadParameter(f"{text!r}: expected a positive duration such as 120s, 90, 2m or 1h.",
                                 param_hint="'--budget'")
    return float(m[1]) * {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[m[2]]


class _Progress:
    """One line per stage and per measured candidate on stderr (nothing with --quiet)."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.console = None if quiet else Console(stderr=True, highlight=False)

    def __call__(self, ev: dict[str, Any]) -> None:
        if self.console is None:
            return
        from rich.markup import escape

        if ev["event"] == "stage":
            what = ev.get("config") or ", ".join(ev.get("around") or ev.get("candidates") or [])
            if "kept" in ev:
                what = f"{ev['kept']} candidates, {ev['duration_s']:.2g} s each"
            self.console.print(escape(f"== {ev['stage']}" + (f": {what}" if what else "")))
        elif ev["event"] == "candidate":
            p50 = f"p50 {ev['p50_ms']:.4g} ms" if ev.get("p50_ms") is not None else ""
            tail = " (cached)" if ev.get("cached") else f" {ev['reason']}" if ev.get("reason") else ""
            self.console.print(escape(f"   {ev['id']} {ev['config']}: {ev['status']} {p50}{tail}"[:220]))


def _render(report: Any, fmt: str, dest: str | None) -> None:
    if fmt == "json":
        text = report.to_json()
    elif fmt == "html":
        from edgekit.tuning.report import to_html

        text = to_html(report)
    else:
        from rich.console import Console

        from edgekit.tuning.report import print_table

        if dest:
            with open(dest, "w", encoding="utf-8") as f:
                print_table(report, Console(file=f, width=200, no_color=True))
        else:
            console = Console()
            print_table(report, console if console.is_terminal else Console(width=200))
        return
    if dest:
        Path(dest).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


@click.command()
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--bundle", "-b", type=click.Path(), default=None, help="Tune a bundle's model (a folder or .zip; then "
              "no MODEL): --input images go through its pre-processing, and the gate also compares the results of "
              "its post-processing (detections: same label and box IoU >= 0.9; classification: top-1; segmentation: "
              "mask IoU >= 0.9; --tolerance iou=...). No --input: a synthetic image.")
@click.option("--embed", is_flag=True, help="With --bundle (a folder) and --device: also write the plan into the "
              "bundle as plans/<device>.toml (--force replaces one). With --fleet: each device's plan, as it arrives.")
@click.option("--device", "-d", "devices", multiple=True, help="Device profile: a name, a .toml path, or 'auto'. Its "
              "targets are the runtimes searched. Default: every installed runtime that reads the model, on this "
              "host. With --fleet: a device of the fleet to tune on (repeatable), or 'all'.")
@fleet_options("Tune", "-o DIR receives DIR/<device>.toml")
@click.option("--input", "-i", "inputs", multiple=True, help="NAME=FILE.npy, FILE.npz, [NAME=]IMAGE, or a folder of "
              "those (one sample per file), repeatable: the accuracy gate's inputs. Default: random data (the report "
              "says so).")
@shape_option("The shape of random data for an input with dynamic dimensions (repeatable).")
@click.option("--budget", default="120s", show_default=True, help="Wall time for the whole search (120s, 5m, ...). "
              "Too small to confirm the winner: exit code 3.")
@click.option("--objective", type=click.Choice(["latency", "throughput", "memory"]), default="latency",
              show_default=True, help="latency: p50; throughput: sequential inferences/s (1000 / mean ms); memory: "
              "peak RSS.")
@click.option("--tolerance", multiple=True, help="[OUTPUT:]KEY=VALUE, KEY one of atol, rtol (fp32 candidates), "
              "cosine, top1, top5 (fp16/bf16/int8 candidates), iou (--bundle's task-aware check); repeatable.")
@click.option("--reference", default=None, help="Runtime whose float32 outputs are the truth. Default: onnxruntime "
              "for ONNX, litert for TFLite.")
@click.option("--runtime", "-r", "runtimes", multiple=True, help="Search only this runtime (repeatable).")
@click.option("--threads", "-t", multiple=True, type=click.IntRange(min=1), help="Thread counts to try (repeatable; "
              "default 1, 2, 4, ... up to the cores).")
@click.option("--output", "-o", type=click.Path(), default=None,
              help="Write the deployment plan (TOML) here; use it with edgekit.load(model, plan=FILE). With --fleet: "
                   "a folder, one plan per device, DIR/<device>.toml.")
@click.option("--force", is_flag=True, help="Replace an existing plan file.")
@output_options(formats=FORMATS, output=False)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write the report (in --format) to this file instead of standard output.")
@click.option("--no-cache", is_flag=True, help="Measure everything anew (do not reuse or keep earlier measurements).")
@click.option("--timeout", type=click.FloatRange(min=1.0), default=60.0, show_default=True,
              help="Seconds one candidate may take (load + measure) before it is killed and marked failed.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random inputs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def tune(model: str | None, bundle: str | None, embed: bool, devices: tuple[str, ...], fleet: str | None,
         unavailable_after: float, inputs: tuple[str, ...], shapes: Shapes, budget: str, objective: str,
         tolerance: tuple[str, ...], reference: str | None, runtimes: tuple[str, ...], threads: tuple[int, ...],
         output: str | None, force: bool, fmt: str, report_path: str | None, no_cache: bool, timeout: float,
         seed: int, quiet: bool) -> None:
    """Find the fastest configuration of MODEL (or of --bundle B's model) that still matches the float32 reference.

    Candidates: runtimes x accelerators x precisions x threads x each runtime's speed settings, each measured
    in its own process; a short screening, successive halving, then the winner confirmed with a tight CI.
    """
    from edgekit.cli.codes import INCOMPLETE, INTERRUPTED, NOTHING
    from edgekit.errors import DeviceUnavailableError
    from edgekit.tuning import tune as run_tune

    if (model is None) == (bundle is None):
        raise click.UsageError("give either MODEL or --bundle B, not " + ("both: with --bundle the model is the "
                               "bundle's." if model else "neither."))
    if embed and bundle is None:
        raise click.UsageError("--embed writes the plan into a bundle: it needs --bundle B.")
    seconds = parse_budget(budget)
    if fleet is not None:
        if not devices:
            raise click.UsageError("--fleet needs the devices to tune on: --device NAME (repeatable) or --device all "
                                   "(one job per distinct device of the fleet).")
        if fmt == "html":
            raise click.UsageError("--format html renders one device's tune report, but --fleet prints one summary "
                                   "entry per device; use --format table, or --format json (which holds each "
                                   "device's full report).")
        code = _tune_fleet(model, fleet, devices, output, bundle=bundle, embed=embed, force=force, fmt=fmt,
                          report_path=report_path, quiet=quiet,
                          unavailable_after=unavailable_after, inputs=list(inputs), budget=seconds,
                          objective=objective, tolerance=list(tolerance) or None, reference=reference,
                          runtimes=list(runtimes) or None, threads=list(threads) or None,
                          shapes=dict(shapes) or None, seed=seed, cache=not no_cache, timeout=timeout)
        if code:
            raise SystemExit(code)
        return
    if len(devices) > 1:
        raise click.UsageError("--device names one device profile here; several --device are for --fleet HEAD.")
    device = devices[0] if devices else None
    if output is not None and Path(output).is_dir():
        raise click.UsageError(f"-o {output} is a folder; -o names the plan file (a folder only with --fleet).")
    try:
        report = run_tune(model, bundle=bundle, embed=embed, device=device, inputs=list(inputs) or None,
                          budget=seconds, objective=objective, tolerance=list(tolerance) or None,
                          reference=reference, output=output, force=force, runtimes=list(runtimes) or None,
                          threads=list(threads) or None, shapes=dict(shapes) or None,
                          seed=seed, cache=not no_cache, timeout=timeout, on_event=_Progress(quiet))
    except DeviceUnavailableError as exc:  # nothing runs here and passes the gate: not a usage error
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(NOTHING) from None
    _render(report, fmt, report_path)
    code = report.exit_code
    if code == INCOMPLETE and not quiet:
        click.echo("not confirmed: the budget ran out before the winner's p50 CI was within ±2%; run again with a "
                   "larger --budget (exit code 3).", err=True)
    if code == INTERRUPTED and not quiet:
        click.echo("interrupted: partial results; no plan written.", err=True)
    if code:
        raise SystemExit(code)


def _tune_fleet(model: str | None, address: str, devices: tuple[str, ...], output: str | None, *,
                bundle: str | None, embed: bool, force: bool, fmt: str, report_path: str | None, quiet: bool,
                unavailable_after: float, inputs: list[str], **kwargs: Any) -> int:
    """``--fleet``: tune on each device, write ``output/<device>.toml`` (and, with ``--embed``, the bundle's
    ``plans/<device>.toml``), print a summary; the exit code."""
    import json

    from edgekit.cli.codes import INCOMPLETE, INTERRUPTED, NOTHING, OK, USAGE
    from edgekit.fleet import tune_on_fleet
    from edgekit.fleet.jobs import usage_error

    def said(p: Any) -> None:
        if not quiet:
            written = ", ".join(f"plan {w}" for w in (p.plan, p.embedded) if w) or "no plan"
            what = f"exit code {p.code}, {written}" if p.code is not None else f"{p.status}: {p.reason}"
            click.echo(f"{p.device}: {what}", err=True)

    if not quiet:
        click.echo(f"tuning on {', '.join(devices)} of the fleet at {address} ...", err=True)
    plans = tune_on_fleet(model, address, list(devices), output, bundle=bundle, embed=embed, inputs=inputs,
                          force=force, unavailable_after=unavailable_after, on_outcome=said, **kwargs)
    if fmt == "json":
        rows = [{"device": p.device, "status": p.status, "code": p.code, "plan": p.plan,
                 **({"embedded": p.embedded} if embed else {}), "host": p.host, "node": p.node, "reason": p.reason,
                 "report": p.report} for p in plans]
        text = json.dumps(rows, indent=2) + "\n"
        if report_path:
            Path(report_path).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    else:
        lines = []
        for p in plans:
            lines.append(f"== {p.device}" + (f" (host {p.host})" if p.host else "") + f": {p.status}"
                         + (f", exit code {p.code}" if p.code is not None else ""))
            lines += [f"   {line}" for line in p.summary] or [f"   {p.reason}"]
        text = "\n".join(lines) + "\n"
        if report_path:
            Path(report_path).write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
    if any(p.status == "cancelled" or p.code == INTERRUPTED for p in plans):
        return INTERRUPTED
    wrong = usage_error(plans)
    if wrong is not None:  # every device that ran refused what was passed, the same way: as a local run would
        click.echo(f"error: {wrong}", err=True)
        return USAGE
    if not any(p.plan_text for p in plans):
        return NOTHING
    return OK if all(p.code == OK and (p.plan or output is None) and (p.embedded or not embed) for p in plans) \
        else INCOMPLETE
