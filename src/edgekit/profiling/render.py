"""Render a :class:`~edgekit.profiling.results.ProfileReport`: rich table, CSV, Markdown (JSON: ``to_json``).

Rendering is apart from measuring: every function here takes a finished report.

Example::

    from rich.console import Console
    print_table(report, Console())
    Path("run.csv").write_text(to_csv(report))
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from edgekit.profiling.results import ProfileReport, RuntimeResult

__all__ = ["device_cell", "error_text", "fleet_lines", "flat_rows", "is_fleet", "libraries", "notes", "num", "parity_cell",
           "precision_cell", "print_table", "reference_text", "short_status", "sig", "to_csv", "to_markdown"]


def num(v: float | None, digits: int = 3) -> str:
    """A number for a table cell: ``-`` when missing, ``digits`` significant digits, no decimals from 100 on.

    >>> num(None), num(1234.5), num(0.123456), num(0.0001234)
    ('-', '1,234', '0.123', '1.2e-04')
    """
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.{digits}g}"


def sig(v: Any, digits: int = 4) -> Any:
    """A float rounded to ``digits`` significant digits (CSV cells); anything else as it is.

    >>> sig(1.0592409999999999), sig(6129.591471647314), sig(0.000123456), sig(3), sig(None)
    (1.059, 6130.0, 0.0001235, 3, None)
    """
    if isinstance(v, float) and math.isfinite(v) and v != 0:
        return round(v, digits - 1 - math.floor(math.log10(abs(v))))
    return v


def precision_cell(r: RuntimeResult) -> str:
    """What ran, and what was asked when that differs: ``bf16 (asked fp16)``; ``-`` when unknown."""
    prec = r.precision or "-"
    asked = r.precision_requested
    return f"{prec} (asked {asked})" if asked and r.precision and asked != r.precision else prec


def notes(report: ProfileReport) -> list[tuple[str, str]]:
    """``(result id, note)`` for every row with a note (e.g. a precision not honoured, and why)."""
    return [(r.id, r.note) for r in report.results if r.note]


def is_fleet(report: ProfileReport) -> bool:
    """True for a fleet's merged report (rows carry ``device``): renderers add a device column."""
    return any(r.device for r in report.results)


def device_cell(r: RuntimeResult) -> str:
    """The device a fleet row ran on, and its host: ``raspberry-pi-5 @ pi-1``; ``-`` for a local row."""
    if not r.device:
        return "-"
    return f"{r.device} @ {r.host}" if r.host else r.device


def fleet_lines(report: ProfileReport) -> list[str]:
    """One line per device of a fleet report's provenance: status, node, host, edgekit and runtime versions."""
    fleet = report.provenance.get("fleet") or {}
    lines = []
    for d in fleet.get("devices") or []:
        runtimes = ", ".join(f"{k} {v}" for k, v in sorted((d.get("runtimes") or {}).items()))
        where = f"node {str(d.get('node') or '-')[:12]} host {d.get('host') or '-'}"
        what = (f"edgekit {d.get('edgekit')}, python {d.get('python')}; {runtimes or 'no runtime ran'}; {d.get('cpu')}"
                if d.get("status") == "ok" else (d.get("reason") or ""))
        lines.append(f"{d.get('device')}: {d.get('status')} · {where} · {what}")
    return lines


def reference_text(report: ProfileReport) -> str:
    """What the parity reference is: a row's id, an extra float32 run, each device's own (fleet), or ``-``."""
    if report.reference is None:
        refs = [f"{d.get('device')}: {d['reference']}" for d in (report.provenance.get("fleet") or {}).get("devices", [])
                if d.get("reference")]
        return ("each device's own float32 row (" + "; ".join(refs) + ")") if refs else "-"
    run = report.reference_run
    if run is not None and run.id == report.reference:
        return f"{run.id} (an extra float32 run of {run.runtime} {run.version or ''}, not a row: no row ran in fp32)"
    return report.reference


