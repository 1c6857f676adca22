"""Runtime discovery through the entry-point group ``edgekit.runtimes``, and registration at run time.

Built-in adapters are registered in edgekit's own ``pyproject.toml`` exactly as a
third-party plugin registers in its own; a plugin that fails to import becomes a
warning, not a crash. :func:`register_runtime` adds (or replaces) an adapter class in
this process without packaging it — as fsspec's ``register_implementation`` does — and
:func:`refresh` forgets what was discovered (newly installed plugins, tests).

Example::

    get_runtime("onnxruntime").accelerators()     # ['cpu']
    [r.name for r in list_runtimes() if r.installed]
    register_runtime(MyRuntime)                   # MyRuntime.name -> edgekit.load(..., runtime="myrt")
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

from edgekit.catalog import runtime_info
from edgekit.errors import InvalidOptionError, UnknownRuntimeError
from edgekit.runtime import Runtime, RuntimeInfo

__all__ = ["RuntimeStatus", "did_you_mean", "get_runtime", "iter_runtimes", "list_runtimes", "refresh",
           "register_runtime", "runtime_names", "unregister_runtime"]

GROUP = "edgekit.runtimes"

#: adapter classes registered in this process with register_runtime(), by name (they win over entry points)
_REGISTERED: dict[str, type[Runtime]] = {}


@functools.cache
def _entry_points() -> dict[str, Any]:
    import importlib.metadata  # 20 ms: only when runtimes are first listed

    eps = importlib.metadata.entry_points(group=GROUP)
    return {ep.name: ep for ep in eps}


def runtime_names() -> list[str]:
    """Registered runtime names, in default preference order (catalog ``priority``)."""
    def key(name: str) -> tuple[int, str]:
        info = _info(name, _REGISTERED.get(name))
        return (info.priority if info else 100, name)

    return sorted(set(_entry_points()) | set(_REGISTERED), key=key)


def did_you_mean(name: str, known: list[str]) -> str:
    """``" (did you mean 'onnxruntime'?)"`` for a misspelled or shortened ``name``, or ``""``.

    The closest names by :func:`difflib.get_close_matches`, else the known names that start with ``name``.

    >>> did_you_mean("onnxrntime", ["litert", "onnxruntime"]), did_you_mean("coral", ["coral-edgetpu"])
    (" (did you mean 'onnxruntime'?)", " (did you mean 'coral-edgetpu'?)")
    """
    import difflib

    close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
    close = close or [k for k in known if name and k.lower().startswith(name.lower())][:2]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _info(name: str, cls: type[Runtime] | None) -> RuntimeInfo | None:
    return runtime_info(name) or (cls.default_info if cls is not None else None)


@functools.cache
def get_runtime(name: str) -> Runtime:
    """The adapter instance for ``name`` (imports the adapter module, not the library)."""
    if name in _REGISTERED:
        cls, source = _REGISTERED[name], "register_runtime()"
    else:
        eps = _entry_points()
        if name not in eps:
            raise UnknownRuntimeError(
                f"no runtime named {name!r}{did_you_mean(name, runtime_names())}; registered runtimes: "
                f"{runtime_names()}. "
                "A third-party runtime registers in the entry-point group 'edgekit.runtimes' or with "
                "edgekit.register_runtime(); if edgekit's own are missing, reinstall edgekit (`pip install -e .` "
                "in a checkout)."
            )
        cls, source = eps[name].load(), eps[name].value
    info = _info(name, cls)
    if info is None:
        raise UnknownRuntimeError(
            f"runtime plugin {name!r} ({source}) has no catalog entry: add runtimes/{name}.toml "
            "or set `default_info` on the adapter class."
        )
    return cls(info)


def register_runtime(cls: type[Runtime], *, replace: bool = False) -> type[Runtime]:
    """Register adapter class ``cls`` under ``cls.name`` in this process (usable as a class decorator).

    A name that already exists (built-in, entry point or registered) needs ``replace=True``.

    >>> class Echo(Runtime):                                # doctest: +SKIP
    ...     name = "echo"; default_info = RuntimeInfo("echo", "Echo", "numpy", ("numpy",), "echo", ("onnx",))
    >>> register_runtime(Echo)                              # doctest: +SKIP
    """
    if not (isinstance(cls, type) and issubclass(cls, Runtime)):
        raise InvalidOptionError(f"register_runtime() takes a Runtime subclass, got {cls!r}.")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(f"{cls.__name__} has no `name`; set a class attribute name = 'myrt'.")
    if _info(name, cls) is None:
        raise InvalidOptionError(f"{cls.__name__} ({name!r}) has no catalog entry: set `default_info` on the class "
                                 f"(a RuntimeInfo) or add runtimes/{name}.toml.")
    if not replace and name in (set(_entry_points()) | set(_REGISTERED)):
        raise InvalidOptionError(f"a runtime named {name!r} is already registered; pass replace=True to replace "
                                 "it, or choose another name.")
    _REGISTERED[name] = cls
    get_runtime.cache_clear()
    return cls


def unregister_runtime(name: str) -> None:
    """Forget a runtime registered with :func:`register_runtime` (entry points are not affected)."""
    _REGISTERED.pop(name, None)
    get_runtime.cache_clear()


def refresh() -> None:
    """Forget discovered entry points and adapter instances; the next lookup discovers them again."""
    _entry_points.cache_clear()
    get_runtime.cache_clear()


def iter_runtimes() -> list[Runtime]:
    """Every registered runtime that loads, in preference order; a broken plugin becomes a warning."""
    out = []
    for name in runtime_names():
        try:
            out.append(get_runtime(name))
        except Exception as exc:  # noqa: BLE001 - a broken plugin becomes a warning, not a crash
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
            except Exception as exc:  # noqa: BLE001 - reported in the row's error column
                error = f"{type(exc).__name__}: {exc}"
        rows.append(RuntimeStatus(
            name=name, title=rt.info.title, installed=installed, version=rt.version() if installed else None,
            formats=rt.info.formats, converts=rt.info.converts, accelerators=accs,
            install_hint=rt.info.install_hint, error=error,
        ))
    return rows
