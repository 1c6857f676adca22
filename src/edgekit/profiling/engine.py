"""The measurement engine behind ``edgekit profile``: plan, isolate, measure, compare. It never prints.

:func:`profile` measures one model file (or the bundled sample's ONNX and TFLite twins) on
every selected runtime — or every usable target of a device profile — each in its own
process (:func:`~edgekit.isolation.run_isolated`), one after the other so they do not
disturb each other. A crash or a hang becomes an error row; the others are still measured.
All runtimes get the same inputs (made once here, written to a ``.npz``); their first
outputs are compared with the reference result's. Progress goes to ``on_event``:

* ``{"event": "plan", "jobs": [id, ...]}``
* ``{"event": "start", "id": id, "index": i, "total": n}``
* ``{"event": "progress", "id": id, "stage": "loading"|"warmup"|"measuring"|"op-profile", ...}``
* ``{"event": "done", "id": id, "result": RuntimeResult}``

:func:`measure_config` measures one configuration (an :class:`edgekit.plan.Config`: runtime,
accelerator, precision, threads, options) in the same isolated worker, for ``edgekit tune``.

Ctrl-C (KeyboardInterrupt) stops the run: the runtime being measured returns what it has,
the rest are marked skipped, and the report comes back with ``partial=True``.

Example::

    report = profile("det.onnx", runtimes=["onnxruntime", "openvino"], duration=5)
    print([(r.runtime, r.latency.p50) for r in report.results if r.latency])
"""

from __future__ import annotations

import datetime
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.catalog import REFERENCE_RUNTIMES
from edgekit.hostinfo import HostInfo
from edgekit.isolation import IsolatedFailure, IsolatedInterrupted, run_isolated
from edgekit.models.formats import ModelFile, open_model
from edgekit.plan import Config
from edgekit.profiling.parity import ATOL, RTOL, compare_outputs
from edgekit.profiling.results import Memory, ModelInfo, OpTime, ProfileReport, RuntimeResult
from edgekit.profiling.stats import CI_METHOD, PERCENTILE_DEFINITION, StoppingRule, summarize
from edgekit.profiling.targets import Job, device_jobs, pick_model, resolve_runtime

__all__ = ["Job", "measure_config", "profile"]  # Job is defined in targets (which plans the rows) and re-exported here

REFERENCE_RUNTIME = {**REFERENCE_RUNTIMES, "openvino": "openvino", "mnn": "mnn"}
MIN_TIME_S = 0.5  # no stopping on the CI before this much timed running
Event = Callable[[dict[str, Any]], None]


