"""The ``edgekit`` command line: one module per command, loaded lazily so ``--help`` is fast.

Exit codes: see :mod:`edgekit.cli.codes` (0 OK, 1 FAILED, 2 USAGE, 3 INCOMPLETE, 4 NOTHING,
130 INTERRUPTED); an edgekit error is one line on stderr and exit code 2.

Example::

    $ edgekit runtimes
    $ edgekit devices show coral-edgetpu
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["main"]

#: command name -> "module:attribute"
COMMANDS = {
    "runtimes": "edgekit.cli.runtimes:runtimes",
    "devices": "edgekit.cli.devices:devices",
    "profile": "edgekit.cli.profile:profile",
    "run": "edgekit.cli.run:run",
    "bundle": "edgekit.cli.bundle:bundle",
    "inspect": "edgekit.cli.inspect:inspect",
    "check": "edgekit.cli.check:check",
    "quantize": "edgekit.cli.quantize:quantize",
    "convert": "edgekit.cli.convert:convert",
    "tune": "edgekit.cli.tune:tune",
    "agent": "edgekit.cli.agent:agent",
    "fleet": "edgekit.cli.fleet:fleet",
    "fetch": "edgekit.cli.fetch:fetch",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when the command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None
            raise


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgekit")
def cli() -> None:
    """Run, place and measure neural networks on edge devices, over real runtimes."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``edgekit`` console script; edgekit errors become exit code 2.

    Messages name command-line options (``--precision``, not ``precision=``) while it runs, in its
    worker processes too (:func:`edgekit.errors.cli_wording_on`).
    """
    from edgekit.cli.codes import INTERRUPTED, USAGE
    from edgekit.errors import EdgekitError, cli_wording_on

    with cli_wording_on():
        try:
            return cli.main(args=argv, standalone_mode=False)
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(INTERRUPTED)
        except EdgekitError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USAGE)
