"""Shared output options: one result, rendered as a table, JSON, CSV or Markdown.

Commands build rows (a list of flat dicts) apart from rendering them. Every command's
``--format`` comes from :func:`output_options`; a command that renders fewer formats (or more:
``profile`` adds ``html``) says which, and one whose ``--output`` means something else (a
model file, an image) takes ``--format`` alone.

Example::

    @click.command()
    @output_options
    def cmd(fmt, output): emit(rows, fmt=fmt, output=output, title="Runtimes")

    @click.command()
    @output_options(formats=("table", "json"), output=False)
    def quantize(fmt): ...
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

__all__ = ["FORMATS", "emit", "output_options", "render"]

#: the formats :func:`emit` renders, and the default set of ``--format``
FORMATS = ("table", "json", "csv", "markdown")


def output_options(func: Callable[..., Any] | None = None, *, formats: Sequence[str] = FORMATS,
                   output: bool = True) -> Any:
    """Add ``--format`` (one of ``formats``, default ``table``) and ``--output`` to a command.

    Use bare (``@output_options``: the four :data:`FORMATS`) or called
    (``@output_options(formats=(*FORMATS, "html"))``); ``output=False`` leaves ``--output`` to
    the command. The command receives ``fmt`` (and ``output``).
    """
    if "table" not in formats:
        raise ValueError(f"formats must include 'table' (the default), got {list(formats)}")

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if output:
            f = click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
                             help="Write to this file instead of standard output.")(f)
        return click.option("--format", "fmt", type=click.Choice(list(formats)), default="table",
                            show_default=True, help="Output format.")(f)

    return decorate(func) if func is not None else decorate


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
