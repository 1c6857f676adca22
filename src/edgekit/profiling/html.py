"""A self-contained HTML report: tables plus inline SVG plots drawn here (no JavaScript, no CDN).

Plots: the warm-latency distribution of every runtime on one shared axis (a histogram per
runtime with its p50 and p99 marked; the axis is logarithmic when the runtimes differ by
more than 20x, and samples beyond the slowest p99 are counted, not drawn), and the top
operators of every runtime whose profiler reports them.

Example::

    Path("report.html").write_text(to_html(report), encoding="utf-8")
"""

from __future__ import annotations

import html
import math

import numpy as np

from edgekit.profiling.render import (
    device_cell,
    error_text,
    fleet_lines,
    is_fleet,
    notes,
    num,
    parity_cell,
    precision_cell,
    reference_text,
    short_status,
)
from edgekit.profiling.results import ProfileReport, RuntimeResult

__all__ = ["to_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;max-width:1400px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f6f8fa}td.l,th.l{text-align:left}tr.bad td{background:#fff0f0}tr.warn td{background:#fffbe6}
.partial{background:#fff3cd;padding:8px;border:1px solid #e0c36c}code{font-size:12px}
.prov td{text-align:left;white-space:normal}svg text{font:11px system-ui,sans-serif}
"""
_COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#0a7f8f", "#6e7781", "#9a6700"]


def _e(x: object) -> str:
    return html.escape(str(x))


def latency_svg(results: list[RuntimeResult], width: int = 900) -> str:
    """Histograms of each measured result's samples on a shared axis, p50 and p99 marked."""
    rows = [r for r in results if r.latency and r.latency.samples_ms]
    if not rows:
        return "<p>No latency samples.</p>"
    lo = min(r.latency.min for r in rows)  # type: ignore[union-attr]
    hi = max(r.latency.p99 for r in rows) * 1.05  # type: ignore[union-attr]
    hi = hi if hi > lo else lo * 1.1 + 1e-9
    log = hi / max(lo, 1e-9) > 20
    left, right, row_h, bins = 190, 20, 46, 60
    plot_w = width - left - right

    def x(v: float) -> float:
        if log:
            return left + plot_w * (math.log(max(v, lo)) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return left + plot_w * (v - lo) / (hi - lo)

    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    height = 30 + row_h * len(rows) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="latency distribution per runtime">']
    for i, r in enumerate(rows):
        lat = r.latency
        assert lat is not None
        y0 = 20 + i * row_h
        color = _COLORS[i % len(_COLORS)]
        s = np.asarray(lat.samples_ms)
        counts, _ = np.histogram(np.clip(s, lo, None), bins=edges)
        beyond = int((s > hi).sum())
        peak = counts.max() or 1
        out.append(f'<text x="{left - 8}" y="{y0 + row_h / 2}" text-anchor="end">{_e(r.id)}</text>')
        for c, a, b in zip(counts, edges[:-1], edges[1:]):
            if c:
                h = (row_h - 10) * c / peak
                bw = max(x(b) - x(a) - 0.5, 0.5)
                out.append(f'<rect x="{x(a):.1f}" y="{y0 + row_h - 6 - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                           f'fill="{color}" fill-opacity="0.55"/>')
        for v, dash, label in ((lat.p50, "", "p50"), (lat.p99, "3,2", "p99")):
            out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{y0 + 2}" y2="{y0 + row_h - 6}" stroke="{color}" '
                       f'stroke-width="2" stroke-dasharray="{dash}"><title>{label} {v:.4g} ms</title></line>')
        out.append(f'<text x="{x(lat.p50) + 3:.1f}" y="{y0 + 10}" fill="{color}">p50 {num(lat.p50)}</text>')
        if beyond:
            out.append(f'<text x="{width - right}" y="{y0 + 10}" text-anchor="end" fill="#6e7781">'
                       f'+{beyond} beyond axis (max {num(lat.max)})</text>')
    axis_y = 20 + row_h * len(rows)
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{axis_y}" y2="{axis_y}" stroke="#57606a"/>')
    ticks = np.geomspace(lo, hi, 6) if log else np.linspace(lo, hi, 6)
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#57606a"/>'
                   f'<text x="{x(t):.1f}" y="{axis_y + 16}" text-anchor="middle">{num(float(t))}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{axis_y + 28}" text-anchor="middle">warm latency, ms'
               f'{" (log scale)" if log else ""}</text></svg>')
    return "".join(out)


def ops_svg(r: RuntimeResult, top: int = 10, width: int = 900) -> str:
    """Horizontal bars: the ``top`` operators of one result by time per run."""
    ops = (r.ops or [])[:top]
    if not ops:
        return ""
    left, right, bar_h = 300, 90, 18
    peak = max(o.time_ms for o in ops) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bar_h * len(ops) + 10}" role="img" '
           f'aria-label="top operators of {_e(r.id)}">']
    for i, o in enumerate(ops):
        y = 4 + i * bar_h
        w = (width - left - right) * o.time_ms / peak
        label = f"{o.name} ({o.type})"
        label = label if len(label) <= 46 else label[:45] + "…"
        out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{_e(label)}</text>'
                   f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 5}" fill="#0969da" '
                   f'fill-opacity="0.7">'
                   f'<title>{_e(o.name)}: {o.time_ms:.4g} ms</title></rect>'
                   f'<text x="{left + w + 4:.1f}" y="{y + 12}">{num(o.time_ms)} ms · {o.share:.0%}</text>')
    out.append("</svg>")
    return "".join(out)


