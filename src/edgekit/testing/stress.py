"""Concurrency and memory-stability checks of one Predictor, meant to run in their own process.

:func:`concurrency` runs one Predictor from several threads at once and compares every output
with the one a sequential run gave for the same input (bitwise: a runtime with one intra-op
thread computes the same bits every time). :func:`memory` measures resident memory (RSS)
at a steady state and after many runs, and after many load/close cycles. Both return plain
dicts, so ``run_isolated("edgekit.testing.stress:memory", ...)`` gives each runtime a fresh
process and its own RSS.

Example::

    concurrency("cnn.onnx", "onnxruntime", threads=8, runs=10_000)
    # {'runs': 80000, 'mismatches': 0, 'threaded_per_s': 2710.0, 'sequential_per_s': 1500.0, ...}
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np

__all__ = ["concurrency", "memory", "rss_bytes"]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; elsewhere the peak from ``getrusage``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _inputs(model: Any, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        one = {}
        for s in model.inputs:
            shape = s.concrete_shape()
            if s.dtype.kind == "f":
                one[s.name] = rng.normal(0, 1, shape).astype(s.dtype)
            elif s.dtype.kind == "b":
                one[s.name] = rng.integers(0, 2, shape).astype(s.dtype)
            else:
                info = np.iinfo(s.dtype)
                one[s.name] = rng.integers(max(info.min, -100), min(info.max, 100), shape).astype(s.dtype)
        feeds.append(one)
    return feeds


def concurrency(model: str, runtime: str, *, threads: int = 8, runs: int = 10_000, distinct: int = 16,
                options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``threads`` threads each run one Predictor ``runs`` times; count outputs that differ from sequential ones."""
    from edgekit.predictor import load

    with load(model, runtime=runtime, threads=1, **(options or {})) as m:
        feeds = _inputs(m, distinct)
        m.run(feeds[0])
        t0 = time.perf_counter()
        expected = [m.run(f) for f in feeds]
        sequential_runs = max(distinct, min(runs, 2000))
        for i in range(distinct, sequential_runs):
            m.run(feeds[i % distinct])
        seq_s = time.perf_counter() - t0
        mismatches = [0] * threads
        errors: list[str] = []
        barrier = threading.Barrier(threads + 1)

        def work(k: int) -> None:
            barrier.wait()
            try:
                for i in range(runs):
                    j = (i + k) % distinct
                    out = m.run(feeds[j])
                    if any(not np.array_equal(out[n], expected[j][n]) for n in out):
                        mismatches[k] += 1
            except Exception as exc:  # noqa: BLE001 - reported, not raised from a thread
                errors.append(f"{type(exc).__name__}: {exc}")

        pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        barrier.wait()
        t1 = time.perf_counter()
        for t in pool:
            t.join()
        par_s = time.perf_counter() - t1
        return {"runtime": runtime, "threads": threads, "runs": threads * runs, "mismatches": sum(mismatches),
                "errors": errors[:3], "threaded_per_s": threads * runs / par_s,
                "sequential_per_s": sequential_runs / seq_s, "thread_safe": bool(m.session.thread_safe)}


def memory(model: str, runtime: str, *, runs: int = 10_000, cycles: int = 200, warmup_runs: int = 1000,
           warmup_cycles: int = 20, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """RSS growth over ``runs`` runs after ``warmup_runs``, and over ``cycles`` load/close cycles after ``warmup_cycles``."""
    import gc

    from edgekit.predictor import load

    def mib(n: int) -> float:
        return round(n / 2**20, 2)

    base = rss_bytes()
    with load(model, runtime=runtime, threads=1, **(options or {})) as m:
        feeds = _inputs(m, 8)
        for i in range(warmup_runs):
            m.run(feeds[i % 8])
        gc.collect()
        steady_runs = rss_bytes()
        for i in range(runs):
            m.run(feeds[i % 8])
        gc.collect()
        after_runs = rss_bytes()

    def cycle() -> None:
        with load(model, runtime=runtime, threads=1, **(options or {})) as p:
            p.run(feeds[0])

    for _ in range(warmup_cycles):
        cycle()
    gc.collect()
    steady_cycles = rss_bytes()
    for _ in range(cycles):
        cycle()
    gc.collect()
    after_cycles = rss_bytes()
    return {"runtime": runtime, "rss_start_mib": mib(base), "runs": runs, "steady_runs_mib": mib(steady_runs),
            "growth_runs_mib": mib(after_runs - steady_runs), "cycles": cycles, "steady_cycles_mib": mib(steady_cycles),
            "growth_cycles_mib": mib(after_cycles - steady_cycles)}