def _models(model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> list[ModelFile]:
    if model is None:
        from edgekit.models.sample import sample_model

        return [open_model(sample_model("onnx")), open_model(sample_model("tflite"))]
    if isinstance(model, (str, os.PathLike)):
        return [open_model(model)]
    return [open_model(m) for m in model]


def plan(models: list[ModelFile], runtimes: Sequence[str] | None, *, device: str | None = None,
         precision: str | Mapping[str, str] | None = None) -> list[Job]:
    """The rows to measure: one per runtime (on the first model file it reads natively, else by converting),
    or one per target of the ``device`` profile."""
    from edgekit.registry import iter_runtimes, runtime_names

    if device is not None:
        return device_jobs(models, device, runtimes=runtimes, precision=precision)
    wanted = list(runtimes or [])
    everything = "all" in wanted
    jobs: list[Job] = []
    if not wanted or everything:
        import warnings

        with warnings.catch_warnings():  # a broken plugin becomes a skipped row below, not a warning
            warnings.simplefilter("ignore")
            rts = iter_runtimes()
        if not everything:  # e.g. the emulated runtime: measured only when named
            rts = [rt for rt in rts if rt.picked_by_default]
        loaded = {rt.name for rt in rts}
        if everything:
            for name in runtime_names():
                if name not in loaded:
                    jobs.append(Job(name, name, models[0], skip=resolve_runtime(name)[1]))
    else:
        rts = []
        for name in dict.fromkeys(wanted):
            get_runtime_names_check(name)
            rt, why = resolve_runtime(name)
            if rt is None:
                jobs.append(Job(name, name, models[0], skip=why))
            else:
                rts.append(rt)
    multi = len(models) > 1
    for rt in rts:
        m = pick_model(rt, models)
        prec = precision.get(rt.name) if isinstance(precision, Mapping) else precision
        jid = f"{rt.name}/{m.format}" if (m is not None and multi) else rt.name
        job = Job(jid, rt.name, m or models[0], precision=prec, device=device)
        if m is None:
            if not wanted:
                continue
            job.skip = f"{rt.name} cannot read {', '.join(sorted({x.format for x in models}))} models"
        elif not rt.is_installed():
            if not wanted:
                continue
            job.skip = f"not installed: {rt.info.install_hint}"
        jobs.append(job)
    return jobs


def get_runtime_names_check(name: str) -> None:
    """Raise UnknownRuntimeError (a usage error) for a name no plugin registers."""
    from edgekit.registry import get_runtime, runtime_names

    if name not in runtime_names():
        get_runtime(name)  # raises UnknownRuntimeError listing the registered names


def profile(
    model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    runtimes: Sequence[str] | None = None,
    device: str | None = None,
    threads: int | None = None,
    precision: str | Mapping[str, str] | None = None,
    duration: float = 3.0,
    warmup: int = 10,
    inputs: Sequence[tuple[str | None, Path]] = (),
    shapes: Mapping[str, Sequence[int]] | None = None,
    seed: int = 0,
    timeout: float = 120.0,
    op_profile: bool = True,
    reference: str | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
    rule: StoppingRule | None = None,
    on_event: Event | None = None,
) -> ProfileReport:
    """Measure ``model`` (default: the bundled sample) on each runtime; see the module docstring."""
    emit = on_event or (lambda e: None)
    rule = rule or StoppingRule()
    models = _models(model)
    jobs = plan(models, runtimes, device=device, precision=precision)
    used = {j.model.path for j in jobs}
    models = [m for m in models if m.path in used] or models
    emit({"event": "plan", "jobs": [j.id for j in jobs]})
    results: list[RuntimeResult] = []
    partial = False
    with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
        infos, feeds_path = _prepare_inputs(models, inputs, seed, Path(tmp), shapes)
        for i, job in enumerate(jobs):
            if partial:
                results.append(_skipped(job, "not run: the run was interrupted"))
                continue
            try:
                emit({"event": "start", "id": job.id, "index": i, "total": len(jobs)})
                if job.skip:
                    row = _skipped(job, job.skip)
                else:
                    spec = _job_dict(job, threads=threads, duration=duration, warmup=warmup, rule=rule,
                                     inputs=feeds_path[job.model.path], workdir=tmp, op_profile=op_profile)
                    row, partial = _measure(job, spec, timeout, emit, threads, infos[job.model.path])
                emit({"event": "done", "id": job.id, "result": row})
            except KeyboardInterrupt:  # between two runtimes: nothing of this one was measured
                partial = True
                row = _skipped(job, "not run: the run was interrupted")
            results.append(row)
        ref = _parity(results, jobs, reference, Path(tmp), atol, rtol)
    return ProfileReport(
        provenance=provenance(device=next((j.device for j in jobs if j.device), device), threads=threads,
                              precision=precision, seed=seed, rule=rule, duration=duration, warmup=warmup,
                              timeout=timeout, results=results),
        models=list(infos.values()), results=results, reference=ref, partial=partial,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def _measure(job: Job, spec: dict[str, Any], timeout: float, emit: Event, threads: int | None,
             info: ModelInfo) -> tuple[RuntimeResult, bool]:
    """Run one job isolated; ``(row, interrupted)``."""
    interrupted = False
    t0 = time.perf_counter()
    try:
        out = run_isolated("edgekit.profiling.worker:measure", (spec,), timeout=timeout,
                           on_message=lambda m: emit({"event": "progress", "id": job.id, **m}))
    except IsolatedInterrupted as exc:
        out, interrupted = exc.result, True
    row = _row(job, out, threads, info, time.perf_counter() - t0)
    if interrupted and row.status in ("crash", "error"):
        row.status, row.error = "interrupted", "interrupted before a result"
    return row, interrupted


def measure_config(model: str | os.PathLike[str] | ModelFile, config: Config, *, inputs: str | os.PathLike[str],
                   outputs: str | os.PathLike[str], gate: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]] = (),
                   duration: float = 0.3, warmup: int = 3, rule: StoppingRule | None = None, min_time: float = 0.0,
                   timeout: float = 60.0, job_id: str | None = None, on_event: Event | None = None) -> RuntimeResult:
    """Measure ``model`` with one configuration in an isolated worker; never raises for the runtime's failures.

    ``inputs``: a ``.npz`` of feeds (:func:`edgekit.profiling.inputs.save_arrays`) timed for up to
    ``duration`` seconds after ``warmup`` runs (stopping earlier by ``rule``, not before
    ``min_time`` s); the first outputs are written to ``outputs`` and each ``gate`` pair
    ``(inputs.npz, outputs.npz)`` is run once. A crash, hang (``timeout``), load error or absent
    accelerator comes back as the row's ``status`` (crash/timeout/error/skipped) with ``error``.
    A quantized (int8) model is opened in its own precision, as a plan opens it. On Ctrl-C the row
    comes back with status ``partial`` or ``interrupted`` (the caller stops).

    >>> row = measure_config("det.onnx", Config("openvino", threads=2), inputs="in.npz",
    ...                      outputs="out.npz")                                      # doctest: +SKIP
    >>> row.status, row.latency.p50                                                  # doctest: +SKIP
    ('ok', 3.2)
    """
    from edgekit.models.precision import model_precision

    mf = model if isinstance(model, ModelFile) else open_model(model)
    prec = None if model_precision(mf) == "int8" else config.precision
    job = Job(job_id or config.describe(), config.runtime, mf, accelerator=config.accelerator, precision=prec,
              target=config.target, options=dict(config.options))
    rt, why = resolve_runtime(config.runtime)
    if rt is None or type(rt).__module__ == "__main__":
        return _skipped(job, why or f"runtime {config.runtime!r} was registered from a class defined in __main__, which "
                        "the isolated worker cannot import; define the adapter class in an importable module.")
    rule = rule or StoppingRule()
    spec = _job_dict(job, threads=config.threads, duration=duration, warmup=warmup, rule=rule, inputs=str(inputs),
                     workdir=str(Path(outputs).parent), op_profile=False)
    spec.update(outputs=str(outputs), min_time=min_time, gate=[[str(a), str(b)] for a, b in gate])
    info = ModelInfo(name=mf.path.name, path=str(mf.path), format=mf.format, size_bytes=mf.size, sha256="",
                     flops=None, macs=None, flops_uncounted=[], inputs=[])
    row, interrupted = _measure(job, spec, timeout, on_event or (lambda e: None), config.threads, info)
    if interrupted and row.status == "ok":
        row.status = "partial"
    return row