def _summary(report: ProfileReport) -> str:
    head = ["runtime", "format", "accel", "prec", "import ms", "load ms", "1st ms", "p50 ms", "p50 95% CI", "p90", "p99", "min",
            "max", "mean ± std", "inf/s", "GFLOP/s", "RSS before/after load, peak run MiB", "parity", "status"]
    fleet = is_fleet(report)
    head = ["device", *head] if fleet else head
    left = {"device", "runtime", "parity", "status"}
    rows = ["<table><tr>" + "".join(f'<th class="{"l" if h in left else ""}">{_e(h)}</th>'
                                     for h in head) + "</tr>"]
    for r in report.results:
        lat, mem = r.latency, r.memory
        cls = "" if r.status == "ok" else ("warn" if r.status in ("partial", "skipped", "unavailable") else "bad")
        ci = f"{num(lat.p50_ci_low)}–{num(lat.p50_ci_high)}" if lat and lat.p50_ci_low is not None else "-"
        cells = [f"{r.runtime} {r.version or ''}", r.format, r.accelerator or "-", precision_cell(r),
                 num(r.import_ms), num(r.load_ms), num(r.first_ms), num(lat.p50) if lat else "-", ci,
                 num(lat.p90) if lat else "-",
                 num(lat.p99) if lat else "-", num(lat.min) if lat else "-", num(lat.max) if lat else "-",
                 f"{num(lat.mean)} ± {num(lat.std, 2)}" if lat else "-", num(lat.throughput_ips) if lat else "-",
                 num(r.gflops_per_s),
                 (f"{num(mem.rss_before_load_mb)} / {num(mem.rss_after_load_mb)}, {num(mem.peak_run_mb)}"
                  if mem else "-"),
                 parity_cell(r, report.reference), short_status(r)]
        cells = [device_cell(r), *cells] if fleet else cells
        rows.append(f'<tr class="{cls}">' + "".join(
            f'<td class="{"l" if h in left else ""}">{_e(c)}</td>' for h, c in zip(head, cells)) + "</tr>")
    return "".join(rows) + "</table>"


def to_html(report: ProfileReport) -> str:
    """The whole report as one HTML document (UTF-8, no external resources)."""
    prov = report.provenance
    title = f"edgekit profile: {', '.join(m.name for m in report.models)}"
    parts = [f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    if report.partial:
        parts.append('<p class="partial"><b>Partial results:</b> the run was interrupted (Ctrl-C).</p>')
    parts.append(f"<p>{_e(prov.get('cpu'))} · {_e(prov.get('cpu_count'))} cores · host {_e(prov.get('host'))} · "
                 f"created {_e(report.created)} · schema {_e(report.schema_version)}</p>")
    parts.append("<h2>Results</h2>" + _summary(report))
    bad = [r for r in report.results if r.status != "ok" and r.error]
    if bad:
        parts.append("<h2>Not measured / failed</h2><ul>" + "".join(
            f"<li><code>{_e(r.id)}</code> <b>{_e(short_status(r))}</b>: {_e(error_text(r))}"
            + (f"<pre>{_e(r.output_tail)}</pre>" if r.output_tail else "") + "</li>" for r in bad) + "</ul>")
    if notes(report):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li><code>{_e(rid)}</code>: {_e(note)}</li>"
                                                   for rid, note in notes(report)) + "</ul>")
    parts.append("<h2>Latency distribution</h2>" + latency_svg(report.results))
    parts.append("<h2>Top operators by time (per run)</h2>")
    for r in report.results:
        if r.ops:
            parts.append(f"<h3>{_e(r.id)}</h3>" + ops_svg(r))
        elif r.measured:
            parts.append(f"<p><code>{_e(r.id)}</code>: {_e(r.ops_note or 'not profiled')}</p>")
    parts.append("<h2>Models</h2><table><tr><th class=l>model</th><th>format</th><th>bytes</th><th>FLOPs</th>"
                 "<th>MACs</th><th class=l>inputs</th></tr>")
    for m in report.models:
        ins = "; ".join(f"{i['name']} {i['dtype']}{i['shape']} ({i['source']})" for i in m.inputs)
        parts.append(f"<tr><td class=l>{_e(m.name)}</td><td>{_e(m.format)}</td><td>{m.size_bytes:,}</td>"
                     f"<td>{_e(f'{m.flops:,}' if m.flops else '-')}</td><td>{_e(f'{m.macs:,}' if m.macs else '-')}</td>"
                     f"<td class=l>{_e(ins)}</td></tr>")
    parts.append("</table><h2>Provenance and method</h2><table class=prov>")
    flat = {k: v for k, v in prov.items() if k not in ("method", "fleet")}
    flat.update({f"method.{k}": v for k, v in prov.get("method", {}).items()})
    flat["parity reference"] = reference_text(report)
    if is_fleet(report):
        flat[f"fleet {(prov.get('fleet') or {}).get('address', '')}"] = " | ".join(fleet_lines(report))
    for k, v in flat.items():
        parts.append(f"<tr><th class=l>{_e(k)}</th><td>{_e(v)}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)
