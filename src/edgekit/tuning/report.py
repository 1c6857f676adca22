"""What ``edgekit tune`` found, as dataclasses, JSON, a terminal table and a self-contained HTML page.

JSON keys tools may rely on (``schema_version`` 1.0): ``chosen`` (``runtime``, ``accelerator``,
``precision``, ``threads``, ``options``, ``p50_ms``, …; null when nothing passed), ``runner_up``,
``candidates`` (each with ``status`` — chosen | ok | rejected-accuracy | failed | pruned —,
``p50_ms`` and ``accuracy``), ``default`` (what ``load()`` without a plan runs, with its
``p50_ms`` measured in the same run), ``speedup_vs_default`` (the default's objective figure
over the chosen one's: > 1 means the plan is better), ``plan`` (the file written, or null),
``confirmed``, ``partial`` and ``inputs``/``random_inputs`` (whether the gate ran on random data).
Times are milliseconds, memory MiB.

Example::

    report = tune("det.onnx", budget=60)
    Path("tune.json").write_text(report.to_json())
    Path("tune.html").write_text(to_html(report))
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from edgekit.profiling.render import num

__all__ = ["SCHEMA_VERSION", "STATUSES", "CandidateReport", "TuneReport", "print_table", "to_html"]

SCHEMA_VERSION = "1.0"
STATUSES = ("chosen", "ok", "rejected-accuracy", "failed", "pruned")


@dataclass
class CandidateReport:
    """One configuration and what the search measured of it."""

    id: str
    runtime: str
    accelerator: str
    precision: str
    threads: int
    options: dict[str, Any]
    status: str
    kind: str = "base"  # base | knob | default (outside the search space)
    reason: str | None = None
    p50_ms: float | None = None
    p50_ci_ms: list[float] | None = None
    mean_ms: float | None = None
    throughput_ips: float | None = None  # 1000 / mean: sequential inferences per second
    peak_rss_mb: float | None = None
    samples: int | None = None
    rounds: int = 0
    cached: bool = False
    confirmed: bool = False
    precision_used: str | None = None
    version: str | None = None
    target: str | None = None
    accuracy: dict[str, Any] | None = None

    def describe(self) -> str:
        """``openvino/cpu fp32 threads=2 hint=latency``."""
        opts = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.runtime}/{self.accelerator} {self.precision} threads={self.threads}" + (f" {opts}" if opts else "")


@dataclass
class TuneReport:
    """Everything one tuning run found (see the module docstring for the JSON keys)."""

    model: dict[str, Any]
    device: str | None
    objective: str
    inputs: str
    random_inputs: bool
    reference: dict[str, Any]
    chosen: CandidateReport | None
    runner_up: CandidateReport | None
    default: CandidateReport | None
    speedup_vs_default: float | None
    confirmed: bool
    partial: bool
    budget_s: float
    elapsed_s: float
    candidates: list[CandidateReport]
    search: dict[str, Any] = field(default_factory=dict)
    tolerance: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: str | None = None
    plan_cached: str | None = None
    bundle: dict[str, Any] | None = None  # tune --bundle: path, post-processing kind, the task-aware check
    plan_embedded: str | None = None  # tune --bundle --embed: the bundle's plans/<device>.toml
    provenance: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    schema_version: str = SCHEMA_VERSION

    @property
    def exit_code(self) -> int:
        """0 confirmed winner; 3 winner not confirmed (budget); 130 interrupted (``edgekit.cli.codes``)."""
        return 130 if self.partial else 0 if self.confirmed else 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN and infinities become null.

        >>> TuneReport({}, None, "latency", "random", True, {}, None, None, None, None, False, False, 1.0, 0.5,
        ...            []).to_dict()["schema_version"]
        '1.0'
        """
        return _finite(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str) + "\n"

    def summary_lines(self) -> list[str]:
        """A few lines for a terminal: chosen, default, speedup, plan, whether it is confirmed."""
        lines = []
        if self.chosen is not None:
            c = self.chosen
            lines.append(f"chosen: {c.describe()}  p50 {num(c.p50_ms)} ms"
                         + (f" (95% CI {num(c.p50_ci_ms[0])}–{num(c.p50_ci_ms[1])})" if c.p50_ci_ms else "")
                         + ("" if self.confirmed else "  [NOT CONFIRMED: raise --budget]"))
        else:
            lines.append("chosen: none")
        if self.default is not None:
            lines.append(f"default (load() without a plan): {self.default.describe()}  p50 {num(self.default.p50_ms)} ms"
                         + (f"  -> {self.speedup_vs_default:.2f}x" if self.speedup_vs_default else ""))
        lines.append(f"inputs: {self.inputs}; reference: {self.reference.get('config')}; "
                     f"{self.search.get('measured', 0)} measurements in {self.elapsed_s:.1f} s of {self.budget_s:g} s")
        if self.bundle:
            lines.append(f"bundle: {self.bundle.get('path')}; task-aware check: {self.bundle.get('check')}")
        if self.plan:
            lines.append(f"plan written: {self.plan}")
        if self.plan_embedded:
            lines.append(f"plan embedded in the bundle: {self.plan_embedded}")
        if self.partial:
            lines.append("interrupted: partial results, no plan written.")
        return lines


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


