"""The JSON Schema of ``edgekit profile --format json`` and a small validator for it.

:data:`SCHEMA` is a JSON Schema (draft 2020-12) document; ``edgekit profile --schema``
prints it. :func:`validate` checks a report against it with no third-party dependency,
implementing the keywords the schema uses: ``type`` (also lists of types), ``properties``,
``required``, ``additionalProperties: false``, ``items``, ``enum``, ``minimum``, ``const``
and ``$ref`` to ``#/$defs/...``. Any JSON Schema validator (e.g. ``jsonschema``) accepts the
same document.

Versioning: ``schema_version`` is ``MAJOR.MINOR``. A reader accepts any minor version of its
major one; new optional fields bump the minor version, removed or re-typed fields the major.

Example::

    validate(json.loads(Path("run.json").read_text()))     # raises ReportError
"""

from __future__ import annotations

from typing import Any

from edgekit.errors import ReportError
from edgekit.profiling.results import SCHEMA_ID, SCHEMA_VERSION, STATUSES

__all__ = ["SCHEMA", "validate"]


_NUM = {"type": "number"}
_NNUM = {"type": ["number", "null"]}
_NSTR = {"type": ["string", "null"]}
_NINT = {"type": ["integer", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required if required is not None else list(props),
            "additionalProperties": False}


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{SCHEMA_ID}/{SCHEMA_VERSION}",
    "title": "edgekit profile report",
    "$defs": {
        "latency": _obj({
            "n": {"type": "integer", "minimum": 1}, "min": _NUM, "p50": _NUM, "p90": _NUM, "p99": _NUM, "max": _NUM,
            "mean": _NUM, "std": _NUM, "p50_ci_low": _NNUM, "p50_ci_high": _NNUM, "throughput_ips": _NUM,
            "stop_reason": {"enum": ["ci", "budget", "max_samples", "interrupted"]}, "measure_s": _NUM,
            "samples_ms": {"type": "array", "items": _NUM}, "samples_truncated": {"type": "boolean"},
        }),
        "memory": _obj({"rss_before_load_mb": _NNUM, "rss_after_load_mb": _NNUM, "peak_load_mb": _NNUM,
                        "peak_run_mb": _NNUM, "method": {"type": "string"}}),
        "op": _obj({"name": {"type": "string"}, "type": {"type": "string"}, "time_ms": _NUM, "share": _NUM,
                    "kernel": _NSTR}),
        "parity": _obj({
            "reference": {"type": "string"}, "max_abs": _NNUM, "max_rel": _NNUM, "scaled_err": _NNUM, "cosine": _NNUM,
            "argmax_agreement": _NNUM, "within_tolerance": {"type": "boolean"}, "atol": _NUM, "rtol": _NUM,
            "note": _NSTR,
        }),
        "result": _obj({
            "id": {"type": "string"}, "runtime": {"type": "string"}, "model": {"type": "string"},
            "format": {"type": "string"}, "status": {"enum": list(STATUSES)}, "error": _NSTR, "error_type": _NSTR,
            "target": _NSTR, "accelerator": _NSTR, "precision": _NSTR, "threads": _NINT, "version": _NSTR,
            "placement": {"type": ["object", "null"]}, "import_ms": _NNUM, "load_ms": _NNUM, "first_ms": _NNUM,
            "latency": {"anyOf": [{"$ref": "#/$defs/latency"}, {"type": "null"}]}, "gflops_per_s": _NNUM,
            "memory": {"anyOf": [{"$ref": "#/$defs/memory"}, {"type": "null"}]},
            "ops": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/op"}}, {"type": "null"}]},
            "ops_note": _NSTR, "parity": {"anyOf": [{"$ref": "#/$defs/parity"}, {"type": "null"}]},
            "libraries": {"type": "object"}, "wall_s": _NNUM, "output_tail": _NSTR,
        }, required=["id", "runtime", "model", "format", "status"]),
        "model": _obj({
            "name": {"type": "string"}, "path": {"type": "string"}, "format": {"type": "string"},
            "size_bytes": {"type": "integer", "minimum": 0}, "sha256": {"type": "string"}, "flops": _NINT,
            "macs": _NINT, "flops_uncounted": {"type": "array", "items": {"type": "string"}},
            "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "dtype", "source"]}},
        }),
    },
    "type": "object",
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "schema_version": {"type": "string"},
        "provenance": {"type": "object", "required": ["edgekit", "host", "cpu", "python", "method"]},
        "models": {"type": "array", "items": {"$ref": "#/$defs/model"}},
        "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
        "reference": _NSTR,
        "partial": {"type": "boolean"},
        "created": {"type": "string"},
    },
    "required": ["schema", "schema_version", "provenance", "models", "results", "partial", "created"],
    "additionalProperties": False,
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,), "number": (int, float),
}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    if "$ref" in schema:
        _check(value, SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[-1]], path, errors)
        return
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            sub: list[str] = []
            _check(value, option, path, sub)
            if not sub:
                return
        errors.append(f"{path}: {_short(value)} matches none of the allowed forms")
        return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}, got {_short(value)}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: expected one of {schema['enum']}, got {_short(value)}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            errors.append(f"{path}: expected {' or '.join(types)}, got {type(value).__name__} {_short(value)}")
            return
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        errors.append(f"{path}: expected >= {schema['minimum']}, got {value}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required key {key!r}")
        for key, v in value.items():
            if key in props:
                _check(v, props[key], f"{path}.{key}", errors)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected key {key!r}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            _check(v, schema["items"], f"{path}[{i}]", errors)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(data: Any) -> None:
    """Raise :class:`ReportError` listing every place where ``data`` breaks :data:`SCHEMA`."""
    errors: list[str] = []
    _check(data, SCHEMA, "$", errors)
    if not errors and isinstance(data, dict):
        major = str(data["schema_version"]).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            errors.append(f"$.schema_version: this edgekit reads {SCHEMA_VERSION.split('.')[0]}.x, "
                          f"got {data['schema_version']}")
    if errors:
        shown = "; ".join(errors[:10]) + (f"; and {len(errors) - 10} more" if len(errors) > 10 else "")
        raise ReportError(
            f"not a valid edgekit profile report (schema {SCHEMA_VERSION}): {shown}. "
            "Expected JSON written by `edgekit profile --format json`; re-run it with this edgekit version."
        )
