"""Reading, checking and writing TOML files: catalogs, device profiles, plans, bundle configurations.

Every check raises :class:`~edgekit.errors.ConfigError` naming the file (``where``), the key,
what was expected and what was found; unknown keys are rejected (typos are the commonest
profile bug); oversized or too deeply nested files are refused before parsing. The standard
library reads TOML but does not write it: :func:`toml_text` (a whole document), :func:`toml_value`
and :func:`toml_key` (for a writer that lays out its own tables) are the one writer.

Example::

    data = read_toml(Path("my-board.toml"))
    check_keys(data, {"name", "title"}, "my-board.toml")
    name = expect(data, "name", str, "my-board.toml")      # ConfigError if missing or not a string

    >>> toml_value({"fp16": 0.5, "tags": ["a b", None]})
    '{ fp16 = 0.5, tags = ["a b"] }'
    >>> print(toml_text({"name": "x", "latency": {"dispatch_us": 2.0}}, header="made by hand"))
    # made by hand
    name = "x"
    <BLANKLINE>
    [latency]
    dispatch_us = 2.0
    <BLANKLINE>
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["MAX_TOML_BYTES", "check_keys", "expect", "read_toml", "toml_key", "toml_text", "toml_value"]

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


# --- writing -------------------------------------------------------------------------------------

def toml_key(k: str) -> str:
    """``k`` as a TOML key: bare when it can be, else a quoted string."""
    return k if k and all(c.isascii() and (c.isalnum() or c in "-_") for c in k) else _string(k)


def _string(s: str) -> str:
    # JSON's escapes are TOML's (\" \\ \n \uXXXX); DEL is the one control character JSON leaves raw
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(v: Any) -> str:
    """``v`` as a TOML value (inline tables for mappings); None items are left out: TOML has no null.

    Raises ConfigError for what TOML cannot hold (objects other than strings, numbers, booleans, lists, tables).
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):  # numpy's float64 is a float whose repr() is "np.float64(...)": go through float()
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(float(v))
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    if hasattr(v, "item"):  # a numpy scalar
        return toml_value(v.item())
    raise ConfigError(f"TOML cannot hold a {type(v).__name__} ({v!r}); expected strings, numbers, true/false, lists "
                      "and tables.")


def toml_text(table: Mapping[str, Any], header: str = "") -> str:
    """``table`` as a TOML document: scalars first, then each sub-table as ``[name]`` (a short flat one inside a
    table stays inline) and each list of tables as ``[[name]]``; ``header`` lines become comments."""
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    _emit(table, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit(table: Mapping[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)

    def as_table(v: Any) -> bool:  # top-level tables, and long flat ones ([units.sources]); the rest inline
        return isinstance(v, Mapping) and (not path or (len(v) > 3 and not any(
            isinstance(x, Mapping) for x in v.values())))

    for k, v in table.items():
        if v is not None and not as_table(v) and not is_tables(v):
            lines.append(f"{toml_key(k)} = {toml_value(v)}")
    for k, v in table.items():
        name = ".".join(toml_key(p) for p in (*path, k))
        if as_table(v):
            lines.extend(["", f"[{name}]"])
            _emit(v, (*path, k), lines)
        elif is_tables(v):
            for item in v:
                lines.extend(["", f"[[{name}]]"])
                _emit(item, (*path, k), lines)