def libraries(prov: dict[str, Any]) -> dict[str, str]:
    """The provenance's library versions, each package once (``MNN`` and ``mnn`` are one), python/numpy apart."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for k, v in sorted((prov.get("libraries") or {}).items()):
        key = k.lower().replace("_", "-")
        if key not in seen and key not in ("python", "numpy"):
            seen.add(key)
            out[k] = v
    return out


def _ci(r: RuntimeResult) -> str:
    hw = r.latency.ci_half_width if r.latency else None
    return "" if hw is None else f"±{hw:.1%}"


def short_status(r: RuntimeResult) -> str:
    """``ok``, ``partial``, ``CRASH SIGSEGV``, ``TIMEOUT``, ``ERROR <type>``, ``skipped``…"""
    if r.status in ("ok", "partial", "skipped", "interrupted"):
        return r.status
    if r.status == "crash":
        sig = (r.error or "").split(" by ")[-1].split(" ")[0] if " by " in (r.error or "") else ""
        return f"CRASH {sig}".strip()
    if r.status == "error":
        return f"ERROR {r.error_type or ''}".strip()
    return r.status.upper()


def error_text(r: RuntimeResult) -> str:
    """The row's error without the class name that :func:`short_status` already shows (``ERROR InputError``)."""
    text = r.error or ""
    prefix = f"{r.error_type}: " if r.error_type else ""
    return text[len(prefix):] if prefix and r.status == "error" and text.startswith(prefix) else text


def parity_cell(r: RuntimeResult, reference: str | None, short: bool = False) -> str:
    """The parity column: ``reference``, ``✓``/``✗`` with the scaled error (two lines when ``short``), or ``-``.

    Example: ``parity_cell(r, report.reference)`` is ``"✓ err 3.1e-07"`` for a result within tolerance.
    """
    p = r.parity
    if p is None:
        return "-"
    if r.id == reference or p.reference == r.id:
        return "reference"
    if p.max_abs is None:
        return f"✗ {p.note}"
    agree = f" top1 {p.argmax_agreement:.0%}" if p.argmax_agreement is not None and p.argmax_agreement < 1 else ""
    if short:
        return ("✓" if p.within_tolerance else "✗ BEYOND") + f"\n{num(p.scaled_err, 2)}{agree}"
    return ("✓" if p.within_tolerance else "✗ beyond tol") + f" err {num(p.scaled_err, 2)}{agree}"


def _top_op(r: RuntimeResult) -> str:
    if r.ops:
        op = r.ops[0]
        return f"{op.name} ({op.type}) {op.share:.0%}"
    return "n/a" if r.ops_note and r.ops_note.startswith("not available") else "-"


def print_table(report: ProfileReport, console: Any, *, ops: int = 3) -> None:
    """Print the summary table, failures, top operators and provenance with rich."""
    from rich.table import Table

    prov = report.provenance
    title = f"edgekit profile: {', '.join(m.name for m in report.models)}"
    title += " (PARTIAL: interrupted)" if report.partial else ""
    t = Table(title=title, title_justify="left", show_lines=False)
    compact = (getattr(console, "width", 160) or 160) < 120  # an 80-column terminal: the essential columns
    cols = [("runtime\nformat·accel·prec", "left", True), ("load ms\n1st ms", "right", True),
            ("p50 ms\n95% CI", "right", True), ("p90\np99", "right", True), ("min\nmax", "right", False),
            ("mean\n± std", "right", False), ("inf/s\nGFLOP/s", "right", True), ("RSS MiB\nload/run", "right", False),
            ("parity\nerr", "left", True), ("status", "left", True)]
    if is_fleet(report):
        cols.insert(0, ("device\nhost", "left", True))
    keep = [not compact or c[2] for c in cols]
    for (col, just, _), k in zip(cols, keep):
        if k:
            t.add_column(col, justify=just, overflow="fold", no_wrap=col.startswith("runtime"))  # type: ignore[arg-type]
    for r in report.results:
        lat, mem = r.latency, r.memory
        target = f" {r.target.split()[0]}" if r.target else ""  # "#2" of the device profile's targets
        rt = (f"{r.runtime}{target}\n{r.version or ''}" if compact else f"{r.runtime} {r.version or ''}{target}")
        where = "·".join(x for x in (r.format, r.accelerator, r.precision and precision_cell(r)) if x)
        style = None if r.status in ("ok",) else ("yellow" if r.status in ("partial", "skipped", "unavailable")
                                                  else "red")
        cells = [*([f"{r.device or '-'}\n{r.host or '-'}"] if is_fleet(report) else []),
            f"{rt.strip()}\n{where}", f"{num(r.load_ms)}\n{num(r.first_ms)}",
            f"{num(lat.p50)}\n{_ci(r)}" if lat else "-", f"{num(lat.p90)}\n{num(lat.p99)}" if lat else "-",
            f"{num(lat.min)}\n{num(lat.max)}" if lat else "-", f"{num(lat.mean)}\n± {num(lat.std, 2)}" if lat else "-",
            f"{num(lat.throughput_ips) if lat else '-'}\n{num(r.gflops_per_s)}",
            f"{num(mem.peak_load_mb)}\n{num(mem.peak_run_mb)}" if mem else "-",
            parity_cell(r, report.reference, short=True), short_status(r),
        ]
        t.add_row(*(c for c, k in zip(cells, keep) if k), style=style)
    console.print(t)
    bad = [r for r in report.results if r.status not in ("ok",) and r.error]
    for r in bad:
        console.print(f"[bold]{r.id}[/bold] {short_status(r)}: {error_text(r)}", highlight=False)
    for rid, note in notes(report):
        console.print(f"[bold]{rid}[/bold] note: {note}", highlight=False)
    if ops:
        _print_ops(report, console, ops)
    m = report.models
    flops = "; ".join(f"{x.name}: {x.size_bytes / 1024:.0f} KiB, {num(x.flops / 1e6 if x.flops else None)} MFLOP"
                      f" ({num(x.macs / 1e6 if x.macs else None)} MMAC)" for x in m)
    method = prov.get("method", {})
    console.print(
        f"[dim]{prov.get('cpu')} · {prov.get('cpu_count')} cores · "
        f"threads {prov.get('threads') or 'default (all cores)'}"
        f" · edgekit {prov.get('edgekit')} · python {prov.get('python')}\n"
        f"models: {flops}\ninputs: " + "; ".join(f"{i['name']} {i['dtype']}{i['shape']} {i['source']}"
                                                for x in m for i in x.inputs) +
        f"\nparity: outputs against {reference_text(report)}; err = max|Δ| / max|ref|, ✗ when above "
        f"{_tol(report)} · p50 ±: 95% CI half-width · {method.get('stopping', '')}\n"
        f"percentiles: {method.get('percentiles', '')} · CI: {method.get('ci', '')}[/dim]",
        highlight=False,
    )
    if is_fleet(report):
        console.print("[dim]fleet " + str((prov.get("fleet") or {}).get("address", "")) + ":\n"
                      + "\n".join(fleet_lines(report)) + "[/dim]", highlight=False)


