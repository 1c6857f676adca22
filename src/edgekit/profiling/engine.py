"""The measurement engine behind ``edgekit profile``: plan, isolate, measure, compare. It never prints.

:func:`profile` measures one model file (or the bundled sample's ONNX and TFLite twins) on
every selected runtime — or every usable target of a device profile — each in its own
process (:func:`~edgekit.isolation.run_isolated`), one after the other so they do not
disturb each other. A crash or a hang becomes an error row; the others are still measured.
All runtimes get the same inputs (made once here, written to a ``.npz``); their first
outputs are compared with the reference result's, always a float32 run: when no row computed in
float32 (``precision="fp16"``), one extra float32 run is made for it (``ProfileReport.reference_run``,
not a row). Progress goes to ``on_event``:

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
from edgekit.isolation import IsolatedInterrupted, run_isolated
from edgekit.models.formats import ModelFile, open_model
from edgekit.plan import Config
from edgekit.profiling.parity import ATOL, RTOL, compare_outputs
from edgekit.profiling.results import ModelInfo, ProfileReport, RuntimeResult
from edgekit.profiling.rows import row as to_row
from edgekit.profiling.rows import skipped
from edgekit.profiling.stats import CI_METHOD, PERCENTILE_DEFINITION, StoppingRule
from edgekit.profiling.targets import Job, device_jobs, label_model, own_format, pick_model, resolve_runtime, unreadable

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
        for name in dict.fromkeys(r for r in runtimes or [] if r != "all"):
            get_runtime_names_check(name)
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
                    jobs.append(Job(name, name, label_model(name, models), skip=resolve_runtime(name)[1]))
    else:
        rts = []
        for name in dict.fromkeys(wanted):
            get_runtime_names_check(name)
            rt, why = resolve_runtime(name)
            if rt is None:
                jobs.append(Job(name, name, label_model(name, models), skip=why))
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
            job.skip, job.format = unreadable(rt.name, models, rt.formats), own_format(rt)
        elif not rt.is_installed():
            if not wanted:
                continue
            job.skip = f"not installed: {rt.info.install_hint}"
        elif not wanted and rt.not_ready(m.format):
            continue  # e.g. ncnn without its ONNX converter: not a candidate unless named
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
                results.append(skipped(job, "not run: the run was interrupted"))
                continue
            try:
                emit({"event": "start", "id": job.id, "index": i, "total": len(jobs)})
                if job.skip:
                    row = skipped(job, job.skip)
                else:
                    spec = _job_dict(job, threads=threads, duration=duration, warmup=warmup, rule=rule,
                                     inputs=feeds_path[job.model.path], workdir=tmp, op_profile=op_profile)
                    row, partial = _measure(job, spec, timeout, emit, threads, infos[job.model.path])
                emit({"event": "done", "id": job.id, "result": row})
            except KeyboardInterrupt:  # between two runtimes: nothing of this one was measured
                partial = True
                row = skipped(job, "not run: the run was interrupted")
            results.append(row)
        extra = None
        if not partial:
            extra, partial = _reference_run(results, jobs, reference, threads=threads, timeout=timeout,
                                            inputs=feeds_path, infos=infos, workdir=tmp)
        ref = _parity(results, reference, Path(tmp), atol, rtol, extra)
    return ProfileReport(
        provenance=provenance(device=_device_name(device), threads=threads,
                              precision=precision, seed=seed, rule=rule, duration=duration, warmup=warmup,
                              timeout=timeout, results=results),
        models=list(infos.values()), results=results, reference=ref, reference_run=extra, partial=partial,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def _device_name(device: str | None) -> str | None:
    """The profile name ``--device`` means (a ``.toml`` path and ``auto`` resolved), or None."""
    if device is None:
        return None
    from edgekit.devices import detect, get_profile

    return detect().profile.name if device == "auto" else get_profile(device).name


def _reference_run(results: list[RuntimeResult], jobs: list[Job], reference: str | None, *, threads: int | None,
                   timeout: float, inputs: Mapping[Path, str], infos: Mapping[Path, ModelInfo],
                   workdir: str) -> tuple[RuntimeResult | None, bool]:
    """``(run, interrupted)``: when rows have outputs and none computed in float32, one float32 run of the first
    such row's model (``reference``'s runtime, else the format's reference runtime, else a row's runtime) to be
    the parity reference; it is not a row. ``(None, False)`` when not needed or no runtime can make it."""
    done = [(r, j) for r, j in zip(results, jobs) if r.first_ms is not None]
    if not done or any(r.precision == "fp32" for r, _ in done):
        return None, False
    model = done[0][1].model
    names = dict.fromkeys(n for n in (reference, REFERENCE_RUNTIME.get(model.format), *(j.runtime for _, j in done))
                          if n)
    run = None
    for name in names:
        rt = resolve_runtime(name)[0]
        if rt is None or not rt.picked_by_default or not rt.can_read(model.format) or not rt.is_installed():
            continue
        job = Job(f"{name}/fp32-reference", name, model, precision="fp32")
        spec = _job_dict(job, threads=threads, duration=0.0, warmup=0, rule=StoppingRule(), inputs=inputs[model.path],
                         workdir=workdir, op_profile=False)
        run, interrupted = _measure(job, spec, timeout, lambda e: None, threads, infos[model.path])
        if interrupted or run.first_ms is not None:
            return run, interrupted
    return run, False


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
    row = to_row(job, out, threads, info, time.perf_counter() - t0)
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
        return skipped(job, why or f"runtime {config.runtime!r} was registered from a class defined in __main__, which "
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


def _parity(results: list[RuntimeResult], reference: str | None, tmp: Path, atol: float, rtol: float,
            extra: RuntimeResult | None = None) -> str | None:
    """Compare every row's outputs with the reference's; the reference's id (None: no float32 run to compare with).

    ``extra``: the float32 reference run made when no row computed in float32 (:func:`_reference_run`)."""
    from edgekit.profiling.inputs import load_arrays

    have = [r for r in results if r.first_ms is not None and (tmp / f"outputs-{_safe(r.id)}.npz").exists()]
    # the reference is always a float32 run: a bf16 or fp16 row would hide the very error parity looks for
    fp32 = [r for r in have if r.precision == "fp32"]
    if not fp32 and extra is not None and extra.precision == "fp32" and (tmp / f"outputs-{_safe(extra.id)}.npz").exists():
        fp32 = [extra]
    if not have or not fp32:
        return None
    ref = None
    if reference is not None:
        ref = next((r for r in fp32 if r.id == reference or r.runtime == reference), None)
    if ref is None:
        first_fmt = fp32[0].format
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

