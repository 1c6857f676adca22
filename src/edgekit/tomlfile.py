"""Reading and checking TOML files: catalogs, device profiles, bundle configurations.

Every check raises :class:`~edgekit.errors.ConfigError` naming the file (``where``), the key,
what was expected and what was found; unknown keys are rejected (typos are the commonest
profile bug); oversized or too deeply nested files are refused before parsing.

Example::

    data = read_toml(Path("my-board.toml"))
    check_keys(data, {"name", "title"}, "my-board.toml")
    name = expect(data, "name", str, "my-board.toml")      # ConfigError if missing or not a string
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["MAX_TOML_BYTES", "check_keys", "expect", "read_toml"]

#: largest TOML file read (the biggest shipped, an operator-support table, is 0.2 MiB)
MAX_TOML_BYTES = 4 << 20


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; raise ConfigError naming the file and line on bad syntax, or when it is oversized."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOML_BYTES + 1)
        if len(data) > MAX_TOML_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_TOML_BYTES >> 20} MiB; expected a TOML profile or "
                               "configuration file of a few kilobytes. Check that the path names the right file.")
        parsed: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
        return parsed
    except RecursionError as exc:  # tomllib recurses per nesting level: "a = [[[[..." exhausts the stack
        raise ConfigError(f"{path}: arrays or tables nested too deeply to parse; expected a TOML file of "
                           "ordinary depth.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}). Fix the syntax at that line.") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc}).") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}); expected a TOML file.") from exc


def expect(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, *, required: bool = True) -> Any:
    """Return ``data[key]`` checked against ``kind``; raise ConfigError naming where, key, expected, got."""
    if key not in data:
        if required:
            raise ConfigError(f"{where}: missing key {key!r} (expected {_kind_name(kind)}).")
        return None
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ConfigError(
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
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}.")
