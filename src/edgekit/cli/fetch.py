"""``edgekit fetch``: download the pinned tools edgekit uses but never fetches on its own.

edgekit makes no network connection when loading or converting a model. A tool that lives in
a PyPI wheel is fetched by this command, once: the wheel is pinned (version and sha256), only
the needed file is kept, in edgekit's cache. Today that is ``pnnx``, the ONNX -> ncnn converter
(its binary alone: the wheel's torch dependency is never installed).

Exit codes (:mod:`edgekit.cli.codes`): OK when the tool is in the cache; NOTHING when it could
not be fetched (offline, or a digest that does not match) — the message says what to do.

Example::

    $ edgekit fetch pnnx
    pnnx 20261020: /home/me/.cache/edgekit/tools/pnnx-20261020 (fetched)
"""

from __future__ import annotations

import click

from edgekit.cli.codes import NOTHING

__all__ = ["fetch"]

TOOLS = {"pnnx": "ONNX -> ncnn converter used by the ncnn runtime (~29 MB wheel, binary only, no torch)"}


@click.command("fetch")
@click.argument("tool", type=click.Choice(sorted(TOOLS)))
def fetch(tool: str) -> None:
    """Download TOOL once into edgekit's cache, from its pinned PyPI wheel (checked by sha256).

    \b
    Tools:
      pnnx   ONNX -> ncnn converter used by the ncnn runtime (binary only, no torch)
    """
    from edgekit.errors import ModelFetchError
    from edgekit.runtimes.ncnn_convert import PNNX_VERSION, fetch_pnnx, pnnx_path

    had = pnnx_path() is not None
    try:
        path = fetch_pnnx()
    except ModelFetchError as exc:
        click.echo(f"edgekit fetch {tool}: {exc}", err=True)
        raise SystemExit(NOTHING) from None
    click.echo(f"{tool} {PNNX_VERSION}: {path} ({'already present' if had else 'fetched'})")
