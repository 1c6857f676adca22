"""``edgekit check``: will a model run on a device's targets, or on each runtime?

``--device NAME`` gives one row per target of the profile, in order: ``supported``,
``partitioned`` (some operators fall back to the CPU), ``unsupported``, ``unknown`` (no
operator data) or ``other format`` (its runtime does not read the model's format: placement,
``profile --device`` and ``--emulate`` pass over it too), with the operators that block it and why. ``--runtime all`` (the default)
gives one row per runtime with operator data for the model's format (``runtimes/onnx_ops``,
``runtimes/tflite_ops``); ``--matrix`` adds the operator x runtime matrix. Both modes give a
runtime the same verdict (:mod:`edgekit.tools.check`): an operator some of whose recorded cases
fail counts as supported unless a failing case is how the model uses it.

Exit codes (:mod:`edgekit.cli.codes`):

- 0 ``OK``: every target (``--device``; ``other format`` targets are not candidates and do not
  count, but a device whose accelerators none can take the model is never a pass) or runtime
  asked for supports the model (a ``partitioned`` target runs it, part on the CPU);
- 3 ``INCOMPLETE``: some do not (``unsupported`` or ``unknown``), e.g. the device's NPU target
  cannot run the model but its CPU target can;
- 4 ``NOTHING``: none does (or no target reads the model's format);
- 2 ``USAGE``: usage or edgekit error (unknown runtime or device, unreadable model).

Example::

    $ edgekit check det.onnx --device coral-edgetpu
    $ edgekit check det.onnx --runtime all --matrix
    $ edgekit check det.onnx --runtime opencv --format json
"""

from __future__ import annotations

import sys
from typing import Any

import click

from edgekit.cli.codes import INCOMPLETE, NOTHING
from edgekit.cli.output import emit, output_options

__all__ = ["check"]

_MARK = {"supported": "ok", "registered": "ok", "partial": "ok*", "failing": "FAIL", "unsupported": "NO",
         "not_registered": "NO", "untested": "?"}
#: target verdicts under which the model runs there
_RUNS = ("supported", "partitioned")


def _exit(verdicts: list[str], *, incomplete: bool = False) -> None:
    """Exit NOTHING when no row runs the model, INCOMPLETE when some do not (or ``incomplete``); return when all do."""
    runs = sum(v in _RUNS for v in verdicts)
    if not runs:
        sys.exit(NOTHING)
    if incomplete or runs < len(verdicts):
        sys.exit(INCOMPLETE)


def _why(reasons: list[str], fmt: str) -> list[str] | str:
    """Reasons as a list for machine formats; for people, phrases joined with "; " (a sentence: a space)."""
    if fmt in ("json", "csv"):
        return reasons
    out = ""
    for r in reasons:
        out += ("" if not out else " " if out.endswith(".") else "; ") + r
    return out or "-"


def _runtime_rows(results: list[Any]) -> list[dict[str, Any]]:
    return [{"runtime": r.runtime, "verdict": r.verdict, "blocking": r.blocking, "why": r.reason,
             "data": f"{r.evidence} with {r.data_version}" if r.data_version else None} for r in results]


def _matrix_rows(results: list[Any]) -> list[dict[str, Any]]:
    ops: list[str] = []
    for r in results:
        ops += [op for op in r.ops if op not in ops]
    rows = []
    for op in ops:
        row: dict[str, Any] = {"operator": op}
        for r in results:
            row[r.runtime] = _MARK.get(r.ops[op], r.ops[op]) if op in r.ops else ("-" if r.ops else r.verdict)
        rows.append(row)
    return rows


def _choose(model: str, runtimes: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The runtimes to check, and (for 'all') those that read the format but have no operator data for it."""
    from edgekit.catalog import runtime_infos
    from edgekit.errors import UnknownRuntimeError
    from edgekit.models.formats import open_model
    from edgekit.registry import did_you_mean

    infos = runtime_infos()
    if runtimes and "all" not in runtimes:
        unknown = [r for r in runtimes if r not in infos]
        if unknown:
            hints = "".join(did_you_mean(r, list(infos)) for r in unknown)
            raise UnknownRuntimeError(f"unknown runtime(s) {unknown}{hints}; known: {list(infos)} (or 'all').")
        return list(runtimes), []
    fmt = open_model(model).format
    with_data = [n for n, info in infos.items() if fmt in info.ops]
    readers = [n for n, info in infos.items() if n not in with_data and info.ops
               and (fmt in info.formats or fmt in info.converts)]
    return with_data, readers


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", "-d", default=None, help="A device profile name or .toml path: check each of its targets.")
@click.option("--runtime", "-r", "runtimes", multiple=True,
              help="Runtime(s) to check, or 'all' (default when --device is not given): every runtime with "
                   "operator data for the model's format.")
@click.option("--matrix", is_flag=True, help="Also print the operator x runtime matrix.")
@click.option("--details", is_flag=True, help="List the failing cases behind each verdict.")
@output_options
def check(model: str, device: str | None, runtimes: tuple[str, ...], matrix: bool, details: bool, fmt: str,
          output: str | None) -> None:
    """Check MODEL's operators against a device's targets or the runtimes' recorded support."""
    from edgekit.tools.check import OTHER_FORMAT, check_device, check_runtimes

    if device:
        targets = check_device(model, device)
        rows = [{"#": t.index, "target": t.target, "verdict": t.verdict, "blocking": t.blocking,
                 "on CPU": t.on_cpu, "why": _why(t.reasons, fmt)} for t in targets]
        footer = ("partitioned: the operators listed under 'on CPU' leave the accelerator."
                  if any(t.on_cpu for t in targets) else None)
        emit(rows, fmt=fmt, output=output, title=f"edgekit check {model} --device {device}", footer=footer)
        candidates = [t.verdict for t in targets if t.verdict != OTHER_FORMAT]  # as placement sees them
        # a device whose accelerators cannot take the model is not a pass, even when its CPU targets can
        missed = any(t.accelerated for t in targets) and not any(t.accelerated and t.verdict in _RUNS for t in targets)
        _exit(candidates, incomplete=missed)
        return
    chosen, without_data = _choose(model, runtimes)
    results = check_runtimes(model, chosen)
    footer = ("Data: runtimes/onnx_ops (measured with ONNX's backend node cases), runtimes/tflite_ops (LiteRT "
              "kernel registration); it says what runs, not that outputs match (`edgekit profile` compares them). "
              "`--matrix` for operator x runtime, `--details` for the failing cases.")
    if without_data:
        footer += (f" No operator data for {', '.join(without_data)}, which also read this format: "
                   "`edgekit profile MODEL --runtime NAME` tries them.")
    emit(_runtime_rows(results), fmt=fmt, output=output, title=f"edgekit check {model}", footer=footer)
    if matrix and fmt in ("table", "markdown"):
        emit(_matrix_rows(results), fmt=fmt, output=None, title="operator x runtime",
             footer="ok*: some recorded cases of the operator fail and may apply to this model (--details)."
             if any(r.partial for r in results) else None)
    if details and fmt in ("table", "markdown"):
        lines = [{"runtime": r.runtime, "case": line} for r in results for line in r.details()]
        if lines:
            emit(lines, fmt=fmt, output=None, title="failing cases behind the verdicts")
    _exit([r.verdict for r in results])
