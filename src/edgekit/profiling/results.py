"""What ``edgekit profile`` measured, as dataclasses that round-trip through JSON.

A :class:`ProfileReport` holds the provenance, one :class:`ModelInfo` per model file and one
:class:`RuntimeResult` per runtime (and device target). Times are milliseconds, memory is
MiB (2^20 bytes), FLOPs are counts. The JSON layout is versioned by :data:`SCHEMA_VERSION`
and documented in ``docs/profile-schema.md``.

These dataclasses are the one definition of that layout. :mod:`edgekit.profiling.schema`
generates the JSON Schema from their fields and type hints, and :meth:`ProfileReport.from_dict`
reads a report strictly by the same hints, so the two accept the same documents:

* a dataclass is a JSON object with exactly its fields: an unknown key is an error;
* a key may be left out only where its field defaults to ``None`` (absent means null,
  :func:`is_required`); every other key is required, even when the constructor has a default;
* ``X | None`` also allows null, ``list[X]`` is an array, ``dict[str, X]`` an object,
  ``Literal[...]`` one of its values; ``float`` is any JSON number, ``int`` an integral one,
  ``bool`` only true or false, ``Any`` anything;
* ``Annotated[T, {...}]`` adds JSON-Schema keywords, of :data:`CONSTRAINTS` only: ``minimum``,
  ``const``, and ``required`` (the keys a free-form object must have).

Example::

    report = ProfileReport.from_json(Path("run.json").read_text())   # raises ReportError
    for r in report.results:
        print(r.runtime, r.status, r.latency.p50 if r.latency else r.error)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from edgekit.errors import ReportError
from edgekit.profiling.stats import LatencyStats

__all__ = [
    "CONSTRAINTS", "JSON_TYPES", "SCHEMA_ID", "SCHEMA_VERSION", "STATUSES", "InputInfo", "Memory", "ModelInfo",
    "OpTime", "Parity", "ProfileReport", "Provenance", "RuntimeResult", "Status", "constraints_of", "is_required",
]

SCHEMA_ID = "https://edgekit.dev/schemas/profile-report"
SCHEMA_VERSION = "1.2"  # 1.1: results[].precision_requested and .note, reference_run; 1.2: results[].device,
#                          .node, .host and the statuses unavailable and failed (a fleet's merged report)
#: ok: measured; partial: interrupted with samples; error: the worker raised (load failed, …);
#: crash: the worker process died (signal); timeout: killed after --timeout; interrupted: Ctrl-C
#: before any sample; skipped: not run (not installed, cannot read the format, run interrupted);
#: unavailable: (fleet) no node of the device was there; failed: (fleet) the device's job failed or its node died.
Status = Literal["ok", "partial", "error", "crash", "timeout", "interrupted", "skipped", "unavailable", "failed"]
STATUSES: tuple[str, ...] = get_args(Status)
#: JSON-Schema keywords an ``Annotated`` hint may add (the reader checks each of them).
CONSTRAINTS = ("minimum", "const", "required")
#: Python type of a hint -> JSON type (``int`` before ``float``: JSON's integers are numbers too).
JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number",
                               type(None): "null"}

#: ``models[].inputs[]``: ``{name, shape, dtype, source}`` (more keys allowed).
InputInfo = Annotated[dict[str, Any], {"required": ["name", "shape", "dtype", "source"]}]
#: Where and how the measurements were taken (``engine.provenance``; more keys allowed).
Provenance = Annotated[dict[str, Any], {"required": ["edgekit", "host", "cpu", "python", "method"]}]


@dataclass
class Memory:
    """RSS of the isolated worker process (MiB)."""

    rss_before_load_mb: float | None
    rss_after_load_mb: float | None
    peak_load_mb: float | None  # high-water mark up to the end of loading
    peak_run_mb: float | None  # high-water mark while running (reset after loading where the OS allows)
    method: str


@dataclass
class OpTime:
    """One operator's average time per run, as the runtime's profiler reports it."""

    name: str
    type: str
    time_ms: float
    share: float  # of the summed operator time
    kernel: str | None = None


@dataclass
class Parity:
    """Outputs of this result against the reference result's, on the same inputs."""

    reference: str
    max_abs: float | None
    max_rel: float | None
    scaled_err: float | None  # max_abs / max |ref|: what the tolerance applies to
    cosine: float | None
    argmax_agreement: float | None
    within_tolerance: bool
    atol: float
    rtol: float
    note: str | None = None


