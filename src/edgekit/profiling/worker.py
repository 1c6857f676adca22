"""What runs inside the isolated process: load one model in one runtime and measure it.

:func:`measure` is called through :func:`edgekit.isolation.run_isolated` with a job
dict built by the engine; it returns a plain dict (picklable, no runtime objects). Steps:
the runtime's library is imported (timed apart) -> RSS before load -> load (timed) -> RSS and high-water mark after load -> first inference
(cold, timed; its outputs are saved for the parity check) -> each ``gate`` input set, when the job
lists some (``[[inputs.npz, outputs.npz], ...]``: the tuner's accuracy gate), run once and its outputs
saved -> ``warmup`` runs -> the peak
RSS is reset (``/proc/self/clear_refs``) -> timed runs of ``Predictor.run`` with
``time.perf_counter_ns`` until the stopping rule holds or the budget is spent -> per-op
profile in a separate load (profilers slow the runs they watch). SIGINT stops the timed loop
and returns what was measured.

Test hook (documented, used by edgekit's own tests): ``EDGEKIT_PROFILE_FAULT`` set to
``runtime=segv``, ``runtime=abort`` or ``runtime=hang`` (comma-separated for several) makes
the worker for that runtime crash with a real segmentation fault, abort, or hang, before it
loads anything.

A runtime registered in the parent with :func:`edgekit.register_runtime` (not an entry point) is
unknown to this fresh process: the job carries its adapter class (``runtime_class``, pickled by
reference like the rest of the job, so unpickling imports the class's own module) and the worker
registers it before loading.

Example::

    run_isolated("edgekit.profiling.worker:measure", (job,), timeout=60, on_message=print)
"""

from __future__ import annotations

import array
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["FAULT_ENV", "describe", "measure"]

FAULT_ENV = "EDGEKIT_PROFILE_FAULT"
_OP_WARMUP = 2  # cold runs left out of the per-op profile
_MIB = 1024.0 * 1024.0


def _fault(runtime: str) -> None:
    for item in os.environ.get(FAULT_ENV, "").split(","):
        name, _, kind = item.strip().partition("=")
        if name != runtime:
            continue
        if kind == "segv":
            import ctypes

            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif kind == "abort":
            os.abort()
        elif kind == "hang":
            while True:
                time.sleep(3600)


def _status_kb() -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return out


def _rss_mb() -> tuple[float | None, float | None, str]:
    """(current RSS, high-water mark) in MiB and the method used."""
    s = _status_kb()
    if "VmRSS" in s:
        return s["VmRSS"], s.get("VmHWM"), "/proc/self/status VmRSS/VmHWM"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return None, peak, "resource.getrusage ru_maxrss"


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _register(job: dict[str, Any]) -> None:
    """Register the job's adapter class in this process when its name is unknown here (see the module docstring)."""
    cls = job.get("runtime_class")
    if cls is None:
        return
    from edgekit.registry import register_runtime, runtime_names

    if job["runtime"] not in runtime_names():
        register_runtime(cls)


def _load(job: dict[str, Any], *, profile_ops: bool = False) -> Any:
    from edgekit.predictor import load

    kwargs: dict[str, Any] = {"runtime": job["runtime"], "threads": job.get("threads"),
                              "precision": job.get("precision"), "accelerator": job.get("accelerator")}
    if job.get("device"):
        kwargs["device"] = job["device"]
    return load(job["model"], **{k: v for k, v in kwargs.items() if v is not None}, profile_ops=profile_ops,
                **dict(job.get("options") or {}))


def _import_runtime(runtime: str) -> float | None:
    """Import the runtime's library before the load is timed; its import time in ms."""
    from edgekit.registry import get_runtime

    t0 = time.perf_counter_ns()
    try:
        get_runtime(runtime).import_library()
    except Exception:  # noqa: BLE001 - the load reports it properly
        return None
    return (time.perf_counter_ns() - t0) / 1e6


def _libraries(runtime: str) -> dict[str, str]:
    import importlib.metadata
    import sys

    from edgekit.registry import get_runtime

    libs = {"python": sys.version.split()[0], "numpy": np.__version__}
    for wheel in get_runtime(runtime).info.wheels:
        try:
            dist = importlib.metadata.distribution(wheel)
        except importlib.metadata.PackageNotFoundError:
            continue
        libs[dist.metadata["Name"]] = dist.version  # its own name: "MNN" and "mnn" are one installed package
    return libs


def describe(model: str) -> list[dict[str, Any]]:
    """Input specs of ``model`` as the first runtime that reads it sees them (for formats Python cannot parse)."""
    from edgekit.predictor import load

    with load(model) as m:
        return [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype.str, "quantization": s.quantization,
                 "layout": s.layout} for s in m.inputs]


