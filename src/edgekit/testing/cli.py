"""Walking a click command tree, for tests that check every command of a command line.

:func:`walk_commands` takes the group to walk as an argument (this layer sits below
:mod:`edgekit.cli`, so it never imports it) and yields each command under its full path, a
group before its subcommands, in the order the group lists them. Lazy groups are walked
through ``get_command``, so every command module is imported.

Example::

    from edgekit.cli import cli
    from edgekit.testing.cli import walk_commands

    [path for path, _ in walk_commands(cli)]                     # ['agent', 'bundle', 'bundle check', ...]
    [path for path, _ in walk_commands(cli, leaves_only=True)]   # ['agent', 'bundle check', ...]
"""

from __future__ import annotations

from collections.abc import Iterator

import click

__all__ = ["walk_commands"]


def walk_commands(group: click.Group, *, leaves_only: bool = False,
                  prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command under ``group`` as ``(path, command)``, e.g. ``("devices show", <Command show>)``.

    ``leaves_only`` leaves out the groups themselves (their subcommands are still walked);
    ``prefix`` is put before each path. A name the group lists but cannot load raises LookupError.
    """
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        path = f"{prefix}{name}"
        if cmd is None:
            raise LookupError(f"command {path!r}: {group.name or 'the group'} lists it, but get_command returned None; "
                              "expected every listed command to load. Fix the group's command table or the module "
                              "that defines the command.")
        if isinstance(cmd, click.Group):
            if not leaves_only:
                yield path, cmd
            yield from walk_commands(cmd, leaves_only=leaves_only, prefix=f"{path} ")
        else:
            yield path, cmd