def _prepare_inputs(models: list[ModelFile], given: Sequence[tuple[str | None, Path]], seed: int,
                    tmp: Path, shapes: Mapping[str, Sequence[int]] | None = None,
                    ) -> tuple[dict[Path, ModelInfo], dict[Path, str]]:
    from edgekit.models.flops import count_flops
    from edgekit.profiling.inputs import describe_feeds, input_specs, make_inputs, save_arrays

    infos: dict[Path, ModelInfo] = {}
    paths: dict[Path, str] = {}
    shared: dict[str, np.ndarray] = {}
    for k, m in enumerate(models):
        feeds, sources = make_inputs(input_specs(m), given=given, shared=shared, seed=seed, shapes=shapes)
        for name, arr in feeds.items():
            shared.setdefault(name, arr)
        path = tmp / f"inputs-{k}.npz"
        save_arrays(path, feeds)
        paths[m.path] = str(path)
        flops: int | None = None
        macs: int | None = None
        unc: list[str] = []
        try:
            fc = count_flops(m, {n: a.shape for n, a in feeds.items()})
            flops, macs, unc = fc.flops, fc.macs, list(fc.uncounted)
        except Exception:  # noqa: BLE001 - FLOPs are informative; a model they cannot be counted on is still measured
            pass
        infos[m.path] = ModelInfo(name=m.path.name, path=str(m.path), format=m.format, size_bytes=m.size,
                                  sha256=m.sha256(), flops=flops, macs=macs, flops_uncounted=unc,
                                  inputs=describe_feeds(feeds, sources))
    return infos, paths


def _job_dict(job: Job, *, threads: int | None, duration: float, warmup: int, rule: StoppingRule, inputs: str,
              workdir: str, op_profile: bool) -> dict[str, Any]:
    return {
        "runtime": job.runtime, "model": str(job.model.path), "accelerator": job.accelerator,
        "precision": job.precision, "device": job.device, "options": dict(job.options), "threads": threads,
        "duration": duration, "warmup": warmup, "rel_tol": rule.rel_tol, "min_samples": rule.min_samples,
        "min_time": MIN_TIME_S,
        "inputs": inputs, "outputs": str(Path(workdir) / f"outputs-{_safe(job.id)}.npz"),
        "workdir": workdir, "op_profile": op_profile, "runtime_class": _runtime_class(job.runtime),
    }


def _runtime_class(name: str) -> type | None:
    """The adapter class the worker registers should ``name`` be unknown there (register_runtime()); a class
    defined in a script's ``__main__`` cannot be imported by another process: None."""
    rt = resolve_runtime(name)[0]
    return None if rt is None or type(rt).__module__ == "__main__" else type(rt)