def _tol(report: ProfileReport) -> str:
    p = next((r.parity for r in report.results if r.parity is not None), None)
    return f"{p.rtol:g} (floor {p.atol:g})" if p else "the tolerance"


def _print_ops(report: ProfileReport, console: Any, n: int) -> None:
    from rich.table import Table

    rows = [(r, op) for r in report.results if r.ops for op in r.ops[:n]]
    notes = [r for r in report.results if r.measured and not r.ops and r.ops_note]
    if not rows and not notes:
        return
    t = Table(title=f"top {n} operators by time (per run)", title_justify="left")
    for col in ("runtime", "operator", "type / kernel", "ms", "share"):
        t.add_column(col, justify="right" if col in ("ms", "share") else "left", overflow="fold")
    last = None
    for r, op in rows:
        t.add_row(r.id if r.id != last else "", op.name, op.type + (f" / {op.kernel}" if op.kernel else ""),
                  num(op.time_ms), f"{op.share:.0%}")
        last = r.id
    for r in notes:
        t.add_row(r.id, r.ops_note or "", "", "", "")
    console.print(t)


def flat_rows(report: ProfileReport) -> list[dict[str, Any]]:
    """One flat dict per result (CSV columns)."""
    out = []
    fleet = is_fleet(report)
    for r in report.results:
        lat, mem, p = r.latency, r.memory, r.parity
        out.append({
            **({"device": r.device, "node": r.node, "host": r.host} if fleet else {}),
            "id": r.id, "runtime": r.runtime, "version": r.version, "model": r.model, "format": r.format,
            "target": r.target, "accelerator": r.accelerator, "precision": r.precision,
            "precision_requested": r.precision_requested, "threads": r.threads,
            "status": r.status, "error": r.error, "note": r.note, "import_ms": r.import_ms, "load_ms": r.load_ms,
            "first_ms": r.first_ms,
            "n": lat.n if lat else None, "min_ms": lat.min if lat else None, "p50_ms": lat.p50 if lat else None,
            "p50_ci_low_ms": lat.p50_ci_low if lat else None, "p50_ci_high_ms": lat.p50_ci_high if lat else None,
            "p90_ms": lat.p90 if lat else None, "p99_ms": lat.p99 if lat else None, "max_ms": lat.max if lat else None,
            "mean_ms": lat.mean if lat else None, "std_ms": lat.std if lat else None,
            "throughput_ips": lat.throughput_ips if lat else None, "stop_reason": lat.stop_reason if lat else None,
            "gflops_per_s": r.gflops_per_s,
            "rss_before_load_mb": mem.rss_before_load_mb if mem else None,
            "rss_after_load_mb": mem.rss_after_load_mb if mem else None,
            "peak_load_mb": mem.peak_load_mb if mem else None, "peak_run_mb": mem.peak_run_mb if mem else None,
            "parity_reference": p.reference if p else None, "parity_max_abs": p.max_abs if p else None,
            "parity_max_rel": p.max_rel if p else None,
            "parity_scaled_err": p.scaled_err if p else None, "parity_cosine": p.cosine if p else None,
            "parity_argmax_agreement": p.argmax_agreement if p else None,
            "parity_ok": p.within_tolerance if p else None,
            "top_op": f"{r.ops[0].name} ({r.ops[0].type})" if r.ops else r.ops_note,
        })
    return out