@dataclass
class RuntimeResult:
    """One runtime (and device target) on one model file."""

    id: str
    runtime: str
    model: str
    format: str
    status: Status
    error: str | None = None
    error_type: str | None = None
    target: str | None = None
    accelerator: str | None = None
    precision: str | None = None  # what ran
    precision_requested: str | None = None  # what was asked (-p or the device target), when anything was
    note: str | None = None  # e.g. why the precision asked for is not the one that ran
    threads: int | None = None
    version: str | None = None
    placement: dict[str, Any] | None = None
    import_ms: float | None = None
    load_ms: float | None = None
    first_ms: float | None = None
    latency: LatencyStats | None = None
    gflops_per_s: float | None = None
    memory: Memory | None = None
    ops: list[OpTime] | None = None
    ops_note: str | None = None
    parity: Parity | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    wall_s: float | None = None
    output_tail: str | None = None
    device: str | None = None  # a fleet's merged report: the device profile (node label) the row ran on
    node: str | None = None  # ... the Ray node id
    host: str | None = None  # ... the node's host name

    @property
    def measured(self) -> bool:
        """True when warm latencies exist (status ok or partial)."""
        return self.latency is not None


@dataclass
class ModelInfo:
    """One model file: size, FLOPs and the inputs every runtime received."""

    name: str
    path: str
    format: str
    size_bytes: Annotated[int, {"minimum": 0}]
    sha256: str
    flops: int | None
    macs: int | None
    flops_uncounted: list[str]
    inputs: list[InputInfo]


@dataclass
class ProfileReport:
    """Everything one ``edgekit profile`` run measured, with provenance."""

    provenance: Provenance
    models: list[ModelInfo]
    results: list[RuntimeResult]
    reference: str | None = None
    #: a float32 run made only to be the parity reference, when no row computed in float32 (not a row)
    reference_run: RuntimeResult | None = None
    partial: bool = False
    created: str = ""
    schema: Annotated[str, {"const": SCHEMA_ID}] = SCHEMA_ID
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the schema's layout; key order as declared, ``schema`` first).

        >>> ProfileReport({}, [], []).to_dict()["schema_version"]
        '1.2'
        """
        d = _finite(dataclasses.asdict(self))
        return {"schema": d.pop("schema"), "schema_version": d.pop("schema_version"), **d}

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (no NaN or infinities: those become null).

        >>> ProfileReport({}, [], []).to_json(indent=None)[:11]
        '{"schema": '
        """
        return json.dumps(self.to_dict(), indent=indent, default=_jsonable, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> ProfileReport:
        """Read :meth:`to_dict`'s layout strictly (see the module docstring for the rules).

        Raises :class:`~edgekit.errors.ReportError` naming every JSON path that breaks the
        layout, what was expected there and what was found; a report of another major
        ``schema_version`` is refused with that alone.

        >>> ProfileReport.from_dict({"schema_version": "2.0"})
        Traceback (most recent call last):
        edgekit.errors.ReportError: not a valid edgekit profile report (schema 1.2): $.schema_version: ...
        """
        errors: list[str] = []
        major = SCHEMA_VERSION.split(".")[0]
        version = data.get("schema_version") if isinstance(data, dict) else None
        if isinstance(version, str) and version.split(".")[0] != major:
            errors.append(f"$.schema_version: this edgekit reads {major}.x, got {version}")
            report = None
        else:
            report = _read(data, cls, "$", errors)
        if errors or not isinstance(report, cls):
            shown = "; ".join(errors[:10]) + (f"; and {len(errors) - 10} more" if len(errors) > 10 else "")
            raise ReportError(
                f"not a valid edgekit profile report (schema {SCHEMA_VERSION}): {shown}. "
                "Expected JSON written by `edgekit profile --format json`; re-run it with this edgekit version."
            )
        return report

    @classmethod
    def from_json(cls, text: str) -> ProfileReport:
        """Parse JSON written by :meth:`to_json` and read it with :meth:`from_dict` (raises ReportError)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(f"not a JSON profile report ({exc}); expected the file `edgekit profile --format json "
                              "-o FILE` wrote (an HTML, CSV or table report cannot be compared).") from exc
        return cls.from_dict(data)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ProfileReport:
        """Read a JSON report from ``path`` (raises ReportError naming the file when it is not one)."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ReportError(f"{path}: not a JSON profile report (binary data: {exc.reason}); expected the file "
                              "`edgekit profile --format json -o FILE` wrote.") from exc
        except ReportError as exc:
            raise ReportError(f"{path}: {exc}") from exc

    def result(self, result_id: str) -> RuntimeResult | None:
        """The result with this ``id``.

        >>> ProfileReport({}, [], []).result("onnxruntime") is None
        True
        """
        return next((r for r in self.results if r.id == result_id), None)


# -- the rules shared with the schema generator --------------------------------------------------

def is_required(f: dataclasses.Field[Any]) -> bool:
    """Whether a report must contain this field's key: all but those defaulting to ``None``.

    >>> [is_required(f) for f in dataclasses.fields(OpTime)]
    [True, True, True, True, False]
    """
    return f.default is not None


