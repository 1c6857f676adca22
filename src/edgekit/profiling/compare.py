"""``--compare baseline.json``: p50 of this run against a saved run, per runtime.

Results are matched on (runtime, format, device target, accelerator, precision). A result
**regressed** when its p50 exceeds the baseline's by more than ``tolerance`` (a fraction:
0.10 = 10%), or when it was measured in the baseline and failed now. ``edgekit profile``
exits with code 1 when any result regressed.

Example::

    rows = compare(report, ProfileReport.from_json(Path("baseline.json").read_text()), tolerance=0.1)
    any(r.regressed for r in rows)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekit.errors import InvalidOptionError
from edgekit.profiling.results import ProfileReport, RuntimeResult

__all__ = ["CompareRow", "compare", "parse_tolerance", "print_compare"]


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
    return (r.runtime, r.format, r.target, r.accelerator, r.precision)


def compare(current: ProfileReport, baseline: ProfileReport, tolerance: float) -> list[CompareRow]:
    """Rows for every result of either report (see the module docstring)."""
    base = {_key(r): r for r in baseline.results}
    seen = set()
    rows = []
    for r in current.results:
        b = base.get(_key(r)) or next((x for x in baseline.results if x.id == r.id), None)
        if b is not None:
            seen.add(id(b))
        bp = b.latency.p50 if b is not None and b.latency else None
        cp = r.latency.p50 if r.latency else None
        if bp is None and cp is None:
            status, change = "not measured", None
        elif bp is None:
            status, change = "new", None
        elif cp is None:
            status, change = ("failed" if r.status not in ("skipped",) else "not measured"), None
        else:
            change = cp / bp - 1.0
            status = "regressed" if change > tolerance else ("faster" if change < -tolerance else "ok")
        rows.append(CompareRow(r.id, bp, cp, change, status))
    for b in baseline.results:
        if id(b) not in seen and b.latency:
            rows.append(CompareRow(b.id, b.latency.p50, None, None, "missing"))
    return rows


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
