"""``edgekit runtimes``: which runtimes are installed, their versions, formats and accelerators here.

Example::

    $ edgekit runtimes --format json
"""

from __future__ import annotations

import click

from edgekit.cli.output import emit, output_options
from edgekit.registry import get_runtime, list_runtimes


def _devices(name: str, accelerators: list[str]) -> list[str]:
    """What is behind each accelerator where the adapter says (a software Vulkan/OpenCL device is named as such)."""
    rt = get_runtime(name)
    out = []
    for acc in accelerators:
        try:
            desc = rt.accelerator_device(acc)
        except Exception as exc:  # noqa: BLE001 - a broken device query is shown, never a traceback
            desc = f"{acc}: cannot describe its device ({type(exc).__name__}: {exc})"
        if desc:
            out.append(desc)
    return out


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
            "devices": _devices(r.name, list(r.accelerators)) if r.installed else [],
            **({"error": r.error} if fmt != "table" else {}),
        })
    emit(rows, fmt=fmt, output=output, title="edgekit runtimes",
         footer="Formats marked (converts) are converted to the runtime's own format into a cache first. A software "
                "device runs the real GPU API on the CPU: a functional check, its latency is not a GPU's.")