def constraints_of(hint: Any) -> tuple[Any, dict[str, Any]]:
    """``Annotated[T, {...}, ...]`` -> ``(T, merged keywords)``; any other hint -> ``(hint, {})``.

    Raises ``TypeError`` for a keyword outside :data:`CONSTRAINTS` (non-dict metadata is ignored).

    >>> constraints_of(Annotated[int, {"minimum": 1}])
    (<class 'int'>, {'minimum': 1})
    """
    if get_origin(hint) is not Annotated:
        return hint, {}
    extras: dict[str, Any] = {}
    for meta in hint.__metadata__:
        if isinstance(meta, dict):
            extras.update(meta)
    unknown = set(extras) - set(CONSTRAINTS)
    if unknown:
        raise TypeError(f"{hint}: unsupported schema keyword(s) {sorted(unknown)}; supported: {list(CONSTRAINTS)}")
    return hint.__origin__, extras


# -- the strict reader -------------------------------------------------------------------------------

_BAD = object()  # what _read returns where the data is invalid (the errors say why)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value``'s JSON type is the one ``hint`` reads (what a union chooses its member by)."""
    hint, _ = constraints_of(hint)
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in get_args(hint))
    if origin is Literal:
        return any(_fits(value, type(v)) for v in get_args(hint))
    if origin is list:
        return isinstance(value, list)
    if origin is dict or dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    if isinstance(value, bool) or hint is bool:
        return isinstance(value, bool) and hint is bool
    if hint is int:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if hint is float:
        return isinstance(value, (int, float))
    return hint in JSON_TYPES and isinstance(value, hint)


def _kind(hint: Any) -> str:
    """The JSON type(s) ``hint`` reads, for messages."""
    hint, _ = constraints_of(hint)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_kind(a) for a in get_args(hint))
    if origin is Literal:
        return " or ".join(dict.fromkeys(_kind(type(v)) for v in get_args(hint)))
    if origin is list:
        return "array"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "object"
    return JSON_TYPES[hint] if hint in JSON_TYPES else "anything"


def _found(value: Any) -> str:
    kinds: dict[type, str] = {**JSON_TYPES, dict: "object", list: "array"}
    kind = next((k for t, k in kinds.items() if isinstance(value, t)), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _read(value: Any, hint: Any, path: str, errors: list[str]) -> Any:
    """``value`` read as ``hint`` (dataclasses built), or ``_BAD`` after appending to ``errors``."""
    hint, extras = constraints_of(hint)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        member = next((a for a in args if _fits(value, a)), None)
        if member is None:
            errors.append(f"{path}: expected {_kind(hint)}, got {_found(value)}")
            return _BAD
        out = _read(value, member, path, errors)
    elif not _fits(value, hint):
        errors.append(f"{path}: expected {_kind(hint)}, got {_found(value)}")
        return _BAD
    elif origin is Literal:
        if value not in args:
            errors.append(f"{path}: expected one of {list(args)}, got {_found(value)}")
            return _BAD
        out = value
    elif origin is list:
        out = [_read(v, args[0], f"{path}[{i}]", errors) for i, v in enumerate(value)]
        out = _BAD if any(x is _BAD for x in out) else out
    elif origin is dict:
        out = {k: _read(v, args[1], f"{path}.{k}", errors) for k, v in value.items()}
        out = _BAD if any(x is _BAD for x in out.values()) else out
    elif dataclasses.is_dataclass(hint):
        out = _read_object(value, hint, path, errors)
    else:
        out = int(value) if hint is int else value  # 2.0 is an integer in JSON Schema
    return out if out is _BAD or not extras else _constrain(out, extras, path, errors)


def _read_object(value: dict[str, Any], cls: Any, path: str, errors: list[str]) -> Any:
    hints, before = _hints(cls), len(errors)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            kwargs[f.name] = _read(value[f.name], hints[f.name], f"{path}.{f.name}", errors)
        elif is_required(f):
            errors.append(f"{path}: missing required key {f.name!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    errors.extend(f"{path}: unexpected key {k!r}" for k in value if k not in names)
    return cls(**kwargs) if len(errors) == before else _BAD


def _constrain(value: Any, extras: dict[str, Any], path: str, errors: list[str]) -> Any:
    before = len(errors)
    if "const" in extras and value != extras["const"]:
        errors.append(f"{path}: expected {extras['const']!r}, got {_found(value)}")
    if "minimum" in extras and value < extras["minimum"]:
        errors.append(f"{path}: expected >= {extras['minimum']}, got {value}")
    errors.extend(f"{path}: missing required key {k!r}" for k in extras.get("required", ()) if k not in value)
    return value if len(errors) == before else _BAD


# -- writing ---------------------------------------------------------------------------------------

def _finite(v: Any) -> Any:
    """NaN and infinities (not JSON) become None, recursively."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _jsonable(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return dataclasses.asdict(v)
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    return str(v)
