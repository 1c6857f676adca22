"""The JSON Schema of ``edgekit profile --format json``, generated from the report's dataclasses.

:data:`SCHEMA` (draft 2020-12) is built at import by :func:`json_schema`, which walks
``dataclasses.fields`` and ``typing.get_type_hints`` of
:class:`~edgekit.profiling.results.ProfileReport` and the dataclasses it holds, following the
rules written in :mod:`edgekit.profiling.results`; ``edgekit profile --schema`` prints it. There is no
hand-written description of the shape anywhere: change a dataclass and the schema follows.

:func:`validate` needs no third-party package: it reads the report strictly with
:meth:`ProfileReport.from_dict <edgekit.profiling.results.ProfileReport.from_dict>`, which
follows the same rules, so it accepts exactly what a JSON Schema validator (e.g.
``jsonschema.Draft202012Validator``) accepts with :data:`SCHEMA` — ``tests/test_report_schema.py``
checks that the two agree — and it also refuses another major ``schema_version``.

Versioning: ``schema_version`` is ``MAJOR.MINOR``. A reader accepts any minor version of its
major one; new optional fields (defaulting to ``None``) bump the minor version, removed or
re-typed fields the major.

Example::

    validate(json.loads(Path("run.json").read_text()))     # raises ReportError
    json.dumps(SCHEMA, indent=2)                            # what `edgekit profile --schema` prints
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from edgekit.profiling.results import (
    JSON_TYPES,
    SCHEMA_ID,
    SCHEMA_VERSION,
    ProfileReport,
    constraints_of,
    is_required,
)

__all__ = ["DRAFT", "SCHEMA", "json_schema", "validate"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(cls: type, **head: Any) -> dict[str, Any]:
    """The JSON Schema of dataclass ``cls``: its object inline, the dataclasses it holds in ``$defs``.

    ``head`` adds top-level keywords (``$id``, ``title``). Raises ``TypeError`` for a type hint it
    cannot express (a dict with non-string keys, a class that is not a dataclass).

    >>> from edgekit.profiling.results import OpTime
    >>> s = json_schema(OpTime)
    >>> s["required"], s["properties"]["kernel"]
    (['name', 'type', 'time_ms', 'share'], {'type': ['string', 'null']})
    """
    defs: dict[str, dict[str, Any]] = {}
    body = _object(cls, defs)
    return {"$schema": DRAFT, **head, **body, **({"$defs": defs} if defs else {})}


def _object(cls: type, defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    fields = dataclasses.fields(cls)
    doc = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " ").replace("``", "`")
    return {
        "type": "object", **({"description": doc} if doc else {}),
        "properties": {f.name: _schema(hints[f.name], defs) for f in fields},
        "required": [f.name for f in fields if is_required(f)],
        "additionalProperties": False,
    }


def _schema(hint: Any, defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The schema of one type hint (dataclasses go to ``defs`` once, by class name)."""
    base, extras = constraints_of(hint)
    origin, args = get_origin(base), get_args(base)
    if base is Any:
        out: dict[str, Any] = {}
    elif dataclasses.is_dataclass(base) and isinstance(base, type):
        if base.__name__ not in defs:
            defs[base.__name__] = {}  # reserves the name (and its place in the order) before recursing
            defs[base.__name__] = _object(base, defs)
        out = {"$ref": f"#/$defs/{base.__name__}"}
    elif origin is Literal:
        kinds = list(dict.fromkeys(JSON_TYPES[type(v)] for v in args))
        out = {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": list(args)}
    elif origin in (Union, types.UnionType):
        parts = [_schema(a, defs) for a in args]
        if all(list(p) == ["type"] for p in parts):  # simple types only: one "type" list
            out = {"type": [t for p in parts for t in (p["type"] if isinstance(p["type"], list) else [p["type"]])]}
        else:
            out = {"anyOf": parts}
    elif origin is list:
        out = {"type": "array", "items": _schema(args[0], defs)}
    elif origin is dict and args and args[0] is str:
        out = {"type": "object", **({} if args[1] is Any else {"additionalProperties": _schema(args[1], defs)})}
    elif base in JSON_TYPES:
        out = {"type": JSON_TYPES[base]}
    else:
        raise TypeError(f"no JSON Schema for the type hint {hint!r}: use a dataclass, list[X], dict[str, X], "
                        f"X | None, Literal[...], Any or one of {[t.__name__ for t in JSON_TYPES]}")
    return {**out, **extras}


SCHEMA: dict[str, Any] = json_schema(
    ProfileReport, **{"$id": f"{SCHEMA_ID}/{SCHEMA_VERSION}", "title": "edgekit profile report"})


def validate(data: Any) -> None:
    """Raise :class:`~edgekit.errors.ReportError` listing every place where ``data`` breaks :data:`SCHEMA`
    (JSON path, what was expected, what was found), or when it is of another major schema version.

    >>> validate({"schema_version": "1.0"})
    Traceback (most recent call last):
    edgekit.errors.ReportError: not a valid edgekit profile report (schema 1.2): $: missing required key ...
    """
    ProfileReport.from_dict(data)
