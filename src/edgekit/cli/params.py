"""Shared click parameter types: one parser per kind of value, one error for bad syntax.

``ShapeParam`` reads ``NAME=1x3x640x640`` (or ``NAME=1,3,640,640``) into
``("NAME", (1, 3, 640, 640))``. Bad syntax is a click usage error (exit code 2) that names
the option and shows an example. ``shape_option`` is the ``--shape`` option built on it.

Example::

    @click.command()
    @shape_option("Fix a dynamic input's shape (repeatable).")
    def cmd(shapes): inspect_model(model, input_shapes=dict(shapes) or None)

    $ edgekit inspect det.onnx --shape x=1x3xHxW
    Error: Invalid value for '--shape': 'x=1x3xHxW': expected NAME=DIMS, whole numbers >= 1 joined
    by 'x' or ',', e.g. --shape x=1x3x640x640.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["SHAPE", "ShapeParam", "Shapes", "fleet_options", "shape_option"]

#: what a command with :func:`shape_option` receives: ``(("x", (1, 3, 640, 640)), ...)``
Shapes = tuple[tuple[str, tuple[int, ...]], ...]
#: what ``--shape`` takes, shown in ``--help``
SHAPE_METAVAR = "NAME=1x3xHxW"


class ShapeParam(click.ParamType):
    """``"x=1x3x640x640"`` -> ``("x", (1, 3, 640, 640))``; separators ``x`` or ``,``; sizes >= 1.

    >>> SHAPE.convert("images=1,3,640,640", None, None)
    ('images', (1, 3, 640, 640))
    """

    name = "shape"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, tuple[int, ...]]:
        if isinstance(value, tuple):  # already converted (a default, or a second pass)
            return value
        text = str(value)
        name, sep, dims = (part.strip() for part in text.partition("="))
        try:
            if not sep or not name or not dims:
                raise ValueError
            shape = tuple(int(d) for d in dims.lower().replace(",", "x").split("x"))
        except ValueError:
            self.fail(f"{text!r}: expected NAME=DIMS, whole numbers >= 1 joined by 'x' or ',', "
                      f"e.g. {_example(param)}.", param, ctx)
        if any(d < 1 for d in shape):
            self.fail(f"{text!r}: every dimension must be at least 1 (an empty or negative tensor cannot be "
                      f"measured); give the size to use, e.g. {_example(param)}.", param, ctx)
        return name, shape


def _example(param: click.Parameter | None) -> str:
    opt = param.opts[0] if param is not None and param.opts else "--shape"
    return f"{opt} x=1x3x640x640"


SHAPE = ShapeParam()


def shape_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The repeatable ``--shape NAME=1x3xHxW`` option; the command receives ``shapes``, a tuple of pairs.

    ``dict(shapes)`` is ``{name: (d0, d1, ...)}`` (the last ``--shape`` for a name wins).
    """
    return click.option("--shape", "shapes", type=SHAPE, multiple=True, metavar=SHAPE_METAVAR, help=help_text)


def fleet_options(verb: str, result: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--fleet HEAD`` and ``--unavailable-after SECONDS`` for a command that can ``verb`` on a Ray fleet's devices,
    giving ``result``; the command receives ``fleet`` (None: run here) and ``unavailable_after``."""
    def add(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option("--unavailable-after", type=click.FloatRange(min=0.0), default=10.0, show_default=True,
                            help="With --fleet: seconds a job waits for a node of its device before the device is "
                                 "'unavailable'.")(func)
        return click.option("--fleet", metavar="HEAD", default=None,
                            help=f"{verb} on the devices of the Ray fleet whose head is at HOST:PORT (see "
                                 f"`edgekit agent`), devices in parallel; {result}. Needs --device.")(func)
    return add