def _safe(job_id: str) -> str:
    """A file-name-safe form of a result id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in job_id)


def _skipped(job: Job, reason: str) -> RuntimeResult:
    return RuntimeResult(id=job.id, runtime=job.runtime, model=job.model.path.name, format=job.model.format,
                         status="skipped", error=reason, target=job.target, accelerator=job.accelerator,
                         precision=job.precision)


def _row(job: Job, out: Any, threads: int | None, info: ModelInfo, wall: float) -> RuntimeResult:
    row = _skipped(job, "")
    row.error, row.wall_s = None, wall
    if isinstance(out, IsolatedFailure):
        row.status = "crash" if out.kind == "crash" else "timeout" if out.kind == "timeout" else "error"
        row.error, row.error_type = out.describe(), out.error_type
        if out.kind != "error":
            row.output_tail = out.output_tail[-1000:] or None
        return row
    row.status = out["status"]
    if row.status == "skipped":
        row.error, row.error_type = out.get("error"), out.get("error_type")
        return row
    pl = out.get("placement") or {}
    row.placement = pl or None
    row.accelerator = pl.get("accelerator", job.accelerator)
    row.precision = pl.get("precision", job.precision)
    row.version = pl.get("version")
    row.threads = (pl.get("options") or {}).get("threads", threads)
    row.target = pl.get("target") or job.target
    row.import_ms, row.load_ms, row.first_ms = out.get("import_ms"), out.get("load_ms"), out.get("first_ms")
    row.libraries = out.get("libraries") or {}
    if out.get("memory"):
        row.memory = Memory(**out["memory"])
    samples = np.asarray(out.get("samples_ns") or [], dtype=np.float64) / 1e6
    if samples.size:
        row.latency = summarize(samples, stop_reason=out.get("stop_reason") or "budget")
        if info.flops:
            row.gflops_per_s = info.flops / (row.latency.p50 / 1000.0) / 1e9
    elif row.status == "ok":
        row.status = "interrupted"
    if out.get("ops") is not None:
        row.ops = [OpTime(**o) for o in out["ops"]]
    row.ops_note = out.get("ops_note")
    return row


def _parity(results: list[RuntimeResult], jobs: list[Job], reference: str | None, tmp: Path,
            atol: float, rtol: float) -> str | None:
    done = {j.id: j for j in jobs}
    from edgekit.profiling.inputs import load_arrays

    have = [r for r in results if r.first_ms is not None and (tmp / f"outputs-{_safe(r.id)}.npz").exists()]
    # the reference is always a float32 run: a bf16 or fp16 row would hide the very error parity looks for
    fp32 = [r for r in have if r.precision == "fp32"]
    if not have or not fp32:
        return None
    ref = None
    if reference is not None:
        ref = next((r for r in fp32 if r.id == reference or r.runtime == reference), None)
    if ref is None:
        first_fmt = done[fp32[0].id].model.format
        for fmt in [first_fmt] + [f for f in REFERENCE_RUNTIME if f != first_fmt]:
            ref = next((r for r in fp32 if r.format == fmt and r.runtime == REFERENCE_RUNTIME[fmt]), None)
            if ref is not None:
                break
    ref = ref or fp32[0]

    def load(r: RuntimeResult) -> dict[str, np.ndarray]:
        return load_arrays(tmp / f"outputs-{_safe(r.id)}.npz")

    ref_out = load(ref)
    for r in have:
        r.parity = compare_outputs(load(r), ref_out, reference=ref.id, atol=atol, rtol=rtol)
    return ref.id


def provenance(*, device: str | None, threads: int | None, precision: Any, seed: int, rule: StoppingRule,
               duration: float, warmup: int, timeout: float, results: list[RuntimeResult]) -> dict[str, Any]:
    """Where and how the measurements were taken (the report's ``provenance``; see ``docs/profile-schema.md``)."""
    import socket
    import sys

    from edgekit._version import __version__

    libs: dict[str, str] = {}
    for r in results:
        libs.update(r.libraries)
    return {
        "edgekit": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "host": socket.gethostname(), "cpu": HostInfo.probe().cpu_model, "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "libraries": libs, "device": device, "threads": threads,
        "precision": dict(precision) if isinstance(precision, Mapping) else precision, "seed": seed,
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
        "method": {
            "timer": "time.perf_counter_ns around Predictor.run, one inference at a time",
            "warmup_runs": warmup, "budget_s": duration, "timeout_s": timeout,
            "stopping": (f"p50's 95% CI within ±{rule.rel_tol:.0%} after >= {rule.min_samples} samples and "
                         f">= {MIN_TIME_S} s, or the budget") if rule.rel_tol > 0 else "the whole budget (--ci 0)",
            "ci": CI_METHOD, "percentiles": PERCENTILE_DEFINITION, "std": "sample standard deviation (ddof=1)",
            "throughput": "1000 / mean latency (ms): sequential inferences per second",
            "isolation": "each result measured in its own Python process, sequentially",
        },
    }

