"""Shared output options: one result, rendered as a table, JSON, CSV or Markdown.

Commands build rows (a list of flat dicts) apart from rendering them.

Example::

    @click.command()
    @output_options
    def cmd(fmt, output): emit(rows, fmt=fmt, output=output, title="Runtimes")
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

__all__ = ["emit", "output_options", "render"]

FORMATS = ("table", "json", "csv", "markdown")


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--format`` and ``--output`` to a command."""
    func = click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
                        help="Write to this file instead of standard output.")(func)
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(func)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) or "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(rows: Sequence[dict[str, Any]], fmt: str, *, title: str | None = None) -> str:
    """Render rows in ``fmt`` (not ``table``, which goes through rich)."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, default=str) + "\n"
    cols = list(rows[0]) if rows else []
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r[c]) for c in cols])
        return buf.getvalue()
    if fmt == "markdown":
        lines = [f"### {title}", ""] if title else []
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        lines.extend("| " + " | ".join(_cell(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows)
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def emit(rows: Sequence[dict[str, Any]], *, fmt: str, output: str | None, title: str | None = None,
         footer: str | None = None) -> None:
    """Print or write rows; a terminal table uses rich."""
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for c in rows[0] if rows else []:
            table.add_column(c, overflow="fold")
        from rich.markup import escape

        for r in rows:
            table.add_row(*(escape(_cell(v)) for v in r.values()))  # "[1, 3]" is data, not markup
        if output:
            with open(output, "w", encoding="utf-8") as f:
                Console(file=f, width=160).print(table)
        else:
            console = Console()
            console.print(table)
            if footer:
                console.print(footer, highlight=False)
        return
    text = render(rows, fmt, title=title)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
