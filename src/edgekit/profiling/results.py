"""What ``edgekit profile`` measured, as dataclasses that round-trip through JSON.

A :class:`ProfileReport` holds the provenance, one :class:`ModelInfo` per model file and one
:class:`RuntimeResult` per runtime (and device target). Times are milliseconds, memory is
MiB (2^20 bytes), FLOPs are counts. The JSON layout is versioned by
:data:`SCHEMA_VERSION` and described by :data:`edgekit.profiling.schema.SCHEMA`
(documented in ``docs/profile-schema.md``).

Example::

    report = ProfileReport.from_json(Path("run.json").read_text())
    for r in report.results:
        print(r.runtime, r.status, r.latency.p50 if r.latency else r.error)
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SCHEMA_ID", "SCHEMA_VERSION", "STATUSES", "Latency", "Memory", "ModelInfo", "OpTime", "Parity",
    "ProfileReport", "RuntimeResult",
]

SCHEMA_ID = "https://edgekit.dev/schemas/profile-report"
SCHEMA_VERSION = "1.0"
#: ok: measured; partial: interrupted with samples; error: the worker raised (load failed, …);
#: crash: the worker process died (signal); timeout: killed after --timeout; interrupted: Ctrl-C
#: before any sample; skipped: not run (not installed, cannot read the format, run interrupted).
STATUSES = ("ok", "partial", "error", "crash", "timeout", "interrupted", "skipped")


@dataclass
class Latency:
    """Warm latency over ``n`` runs (ms); ``samples_ms`` is at most 2,000 of them, in time order."""

    n: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    std: float
    p50_ci_low: float | None
    p50_ci_high: float | None
    throughput_ips: float
    stop_reason: str  # "ci" | "budget" | "max_samples" | "interrupted"
    measure_s: float
    samples_ms: list[float] = field(default_factory=list)
    samples_truncated: bool = False


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
    status: str
    error: str | None = None
    error_type: str | None = None
    target: str | None = None
    accelerator: str | None = None
    precision: str | None = None
    threads: int | None = None
    version: str | None = None
    placement: dict[str, Any] | None = None
    import_ms: float | None = None
    load_ms: float | None = None
    first_ms: float | None = None
    latency: Latency | None = None
    gflops_per_s: float | None = None
    memory: Memory | None = None
    ops: list[OpTime] | None = None
    ops_note: str | None = None
    parity: Parity | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    wall_s: float | None = None
    output_tail: str | None = None

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
    size_bytes: int
    sha256: str
    flops: int | None
    macs: int | None
    flops_uncounted: list[str]
    inputs: list[dict[str, Any]]  # {name, shape, dtype, source}


@dataclass
class ProfileReport:
    """Everything one ``edgekit profile`` run measured, with provenance."""

    provenance: dict[str, Any]
    models: list[ModelInfo]
    results: list[RuntimeResult]
    reference: str | None = None
    partial: bool = False
    created: str = ""
    schema: str = SCHEMA_ID
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the schema's layout; key order as declared)."""
        d = _finite(dataclasses.asdict(self))
        return {"schema": d.pop("schema"), "schema_version": d.pop("schema_version"), **d}

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=_jsonable, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileReport:
        """Rebuild a report from :meth:`to_dict`'s layout (validated first)."""
        from edgekit.profiling.schema import validate

        validate(data)
        results = []
        for r in data["results"]:
            r = dict(r)
            r["latency"] = Latency(**r["latency"]) if r.get("latency") else None
            r["memory"] = Memory(**r["memory"]) if r.get("memory") else None
            r["ops"] = [OpTime(**o) for o in r["ops"]] if r.get("ops") is not None else None
            r["parity"] = Parity(**r["parity"]) if r.get("parity") else None
            results.append(RuntimeResult(**r))
        return cls(
            provenance=dict(data["provenance"]), models=[ModelInfo(**m) for m in data["models"]], results=results,
            reference=data.get("reference"), partial=bool(data.get("partial")), created=data.get("created", ""),
            schema=data["schema"], schema_version=data["schema_version"],
        )

    @classmethod
    def from_json(cls, text: str) -> ProfileReport:
        """Parse and validate JSON written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def result(self, result_id: str) -> RuntimeResult | None:
        """The result with this ``id``."""
        return next((r for r in self.results if r.id == result_id), None)


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
