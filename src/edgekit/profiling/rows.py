"""One report row from what the isolated worker returned, and what the row says about precision.

:func:`row` turns the worker's dict (or an :class:`~edgekit.isolation.IsolatedFailure`) into a
:class:`~edgekit.profiling.results.RuntimeResult`; :func:`skipped` makes the row of a job that
did not run. A precision asked for (``-p``, or the device profile's target) is honoured, or the
row's ``note`` says what ran instead and why (:func:`precision_note`): OpenVINO asked for fp16
on a CPU without fp16 arithmetic computes in bf16, an int8-quantized model runs in int8, a
device that does not report its precision (OpenVINO AUTO) leaves it unconfirmed.

Example::

    r = row(job, worker_output, threads=None, info=model_info, wall=1.2)
    r.precision, r.precision_requested, r.note   # ('bf16', 'fp16', 'asked fp16, openvino ran bf16 on cpu: ...')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.isolation import IsolatedFailure
from edgekit.profiling.results import Memory, ModelInfo, OpTime, RuntimeResult
from edgekit.profiling.stats import summarize
from edgekit.profiling.targets import Job

__all__ = ["device_note", "precision_note", "row", "skipped"]


def skipped(job: Job, reason: str) -> RuntimeResult:
    """The row of a job that was not run, labelled with its own runtime and format."""
    return RuntimeResult(id=job.id, runtime=job.runtime, model=job.model.path.name, format=job.label_format,
                         status="skipped", error=reason, target=job.target, accelerator=job.accelerator,
                         precision=job.precision)


def precision_note(runtime: str, asked: str | None, ran: str | None, accelerator: str | None,
                   placement: dict[str, Any]) -> str | None:
    """Why ``runtime`` did not compute in the precision ``asked`` (None: it did, or nothing was asked).

    >>> precision_note("openvino", "fp16", "bf16", "cpu", {"options": {"precision_requested": "fp16"}})[:33]
    'asked fp16, openvino ran bf16 on '
    """
    if not asked:
        return None
    options = placement.get("options") or {}
    notes = " ".join(str(n) for n in placement.get("notes") or ())
    where = f" on {accelerator}" if accelerator else ""
    if ran and ran != asked:
        if ran == "int8" and "model precision: int8" in notes:
            why = "the model is int8-quantized and runs in its own precision (a float model can be asked for fp32)"
        elif options.get("precision_requested"):
            why = (f"{runtime} reported {ran}, not {asked}, as the precision its compiled model computes in: a runtime "
                   f"computes in what this {accelerator or 'device'} supports or its configuration sets (a CPU "
                   f"without {asked} arithmetic gets {ran} instead). Parity against the float32 reference shows "
                   "what that costs")
        else:
            why = f"{runtime} reported {ran} as the precision it computes in"
        return f"asked {asked}, {runtime} ran {ran}{where}: {why}."
    if options.get("precision_verified") is False:
        return (f"asked {asked}, not confirmed: {runtime}{where} does not report the precision it computes in, so "
                f"{asked} was asked for but could not be read back.")
    return None


def device_note(placement: dict[str, Any]) -> str | None:
    """What the row's device is when its latency is not what its accelerator's name suggests, else None.

    A software implementation of a GPU API (Mesa llvmpipe for Vulkan, PoCL's CPU device for OpenCL) runs
    the real code path on the CPU; a runtime that fell back to the CPU ran there instead.

    >>> device_note({"options": {"software_device": True, "device": "vulkan: llvmpipe (software rasterizer)"}})
    'software device: latency is not GPU latency (vulkan: llvmpipe (software rasterizer))'
    """
    options = placement.get("options") or {}
    notes = []
    if options.get("software_device"):
        notes.append("software device: latency is not GPU latency" + (f" ({options['device']})" if options.get("device")
                                                                       else ""))
    if options.get("fallback"):
        notes.append(f"fell back to the CPU: {options['fallback']}")
    return "; ".join(notes) or None


def row(job: Job, out: Any, threads: int | None, info: ModelInfo, wall: float) -> RuntimeResult:
    """The row for ``job`` from the worker's output ``out`` (see :mod:`edgekit.profiling.worker`)."""
    r = skipped(job, "")
    r.error, r.wall_s = None, wall
    if isinstance(out, IsolatedFailure):
        r.status = "crash" if out.kind == "crash" else "timeout" if out.kind == "timeout" else "error"
        r.error, r.error_type = out.describe(), out.error_type
        if out.kind != "error":
            r.output_tail = out.output_tail[-1000:] or None
        return r
    r.status = out["status"]
    if r.status == "skipped":
        r.error, r.error_type = out.get("error"), out.get("error_type")
        return r
    pl = out.get("placement") or {}
    r.placement = pl or None
    r.accelerator = pl.get("accelerator", job.accelerator)
    r.precision = pl.get("precision", job.precision)
    if job.precision:
        r.precision_requested = job.precision
        r.note = precision_note(job.runtime, job.precision, r.precision, r.accelerator, pl)
    r.note = "; ".join(n for n in (r.note, device_note(pl)) if n) or None
    r.version = pl.get("version")
    r.threads = (pl.get("options") or {}).get("threads", threads)
    r.target = pl.get("target") or job.target
    r.import_ms, r.load_ms, r.first_ms = out.get("import_ms"), out.get("load_ms"), out.get("first_ms")
    r.libraries = out.get("libraries") or {}
    if out.get("memory"):
        r.memory = Memory(**out["memory"])
    samples = np.asarray(out.get("samples_ns") or [], dtype=np.float64) / 1e6
    if samples.size:
        r.latency = summarize(samples, stop_reason=out.get("stop_reason") or "budget")
        if info.flops:
            r.gflops_per_s = info.flops / (r.latency.p50 / 1000.0) / 1e9
    elif r.status == "ok":
        r.status = "interrupted"
    if out.get("ops") is not None:
        r.ops = [OpTime(**o) for o in out["ops"]]
    r.ops_note = out.get("ops_note")
    return r
