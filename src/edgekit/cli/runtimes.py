"""``edgekit runtimes``: which runtimes are installed, their versions, formats and accelerators here.

Example::

    $ edgekit runtimes --format json
"""

from __future__ import annotations

import click

from edgekit.cli.output import emit, output_options
from edgekit.registry import list_runtimes


@click.command()
@output_options
def runtimes(fmt: str, output: str | None) -> None:
    """List runtimes: installed version (or the pip extra to install), formats, accelerators on this host."""
    rows = []
    for r in list_runtimes():
        rows.append({
            "runtime": r.name,
            "title": r.title,
            "version": r.version if r.installed else f"not installed: {r.install_hint}",
            "formats": list(r.formats) + [f"{c} (converts)" for c in r.converts],
            "accelerators here": list(r.accelerators) if r.installed else [],
            **({"error": r.error} if fmt != "table" else {}),
        })
    emit(rows, fmt=fmt, output=output, title="edgekit runtimes",
         footer="Formats marked (converts) are converted to the runtime's own format into a cache first.")
