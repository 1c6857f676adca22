"""Runtime discovery through the entry-point group ``edgekit.runtimes``.

Built-in adapters are registered in edgekit's own ``pyproject.toml`` exactly as a
third-party plugin registers in its own; a plugin that fails to import becomes a
warning, not a crash.

Example::

    get_runtime("onnxruntime").accelerators()     # ['cpu']
    [r.name for r in list_runtimes() if r.installed]
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

from edgekit.catalog import runtime_info
from edgekit.errors import UnknownRuntimeError
from edgekit.runtime import Runtime

__all__ = ["RuntimeStatus", "get_runtime", "iter_runtimes", "list_runtimes", "runtime_names"]

GROUP = "edgekit.runtimes"


@functools.cache
def _entry_points() -> dict[str, Any]:
    import importlib.metadata  # 20 ms: only when runtimes are first listed

    eps = importlib.metadata.entry_points(group=GROUP)
    return {ep.name: ep for ep in eps}


def runtime_names() -> list[str]:
    """Registered runtime names, in default preference order (catalog ``priority``)."""
    def key(name: str) -> tuple[int, str]:
        info = runtime_info(name)
        return (info.priority if info else 100, name)

    return sorted(_entry_points(), key=key)


@functools.cache
def get_runtime(name: str) -> Runtime:
    """The adapter instance for ``name`` (imports the adapter module, not the library)."""
    eps = _entry_points()
    if name not in eps:
        raise UnknownRuntimeError(
            f"no runtime named {name!r}; registered runtimes: {runtime_names()}. "
            "A third-party runtime registers in the entry-point group 'edgekit.runtimes'; "
            "if edgekit's own are missing, reinstall edgekit (`pip install -e .` in a checkout)."
        )
    cls = eps[name].load()
    info = runtime_info(name) or getattr(cls, "default_info", None)
    if info is None:
        raise UnknownRuntimeError(
            f"runtime plugin {name!r} ({eps[name].value}) has no catalog entry: add runtimes/{name}.toml "
            "or set `default_info` on the adapter class."
        )
    return cls(info)


def iter_runtimes() -> list[Runtime]:
    """Every registered runtime that loads, in preference order; a broken plugin becomes a warning."""
    out = []
    for name in runtime_names():
        try:
            out.append(get_runtime(name))
        except Exception as exc:
            warnings.warn(f"edgekit runtime plugin {name!r} failed to load and is ignored: {exc}", stacklevel=2)
    return out


@dataclass(frozen=True)
class RuntimeStatus:
    """One row of ``edgekit runtimes``."""

    name: str
    title: str
    installed: bool
    version: str | None
    formats: tuple[str, ...]
    converts: tuple[str, ...]
    accelerators: tuple[str, ...]
    install_hint: str
    error: str | None = None


def list_runtimes(*, probe: bool = True) -> list[RuntimeStatus]:
    """Every registered runtime with its status; ``probe`` imports installed ones to list accelerators."""
    rows = []
    for rt in iter_runtimes():
        name = rt.name
        installed = rt.is_installed()
        accs: tuple[str, ...] = ()
        error = None
        if installed and probe:
            try:
                accs = tuple(rt.accelerators())
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        rows.append(RuntimeStatus(
            name=name, title=rt.info.title, installed=installed, version=rt.version() if installed else None,
            formats=rt.info.formats, converts=rt.info.converts, accelerators=accs,
            install_hint=rt.info.install_hint, error=error,
        ))
    return rows