def measure(job: dict[str, Any], report: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Measure ``job["runtime"]`` on ``job["model"]``; see the module docstring for the steps."""
    from edgekit.errors import AcceleratorUnavailableError, DeviceUnavailableError, RuntimeNotInstalledError
    from edgekit.profiling.inputs import load_arrays, save_arrays
    from edgekit.profiling.stats import StoppingRule

    send = report or (lambda msg: None)
    _fault(job["runtime"])
    _register(job)
    res: dict[str, Any] = {"status": "ok", "libraries": {}}
    feeds = load_arrays(job["inputs"])
    rule = StoppingRule(rel_tol=job.get("rel_tol", 0.02), min_samples=job.get("min_samples", 30))
    samples = array.array("q")  # 8 bytes a sample (a list of 1e6 ints would add 28 MB to the RSS measured)
    predictor = None
    try:
        send({"stage": "loading"})
        res["import_ms"] = _import_runtime(job["runtime"])
        rss0, _, method = _rss_mb()
        t0 = time.perf_counter_ns()
        predictor = _load(job)
        res["load_ms"] = (time.perf_counter_ns() - t0) / 1e6
        rss1, hwm1, _ = _rss_mb()
        res["placement"] = _placement(predictor)
        res["libraries"] = _libraries(job["runtime"])
        t0 = time.perf_counter_ns()
        first = predictor.run(feeds)
        res["first_ms"] = (time.perf_counter_ns() - t0) / 1e6
        save_arrays(job["outputs"], first)
        if job.get("gate"):
            send({"stage": "gate", "n": len(job["gate"])})
            for src, dst in job["gate"]:
                save_arrays(dst, predictor.run(load_arrays(src)))
        send({"stage": "warmup"})
        for _ in range(int(job.get("warmup", 10))):
            predictor.run(feeds)
        reset = _reset_peak()
        res["memory"] = {"rss_before_load_mb": rss0, "rss_after_load_mb": rss1, "peak_load_mb": hwm1,
                         "peak_run_mb": None,
                         "method": method + ("; peak reset after loading" if reset else "; peak includes loading")}
        send({"stage": "measuring"})
        res["stop_reason"] = _timed_loop(predictor, feeds, job, rule, samples, send)
    except KeyboardInterrupt:
        res["stop_reason"] = "interrupted"
        res["status"] = "partial" if samples else "interrupted"
    except (AcceleratorUnavailableError, DeviceUnavailableError, RuntimeNotInstalledError) as exc:
        if "load_ms" in res:
            raise
        return {"status": "skipped", "error": str(exc), "error_type": type(exc).__name__, "samples_ns": []}
    finally:
        if "memory" in res:
            res["memory"]["peak_run_mb"] = _rss_mb()[1]
        res["samples_ns"] = samples
    if res["status"] == "ok" and job.get("op_profile", True):
        send({"stage": "op-profile"})
        try:
            res["ops"], res["ops_note"] = _op_profile(predictor, job, feeds)
        except KeyboardInterrupt:
            res["ops"], res["ops_note"] = None, "interrupted"
        except Exception as exc:  # noqa: BLE001 - a profiler failure must not lose the latency measurements
            res["ops"], res["ops_note"] = None, f"op profiling failed: {type(exc).__name__}: {exc}"
    if predictor is not None:
        predictor.close()
    return res


def _placement(predictor: Any) -> dict[str, Any]:
    p = dataclasses.asdict(predictor.placement)
    return json.loads(json.dumps(p, default=str))


def _timed_loop(predictor: Any, feeds: dict[str, np.ndarray], job: dict[str, Any], rule: Any,
                samples: array.array, send: Callable[[Any], None]) -> str:
    run, clock = predictor.run, time.perf_counter_ns
    budget_ns = int(float(job.get("duration", 2.0)) * 1e9)
    start = clock()
    deadline, next_check, next_report = start + budget_ns, rule.min_samples, start
    earliest = start + int(float(job.get("min_time", 0.5)) * 1e9)
    while True:
        t0 = clock()
        run(feeds)
        t1 = clock()
        samples.append(t1 - t0)
        n = len(samples)
        if n >= next_check and t1 >= earliest:
            if rule.satisfied(np.array(samples, dtype=np.float64)):  # a copy: the array keeps growing
                return "max_samples" if n >= rule.max_samples else "ci"
            next_check = n + max(1, n // 10)  # re-check after 10% more samples: O(n log n) in all
        if t1 >= deadline:
            return "budget"
        if t1 >= next_report:
            next_report = t1 + 200_000_000
            send({"stage": "measuring", "n": n, "elapsed": (t1 - start) / 1e9, "budget": budget_ns / 1e9,
                  "p50_ms": float(np.median(np.array(samples[-1000:], dtype=np.float64))) / 1e6})  # recent, cheap


def _op_profile(predictor: Any, job: dict[str, Any], feeds: dict[str, np.ndarray]) -> tuple[list | None, str | None]:
    """Average per-op times over ``op_runs`` runs, from the runtime's own profiler, in a separate load."""
    from edgekit.profiling.ops import summarize_ops
    from edgekit.registry import get_runtime

    runs = int(job.get("op_runs", 20))
    runtime = get_runtime(job["runtime"])
    if not runtime.has("op_profile"):
        return None, (f"not available: {runtime.info.title} does not time operators through edgekit (its adapter "
                      "does not declare the 'op_profile' capability)")
    with _load(job, profile_ops=True) as prof:
        for _ in range(runs + _OP_WARMUP):
            prof.run(feeds)
        profile = prof.op_profile(skip=_OP_WARMUP)
    return summarize_ops(profile), None