_ORDER = {s: i for i, s in enumerate(STATUSES)}


def _sorted(report: TuneReport) -> list[CandidateReport]:
    return sorted(report.candidates, key=lambda c: (_ORDER.get(c.status, 9), c.p50_ms if c.p50_ms is not None
                                                    else math.inf))


def _err(c: CandidateReport) -> float | None:
    return (c.accuracy or {}).get("scaled_err")


def task_figure(c: CandidateReport) -> str:
    """The task-aware check's figure of a candidate (``tune --bundle``), short; "" without one.

    >>> task_figure(CandidateReport("c1", "ort", "cpu", "fp32", 1, {}, "ok",
    ...             accuracy={"task": "detection", "min_iou": 0.97, "unmatched_reference": 0, "unmatched_candidate": 1}))
    'IoU 0.97, 0/1 unmatched'
    """
    a = c.accuracy or {}
    if a.get("task") in ("detection", "text"):
        iou = a.get("min_iou")
        return (f"IoU {iou:.3g}" if iou is not None else "no boxes") + \
            f", {a.get('unmatched_reference', 0)}/{a.get('unmatched_candidate', 0)} unmatched"
    if a.get("task") == "classification" and a.get("top1_agreement") is not None:
        return f"top-1 {a['top1_agreement']:.0%}"
    if a.get("task") == "segmentation" and a.get("mask_iou") is not None:
        return f"mask IoU {a['mask_iou']:.3g}"
    return ""


def print_table(report: TuneReport, console: Any) -> None:
    """The candidates as a rich table (chosen first), then the summary lines."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"edgekit tune: {report.model.get('name')} ({report.objective})", title_justify="left")
    for col in ("id", "configuration", "status", "p50 ms", "95% CI", "mean ms", "peak MiB", "error", "rounds", "why"):
        table.add_column(col, overflow="fold")
    for c in _sorted(report):
        ci = f"{num(c.p50_ci_ms[0])}–{num(c.p50_ci_ms[1])}" if c.p50_ci_ms else "-"
        err = _err(c)
        style = {"chosen": "bold green", "rejected-accuracy": "red", "failed": "red"}.get(c.status, "")
        table.add_row(c.id, escape(c.describe()), c.status + (" (cached)" if c.cached else ""), num(c.p50_ms), ci,
                      num(c.mean_ms), num(c.peak_rss_mb),
                      " ".join(filter(None, [f"{err:.2g}" if err is not None else "-", task_figure(c)])), str(c.rounds),
                      escape((c.reason or "")[:160]), style=style)
    console.print(table)
    for line in report.summary_lines():
        console.print(escape(line), highlight=False)


# --- HTML -------------------------------------------------------------------------------------------

_COLORS = {"chosen": "#1a7f37", "ok": "#0969da", "pruned": "#8c959f", "rejected-accuracy": "#cf222e"}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;max-width:1400px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}th{background:#f6f8fa}td.l,th.l{text-align:left}
tr.chosen td{background:#eaffea}tr.bad td{background:#fff0f0}.warn{background:#fff3cd;padding:8px;border:1px solid #e0c36c}
svg text{font:11px system-ui,sans-serif}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def scatter_svg(report: TuneReport, width: int = 900, height: int = 420) -> str:
    """Latency (x, p50 ms) against the gate's error (y, max |out - ref| / max |ref|), log-log, one dot a candidate."""
    pts = [(c, c.p50_ms, _err(c)) for c in report.candidates if c.p50_ms is not None and c.accuracy is not None]
    if not pts:
        return "<p>No candidate was measured with the accuracy gate.</p>"
    floor = 1e-9
    xs = [p for _, p, _ in pts]
    ys = [max(e if e is not None else floor, floor) for _, _, e in pts]
    x_lo, x_hi = min(xs) / 1.1, max(xs) * 1.1
    y_lo, y_hi = min(ys) / 3, max(max(ys) * 3, floor * 10)
    left, right, top, bottom = 70, 20, 20, 50

    def sx(v: float) -> float:
        return left + (width - left - right) * (math.log(v) - math.log(x_lo)) / (math.log(x_hi) - math.log(x_lo) or 1)

    def sy(v: float) -> float:
        return top + (height - top - bottom) * (1 - (math.log(v) - math.log(y_lo)) / (math.log(y_hi) - math.log(y_lo)))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           'aria-label="latency against error per candidate">',
           f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="#57606a"/>',
           f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="#57606a"/>']
    for k in range(6):
        xv = x_lo * (x_hi / x_lo) ** (k / 5)
        out.append(f'<text x="{sx(xv):.1f}" y="{height - bottom + 16}" text-anchor="middle">{num(xv)}</text>')
        yv = y_lo * (y_hi / y_lo) ** (k / 5)
        out.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.0e}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">p50 latency, ms '
               '(log)</text><text x="14" y="{0}" transform="rotate(-90 14 {0})" text-anchor="middle">error: max|out-ref| '
               '/ max|ref| (log)</text>'.format((top + height - bottom) / 2))
    for c, x, y in sorted(pts, key=lambda p: p[0].status == "chosen"):
        color = _COLORS.get(c.status, "#8c959f")
        r = 7 if c.status == "chosen" else 4.5
        yv = max(y if y is not None else floor, floor)
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(yv):.1f}" r="{r}" fill="{color}" fill-opacity="0.75">'
                   f'<title>{_e(c.id)} {_e(c.describe())}: {_e(c.status)}, p50 {num(x)} ms, error '
                   f'{"0" if not y else f"{y:.2g}"}</title>'
                   '</circle>')
    lx = left + 10
    for status, color in _COLORS.items():
        out.append(f'<circle cx="{lx}" cy="{top + 6}" r="4.5" fill="{color}"/><text x="{lx + 8}" y="{top + 10}">'
                   f'{_e(status)}</text>')
        lx += 16 + 7 * len(status) + 14
    out.append("</svg>")
    return "".join(out)


