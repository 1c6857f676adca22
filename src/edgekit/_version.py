"""edgekit's version, read from the installed package's metadata (one source: pyproject.toml).

>>> from edgekit._version import __version__
>>> __version__.count(".") >= 2
True
"""

from __future__ import annotations

import importlib.metadata

__all__ = ["__version__"]

try:
    __version__ = importlib.metadata.version("edgekit")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
