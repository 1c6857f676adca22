"""Where edgekit keeps what it derives from models: converted models, fetched wheels.

The root is ``$EDGEKIT_CACHE`` when set, else ``$XDG_CACHE_HOME/edgekit``, else
``~/.cache/edgekit``. Writers should write a temporary file in the same folder and
``os.replace`` it into place, so that a concurrent reader never sees a partial file.

Example::

    folder = cache_dir("mnn")          # ~/.cache/edgekit/mnn, created if missing
"""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.errors import InvalidOptionError

__all__ = ["cache_dir", "cache_root"]


def cache_root() -> Path:
    """The cache root (not created): ``$EDGEKIT_CACHE``, ``$XDG_CACHE_HOME/edgekit`` or ``~/.cache/edgekit``."""
    explicit = os.environ.get("EDGEKIT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "edgekit"
    return Path.home() / ".cache" / "edgekit"


def cache_dir(*parts: str) -> Path:
    """The folder ``<cache root>/<parts...>``, created if missing.

    Raises :class:`~edgekit.errors.InvalidOptionError` when it cannot be created.
    """
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidOptionError(
            f"edgekit cannot create its cache folder {path}: {exc.strerror or exc}. Expected a writable folder; "
            "set EDGEKIT_CACHE to one (e.g. `export EDGEKIT_CACHE=/tmp/edgekit-cache`)."
        ) from exc
    return path