def to_html(report: TuneReport) -> str:
    """The report as one HTML document (no scripts, no external resources)."""
    title = f"edgekit tune: {report.model.get('name')}"
    parts = [f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    if report.partial:
        parts.append('<p class="warn"><b>Partial:</b> the run was interrupted; no plan was written.</p>')
    elif not report.confirmed and report.chosen is not None:
        parts.append('<p class="warn"><b>Not confirmed:</b> the budget ran out before the winner\'s p50 CI was within '
                     "±2 %; run again with a larger --budget.</p>")
    if report.random_inputs:
        parts.append('<p class="warn">The accuracy gate ran on <b>random inputs</b>: give real ones with --input.</p>')
    parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in report.summary_lines()) + "</ul>")
    parts.append("<h2>Latency against error</h2>" + scatter_svg(report))
    parts.append("<h2>Candidates</h2><table><tr>" + "".join(
        f'<th class="{"l" if h in ("configuration", "status", "why") else ""}">{_e(h)}</th>'
        for h in ("id", "configuration", "status", "p50 ms", "95% CI", "mean ms", "peak MiB", "error", "cosine",
                  "rounds", "why")) + "</tr>")
    for c in _sorted(report):
        acc = c.accuracy or {}
        ci = f"{num(c.p50_ci_ms[0])}–{num(c.p50_ci_ms[1])}" if c.p50_ci_ms else "-"
        cls = "chosen" if c.status == "chosen" else "bad" if c.status in ("failed", "rejected-accuracy") else ""
        cells = [c.id, c.describe(), c.status + (" (cached)" if c.cached else ""), num(c.p50_ms), ci, num(c.mean_ms),
                 num(c.peak_rss_mb), f"{acc['scaled_err']:.2g}" if acc.get("scaled_err") is not None else "-",
                 f"{acc['cosine']:.6f}" if acc.get("cosine") is not None else "-", c.rounds, c.reason or ""]
        parts.append(f'<tr class="{cls}">' + "".join(
            f'<td class="{"l" if i in (1, 2, 10) else ""}">{_e(v)}</td>' for i, v in enumerate(cells)) + "</tr>")
    parts.append("</table>")
    if report.skipped:
        parts.append("<h2>Not searched</h2><ul>" + "".join(
            f"<li><code>{_e(s['what'])}</code>: {_e(s['why'])}</li>" for s in report.skipped) + "</ul>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("<h2>Search, tolerance and provenance</h2><table>")
    for key, value in {**{f"search.{k}": v for k, v in report.search.items()},
                       **{f"tolerance.{k}": v for k, v in report.tolerance.items()}, **report.provenance}.items():
        parts.append(f'<tr><th class="l">{_e(key)}</th><td class="l">{_e(value)}</td></tr>')
    parts.append("</table></body></html>\n")
    return "".join(parts)
