"""The data catalogs: ``runtimes/*.toml`` and ``devices/**/*.toml``.

In a wheel they live in ``edgekit/_catalog/``; in a source checkout (editable install)
they are the top-level ``runtimes/`` and ``devices/`` folders. Files are validated on
read, with errors that name the file, the key, what was expected and what was found.

Example::

    info = runtime_info("onnxruntime")
    info.extra, info.formats        # ('onnxruntime', ('onnx',))
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.errors import ProfileError
from edgekit.runtime import RuntimeInfo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["catalog_dir", "read_toml", "runtime_info", "runtime_infos"]


@functools.cache
def catalog_dir(kind: str) -> Path:
    """The folder holding the ``kind`` catalog (``"runtimes"`` or ``"devices"``)."""
    packaged = Path(__file__).parent / "_catalog" / kind
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / kind  # editable install / checkout
    if source.is_dir():
        return source
    raise ProfileError(
        f"edgekit's {kind} catalog is missing (looked in {packaged} and {source}); "
        "the installation is broken: reinstall with `pip install --force-reinstall edgekit`."
    )


#: largest TOML file read (the biggest shipped, an operator-support table, is 0.2 MiB)
MAX_TOML_BYTES = 4 << 20


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; raise ProfileError naming the file and line on bad syntax, or when it is oversized."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOML_BYTES + 1)
        if len(data) > MAX_TOML_BYTES:
            raise ProfileError(f"{path}: larger than {MAX_TOML_BYTES >> 20} MiB; expected a TOML profile or "
                               "configuration file of a few kilobytes. Check that the path names the right file.")
        return tomllib.loads(data.decode("utf-8"))
    except RecursionError as exc:  # tomllib recurses per nesting level: "a = [[[[..." exhausts the stack
        raise ProfileError(f"{path}: arrays or tables nested too deeply to parse; expected a TOML file of "
                           "ordinary depth.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc}). Fix the syntax at that line.") from exc
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc}).") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text ({exc}); expected a TOML file.") from exc


def expect(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, *, required: bool = True) -> Any:
    """Return ``data[key]`` checked against ``kind``; raise ProfileError naming where, key, expected, got."""
    if key not in data:
        if required:
            raise ProfileError(f"{where}: missing key {key!r} (expected {_kind_name(kind)}).")
        return None
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ProfileError(
            f"{where}: key {key!r} expected {_kind_name(kind)}, got {type(value).__name__} {value!r}."
        )
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Reject unknown keys (typos are the commonest profile bug)."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}.")


_RUNTIME_KEYS = {"name", "title", "module", "wheels", "extra", "formats", "converts", "priority",
                 "accelerators", "homepage", "notes", "ops", "conformance"}


def parse_runtime_info(data: Mapping[str, Any], where: str) -> RuntimeInfo:
    """Validate one runtime catalog table."""
    check_keys(data, _RUNTIME_KEYS, where)
    accs = expect(data, "accelerators", dict, where, required=False) or {}
    return RuntimeInfo(
        name=expect(data, "name", str, where),
        title=expect(data, "title", str, where),
        module=expect(data, "module", str, where),
        wheels=tuple(expect(data, "wheels", list, where)),
        extra=expect(data, "extra", str, where),
        formats=tuple(expect(data, "formats", list, where)),
        converts=tuple(expect(data, "converts", list, where, required=False) or ()),
        priority=expect(data, "priority", int, where, required=False) or 50,
        accelerators={str(k): str(v) for k, v in accs.items()},
        homepage=expect(data, "homepage", str, where, required=False) or "",
        notes=tuple(expect(data, "notes", list, where, required=False) or ()),
        ops=expect(data, "ops", dict, where, required=False) or {},
        conformance=expect(data, "conformance", dict, where, required=False) or {},
    )


@functools.cache
def runtime_infos() -> dict[str, RuntimeInfo]:
    """Every ``runtimes/*.toml``, by runtime name."""
    out: dict[str, RuntimeInfo] = {}
    for path in sorted(catalog_dir("runtimes").glob("*.toml")):
        info = parse_runtime_info(read_toml(path), str(path))
        if info.name != path.stem:
            raise ProfileError(f"{path}: key 'name' expected {path.stem!r} (the file name), got {info.name!r}.")
        out[info.name] = info
    return out


def runtime_info(name: str) -> RuntimeInfo | None:
    """The catalog entry for ``name``, or None for a plugin that ships none."""
    return runtime_infos().get(name)
