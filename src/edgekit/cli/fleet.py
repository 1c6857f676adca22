"""``edgekit fleet``: the device fleet (a Ray cluster of ``edgekit agent`` nodes).

``edgekit fleet status`` lists each node: its device profile (detected, or declared with
``edgekit agent --device NAME``), host, edgekit and runtime versions, and whether its measurement
slot is busy.

Example::

    $ edgekit fleet status --address 10.0.0.5:6379
    $ RAY_ADDRESS=10.0.0.5:6379 edgekit fleet status --format json
"""

from __future__ import annotations

from typing import Any

import click

from edgekit.cli.output import emit, output_options

__all__ = ["fleet", "status_rows"]

ADDRESS_OPTION = click.option(
    "--address", default="127.0.0.1:6379", show_default=True, envvar="RAY_ADDRESS",
    help="The fleet's head, HOST:PORT as printed by `ray start --head` (or $RAY_ADDRESS).")


@click.group()
def fleet() -> None:
    """The device fleet: Ray nodes started with `edgekit agent`."""


def status_rows(nodes: list[Any]) -> list[dict[str, Any]]:
    """One row per node: role, device (detected/declared), host, versions, busy/free."""
    rows = []
    for n in nodes:
        rows.append({
            "node": n.node_id[:12],
            "role": "head" if n.is_head else "device" if n.slots else "other",
            "device": n.device_text,
            "host": n.host,
            "ip": n.ip,
            "edgekit": n.edgekit,
            "runtimes": [f"{name} {version}" for name, version in sorted(n.runtimes.items())],
            "state": "-" if n.busy is None else "busy" if n.busy else "free",
        })
    return rows


@fleet.command()
@ADDRESS_OPTION
@output_options
def status(address: str, fmt: str, output: str | None) -> None:
    """Each node of the fleet: device profile, host, edgekit and runtime versions, busy or free."""
    from edgekit.fleet.cluster import connect

    nodes = connect(address)
    devices = [n for n in nodes if n.slots]
    footer = (f"{len(devices)} device node(s). Add one with `edgekit agent --address {address}` on the device."
              if devices else f"No device in this fleet yet: run `edgekit agent --address {address}` on each device.")
    emit(status_rows(nodes), fmt=fmt, output=output, title=f"edgekit fleet at {address}", footer=footer)
