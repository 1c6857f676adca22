"""``edgekit check``: will a model run on a device's targets, or on each runtime?

``--device NAME`` gives one row per target of the profile, in order: ``supported``,
``partitioned`` (some operators fall back to the CPU) or ``unsupported``, with the operators
that block it and why. ``--runtime all`` (the default) gives one row per runtime from the
recorded operator data (``runtimes/onnx_ops``, ``runtimes/tflite_ops``); ``--matrix`` adds
the operator x runtime matrix. Exit codes: 0 at least one target/runtime can run the model;
1 none can; 2 usage or edgekit error.

Example::

    $ edgekit check det.onnx --device coral-edgetpu
    $ edgekit check det.onnx --runtime all --matrix
    $ edgekit check det.onnx --runtime opencv --format json
"""

from __future__ import annotations

import sys
from typing import Any

import click

from edgekit.cli.output import emit, output_options

__all__ = ["check"]

_MARK = {"supported": "ok", "registered": "ok", "partial": "partial", "failing": "FAIL", "unsupported": "NO",
         "not_registered": "NO", "untested": "?"}


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


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", "-d", default=None, help="A device profile name or .toml path: check each of its targets.")
@click.option("--runtime", "-r", "runtimes", multiple=True,
              help="Runtime(s) to check, or 'all' (default when --device is not given).")
@click.option("--matrix", is_flag=True, help="Also print the operator x runtime matrix.")
@click.option("--details", is_flag=True, help="List the failing cases behind each blocking or partial operator.")
@output_options
def check(model: str, device: str | None, runtimes: tuple[str, ...], matrix: bool, details: bool, fmt: str,
          output: str | None) -> None:
    """Check MODEL's operators against a device's targets or the runtimes' recorded support."""
    from edgekit.catalog import runtime_infos
    from edgekit.errors import UnknownRuntimeError
    from edgekit.tools.check import check_device, check_runtimes

    if device:
        targets = check_device(model, device)
        rows = [{"#": t.index, "target": t.target, "verdict": t.verdict, "blocking": t.blocking,
                 "on CPU": t.on_cpu, "why": t.reasons} for t in targets]
        emit(rows, fmt=fmt, output=output, title=f"edgekit check {model} --device {device}",
             footer="partitioned: the operators listed under 'on CPU' leave the accelerator.")
        if not any(t.verdict != "unsupported" for t in targets):
            sys.exit(1)
        return
    names = list(runtime_infos())
    with_data = [n for n, info in runtime_infos().items() if info.ops]  # 'all': runtimes with operator data
    chosen = with_data if not runtimes or "all" in runtimes else list(runtimes)
    unknown = [r for r in chosen if r not in names]
    if unknown:
        raise UnknownRuntimeError(f"unknown runtime(s) {unknown}; known: {names} (or 'all').")
    results = check_runtimes(model, chosen)
    emit(_runtime_rows(results), fmt=fmt, output=output, title=f"edgekit check {model}",
         footer="Data: runtimes/onnx_ops (measured with ONNX's backend node cases), runtimes/tflite_ops "
                "(LiteRT kernel registration). `--matrix` for operator x runtime, `--details` for the failing cases.")
    if matrix and fmt in ("table", "markdown"):
        emit(_matrix_rows(results), fmt=fmt, output=None, title="operator x runtime")
    if details and fmt in ("table", "markdown"):
        lines = [{"runtime": r.runtime, "case": line} for r in results for line in r.details()]
        if lines:
            emit(lines, fmt=fmt, output=None, title="non-passing cases behind blocking or partial operators")
    if not any(r.verdict in ("supported", "partial") for r in results):
        sys.exit(1)