def to_csv(report: ProfileReport) -> str:
    """CSV, one line per result; empty cells for values not measured."""
    rows = flat_rows(report)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
    w.writeheader()
    for row in rows:  # floats to 4 significant digits, as the table shows them (the JSON keeps every digit)
        w.writerow({k: "" if v is None else sig(v) for k, v in row.items()})
    return buf.getvalue()


def _md(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ProfileReport, ops: int = 3) -> str:
    """A Markdown summary: results table, failures, top operators, provenance."""
    prov = report.provenance
    lines = [f"## edgekit profile: {', '.join(m.name for m in report.models)}", ""]
    if report.partial:
        lines += ["**Partial results: the run was interrupted.**", ""]
    fleet = is_fleet(report)
    head = [*(["device"] if fleet else []), "runtime", "format", "accel", "prec", "load ms", "1st ms", "p50 ms",
            "p90 ms", "p99 ms", "mean ± std", "inf/s", "GFLOP/s", "peak RSS MiB", "parity", "status"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.results:
        lat, mem = r.latency, r.memory
        cells = [*([device_cell(r)] if fleet else []), f"{r.runtime} {r.version or ''}".strip(), r.format,
                 r.accelerator or "-", precision_cell(r), num(r.load_ms), num(r.first_ms), f"{num(lat.p50)} {_ci(r)}" if lat else "-",
                 num(lat.p90) if lat else "-", num(lat.p99) if lat else "-",
                 f"{num(lat.mean)} ± {num(lat.std, 2)}" if lat else "-", num(lat.throughput_ips) if lat else "-",
                 num(r.gflops_per_s), num(mem.peak_run_mb) if mem else "-", parity_cell(r, report.reference),
                 short_status(r)]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    bad = [r for r in report.results if r.status != "ok" and r.error]
    if bad:
        lines += ["", "**Not measured / failed:**", ""] + [f"- `{r.id}` {short_status(r)}: {_md(error_text(r))}" for r in bad]
    if notes(report):
        lines += ["", "**Notes:**", ""] + [f"- `{rid}`: {_md(note)}" for rid, note in notes(report)]
    with_ops = [r for r in report.results if r.ops]
    if with_ops and ops:
        lines += ["", f"### Top {ops} operators (ms per run)", "", "| runtime | operator | type | ms | share |",
                  "|---|---|---|---|---|"]
        for r in with_ops:
            lines += [f"| {r.id} | {_md(o.name)} | {_md(o.type)} | {num(o.time_ms)} | {o.share:.0%} |"
                      for o in (r.ops or [])[:ops]]
    method = prov.get("method", {})
    lines += ["", "### Provenance", "",
              f"- host: {prov.get('host')} · {prov.get('cpu')} · {prov.get('cpu_count')} cores · "
              f"{prov.get('platform')}",
              f"- edgekit {prov.get('edgekit')}, python {prov.get('python')}, numpy {prov.get('numpy')}; "
              + ", ".join(f"{k} {v}" for k, v in libraries(prov).items()),
              f"- device profile: {prov.get('device') or '-'} · threads: {prov.get('threads') or 'default'} · "
              f"precision: {prov.get('precision') or 'runtime default (fp32)'}",
              f"- method: {method.get('stopping')}; percentiles {method.get('percentiles')}; {method.get('ci')}",
              f"- parity reference: {_md(reference_text(report))}"]
    if fleet:
        lines += [f"- fleet {(prov.get('fleet') or {}).get('address')}:"] + [f"  - {_md(x)}" for x in fleet_lines(report)]
    for m in report.models:
        ins = ", ".join(f"{i['name']} {i['dtype']}{i['shape']} ({i['source']})" for i in m.inputs)
        lines.append(f"- model {m.name}: {m.size_bytes} bytes, sha256 {m.sha256[:12]}…, FLOPs {m.flops}, "
                     f"MACs {m.macs}; inputs {ins}")
    return "\n".join(lines) + "\n"
