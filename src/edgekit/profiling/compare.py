"""``--compare baseline.json``: p50 of this run against a saved run, per runtime.

Results are matched on (runtime, format, device target, accelerator, precision), and in a fleet's
merged report on the device too: a row matches only the same device and runtime. A result
**regressed** when its p50 exceeds the baseline's by more than ``tolerance`` (a fraction:
0.10 = 10%), or when it was measured in the baseline and failed now. ``edgekit profile``
exits with code 1 when any result regressed.

:func:`differences` names what makes the two runs not alike — threads, inputs, runtime and
library versions, CPU — so a change in latency is not taken for a regression unawares
(``edgekit profile --compare`` prints them as a warning).

Example::

    base = ProfileReport.from_json(Path("baseline.json").read_text())
    rows = compare(report, base, tolerance=0.1)
    any(r.regressed for r in rows), differences(report, base)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.profiling.results import ProfileReport, RuntimeResult

__all__ = ["CompareRow", "compare", "differences", "parse_tolerance", "print_compare"]


@dataclass(frozen=True)
class CompareRow:
    """One runtime's p50 now and in the baseline."""

    id: str
    baseline_p50: float | None
    current_p50: float | None
    change: float | None  # current / baseline - 1
    status: str  # "regressed" | "failed" | "ok" | "faster" | "new" | "missing" | "not measured"

    @property
    def regressed(self) -> bool:
        """True when this row makes ``--compare`` fail."""
        return self.status in ("regressed", "failed")


def parse_tolerance(text: str | float) -> float:
    """``"10%"``, ``"0.1"`` or ``0.1`` -> 0.1."""
    try:
        value = float(text[:-1]) / 100.0 if isinstance(text, str) and text.endswith("%") else float(text)
    except ValueError as exc:
        raise InvalidOptionError(f"{text!r}: expected a fraction (0.1) or a percentage (10%).") from exc
    if value < 0:
        raise InvalidOptionError(f"{text!r}: a tolerance must not be negative.")
    return value


def _key(r: RuntimeResult) -> tuple[Any, ...]:
    return (r.device, r.runtime, r.format, r.target, r.accelerator, r.precision)


def compare(current: ProfileReport, baseline: ProfileReport, tolerance: float) -> list[CompareRow]:
    """Rows for every result of either report (see the module docstring)."""
    base = {_key(r): r for r in baseline.results}
    seen = set()
    rows = []
    for r in current.results:
        b = base.get(_key(r)) or next((x for x in baseline.results if x.id == r.id and x.device == r.device), None)
        if b is not None:
            seen.add(id(b))
        bp = b.latency.p50 if b is not None and b.latency else None
        cp = r.latency.p50 if r.latency else None
        if bp is None and cp is None:
            status, change = "not measured", None
        elif bp is None:
            status, change = "new", None
        elif cp is None:
            status, change = ("failed" if r.status not in ("skipped", "unavailable") else "not measured"), None
        else:
            change = cp / bp - 1.0
            status = "regressed" if change > tolerance else ("faster" if change < -tolerance else "ok")
        rows.append(CompareRow(r.id, bp, cp, change, status))
    for b in baseline.results:
        if id(b) not in seen and b.latency:
            rows.append(CompareRow(b.id, b.latency.p50, None, None, "missing"))
    return rows


def _shape(shape: Any) -> str:
    return "x".join(str(d) for d in shape) if isinstance(shape, list) else str(shape)


def differences(current: ProfileReport, baseline: ProfileReport) -> list[str]:
    """What differs between how ``baseline`` and ``current`` were measured, one phrase each ([] when alike).

    >>> differences(ProfileReport({"threads": 4}, [], []), ProfileReport({"threads": None}, [], []))
    ['threads: default (all cores) in the baseline, 4 now']
    """
    out: list[str] = []
    cp, bp = current.provenance, baseline.provenance

    def threads(v: Any) -> str:
        return "default (all cores)" if v is None else str(v)

    if cp.get("threads") != bp.get("threads"):
        out.append(f"threads: {threads(bp.get('threads'))} in the baseline, {threads(cp.get('threads'))} now")
    base = {_key(r): r for r in baseline.results}
    for r in current.results:
        b = base.get(_key(r))
        if b is None or not (r.measured and b.measured):
            continue
        if r.threads != b.threads and cp.get("threads") == bp.get("threads"):
            out.append(f"{r.id} threads: {threads(b.threads)} in the baseline, {threads(r.threads)} now")
        if r.version != b.version:
            out.append(f"{r.id}: {r.runtime} {b.version or '?'} in the baseline, {r.version or '?'} now")
    versions = {r.runtime.lower() for r in current.results}
    blibs, clibs = bp.get("libraries") or {}, cp.get("libraries") or {}
    for k in sorted(set(blibs) & set(clibs)):
        if blibs[k] != clibs[k] and k.lower() not in versions:
            out.append(f"{k} {blibs[k]} in the baseline, {clibs[k]} now")
    bmodels = {m.name: m for m in baseline.models}
    for m in current.models:
        bm = bmodels.get(m.name) or next((x for x in baseline.models if x.format == m.format), None)
        if bm is None:
            continue
        before = {i["name"]: i for i in bm.inputs}
        for i in m.inputs:
            b_in = before.get(i["name"])
            if b_in is None:
                continue
            was = f"{b_in.get('dtype')} {_shape(b_in.get('shape'))} {b_in.get('source')}"
            now = f"{i.get('dtype')} {_shape(i.get('shape'))} {i.get('source')}"
            if was != now:
                out.append(f"input {i['name']} of {m.name}: {was} in the baseline, {now} now")
        if bm.sha256 and m.sha256 and bm.sha256 != m.sha256:
            out.append(f"{m.name}: another file than the baseline's (sha256 differs)")
    if bp.get("cpu") and cp.get("cpu") and bp.get("cpu") != cp.get("cpu"):
        out.append(f"cpu: {bp.get('cpu')} in the baseline, {cp.get('cpu')} now")
    return out


def print_compare(rows: list[CompareRow], tolerance: float, console: Any, baseline_name: str = "baseline") -> None:
    """A rich table of the comparison, regressions in red, and a one-line verdict."""
    from rich.table import Table

    t = Table(title=f"p50 against {baseline_name} (tolerance +{tolerance:.0%})", title_justify="left")
    for col in ("runtime", "baseline p50 ms", "now p50 ms", "change", "verdict"):
        t.add_column(col, justify="left" if col in ("runtime", "verdict") else "right")
    for r in rows:
        style = "bold red" if r.regressed else ("green" if r.status == "faster" else None)
        t.add_row(r.id, f"{r.baseline_p50:.4g}" if r.baseline_p50 is not None else "-",
                  f"{r.current_p50:.4g}" if r.current_p50 is not None else "-",
                  f"{r.change:+.1%}" if r.change is not None else "-", r.status.upper() if r.regressed else r.status,
                  style=style)
    console.print(t)
    bad = [r.id for r in rows if r.regressed]
    if bad:
        console.print(f"[bold red]REGRESSION[/bold red]: {', '.join(bad)} slower than {baseline_name} by more than "
                      f"{tolerance:.0%} (or failed); exit code 1.", highlight=False)
    else:
        console.print(f"no regression beyond {tolerance:.0%}.", highlight=False)
