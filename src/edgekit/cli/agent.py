"""``edgekit agent``: join this device to a fleet, labelled with its device profile, until stopped.

The agent checks that the head answers and runs the same edgekit version, then runs
``ray start --address HEAD --labels ... --resources '{"edgekit_slot": 1}' --block`` in the
foreground; Ctrl-C takes the node out of the fleet.

Example::

    $ edgekit agent --address 10.0.0.5:6379                         # detects the device profile
    $ edgekit agent --address 10.0.0.5:6379 --device raspberry-pi-5  # declared, not detected
"""

from __future__ import annotations

import click

from edgekit.cli.codes import INTERRUPTED, OK, USAGE

__all__ = ["agent"]


@click.command()
@click.option("--address", required=True, envvar="RAY_ADDRESS",
              help="The fleet's head, HOST:PORT as printed by `ray start --head` (or $RAY_ADDRESS).")
@click.option("--device", default="auto", show_default=True,
              help="Device profile of this machine: `auto` detects it; a NAME (see `edgekit devices`) declares it.")
@click.option("--node-ip-address", "node_ip", default=None,
              help="This machine's address on the fleet's private network (default: Ray picks one).")
def agent(address: str, device: str, node_ip: str | None) -> None:
    """Join this device to the fleet at --address as a node with one measurement slot."""
    from edgekit.fleet.agent import resolve_device, run_agent

    name, declared = resolve_device(device)
    click.echo(f"edgekit agent: joining {address} as {name} ({'declared, not detected' if declared else 'detected'}); "
               "Ctrl-C leaves the fleet", err=True)
    try:
        code = run_agent(address, name if declared else "auto", node_ip=node_ip)
    except KeyboardInterrupt:
        click.echo("edgekit agent: stopped; this device left the fleet", err=True)
        raise SystemExit(INTERRUPTED) from None
    if code != 0:
        click.echo(f"error: `ray start` exited with status {code} (its message is above); check the address "
                   "and that this machine runs the same Ray and Python versions as the head", err=True)
        raise SystemExit(USAGE)
    raise SystemExit(OK)
