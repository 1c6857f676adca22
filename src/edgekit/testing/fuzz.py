"""Fuzzing edgekit's loaders: load many (mutated) model files through ``edgekit.load``, in isolation.

:func:`fuzz_runtime` hands a list of model files to a worker process
(:func:`~edgekit.profiling.isolate.run_isolated`, edgekit's one isolation mechanism) which
loads each with ``edgekit.load(path, runtime=...)`` exactly as an application would — in
its own process, with no extra protection — and runs it once on zero inputs. The worker
reports each case as it starts and ends, so when the process dies the parent knows which
file killed it: that case is a ``crash`` (a signal or an exit) or, past ``case_timeout``, a
``hang``, and a fresh worker continues with the next file.

Outcomes: ``rejected`` (a typed edgekit error at load), ``loaded`` (load and run succeeded),
``run-error`` (loaded; the run raised a typed edgekit error), ``untyped`` (an exception that is
not an edgekit error: a bug), ``crash``, ``hang``. Robust means no ``untyped``, ``crash`` or ``hang``.

Example::

    results = fuzz_runtime([str(p) for p in folder.glob("*.onnx")], "onnxruntime", case_timeout=20)
    Counter(r.outcome for r in results)      # Counter({'rejected': 610, 'loaded': 380, 'run-error': 10})
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BAD_OUTCOMES", "CaseResult", "fuzz_runtime", "load_cases", "summarize"]

BAD_OUTCOMES = ("untyped", "crash", "hang")
_MAX_FEED_BYTES = 64 << 20


@dataclass(frozen=True)
class CaseResult:
    """What happened to one model file."""

    path: str
    outcome: str  # rejected | loaded | run-error | untyped | crash | hang
    error: str = ""  # error class name
    message: str = ""
    seconds: float = 0.0


def _run_once(model: Any) -> None:
    import math

    import numpy as np

    shapes = {s.name: (s.concrete_shape(), s.dtype) for s in model.inputs}
    if sum(math.prod(shape) * dtype.itemsize for shape, dtype in shapes.values()) <= _MAX_FEED_BYTES:
        model.run({name: np.zeros(shape, dtype) for name, (shape, dtype) in shapes.items()})


def load_cases(paths: Sequence[str], runtime: str, *, case_timeout: float = 60.0, threads: int = 1,
               options: dict[str, Any] | None = None, memory_limit: int | None = None,
               report: Callable[[Any], None] | None = None) -> int:
    """Worker (runs isolated): load and run each path with ``edgekit.load``, reporting every outcome.

    ``memory_limit`` (bytes) caps the address space, so a damaged shape cannot exhaust the host.
    A case running past ``case_timeout`` ends the process (``faulthandler``); the parent calls it a hang.
    """
    import faulthandler

    import edgekit

    if memory_limit:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):
            pass
    send = report or (lambda msg: None)
    for i, path in enumerate(paths):
        send({"start": i})
        faulthandler.dump_traceback_later(case_timeout, exit=True)
        outcome, error, message = "loaded", "", ""
        try:
            try:
                model = edgekit.load(path, runtime=runtime, threads=threads, **(options or {}))
            except edgekit.EdgekitError as exc:
                outcome, error, message = "rejected", type(exc).__name__, str(exc)
            else:
                with model:
                    try:
                        _run_once(model)
                    except edgekit.EdgekitError as exc:
                        outcome, error, message = "run-error", type(exc).__name__, str(exc)
        except Exception as exc:  # noqa: BLE001 - that is the finding
            outcome, error, message = "untyped", type(exc).__name__, str(exc)
        finally:
            faulthandler.cancel_dump_traceback_later()
        send({"done": i, "outcome": outcome, "error": error, "message": message[:300]})
    return len(paths)


def fuzz_runtime(paths: Sequence[str], runtime: str, *, case_timeout: float = 60.0, threads: int = 1,
                 options: dict[str, Any] | None = None, memory_limit: int | None = 8 << 30,
                 env: dict[str, str] | None = None,
                 progress: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Load every path with ``runtime`` in worker processes; one :class:`CaseResult` per path, in order.

    A worker that dies takes only its current case with it (``crash``/``hang``); the next
    worker resumes after it.
    """
    from edgekit.profiling.isolate import IsolatedFailure, run_isolated

    results: list[CaseResult | None] = [None] * len(paths)
    start = 0
    while start < len(paths):
        todo = list(paths[start:])
        state: dict[str, Any] = {"current": None, "since": time.perf_counter()}
        lock = threading.Lock()

        def on_message(msg: dict[str, Any], offset: int = start) -> None:
            with lock:
                if "start" in msg:
                    state["current"], state["since"] = offset + msg["start"], time.perf_counter()
                elif "done" in msg:
                    i = offset + msg["done"]
                    res = CaseResult(paths[i], msg["outcome"], msg["error"], msg["message"],
                                     time.perf_counter() - state["since"])
                    results[i] = res
                    state["current"] = None
                    if progress:
                        progress(res)

        out = run_isolated("edgekit.testing.fuzz:load_cases", (todo, runtime),
                           {"case_timeout": case_timeout, "threads": threads, "options": options,
                            "memory_limit": memory_limit},
                           timeout=case_timeout * len(todo) + 120, on_message=on_message, env=env)
        if not isinstance(out, IsolatedFailure):
            break
        current = state["current"]
        if current is None:  # died between cases or before the first: not a case's fault
            done = [i for i, r in enumerate(results) if r is not None]
            if out.kind == "error" or not done or max(done) + 1 == start:
                raise RuntimeError(f"fuzz worker for {runtime} failed outside any case: {out.describe()}\n"
                                   f"{out.output_tail[-1500:]}")
            start = max(done) + 1
            continue
        elapsed = time.perf_counter() - state["since"]
        kind = "hang" if elapsed >= case_timeout * 0.95 else "crash"
        res = CaseResult(paths[current], kind, out.signal or f"exit {out.returncode}",
                         f"{out.describe()}; output: {out.output_tail[-400:]}", elapsed)
        results[current] = res
        if progress:
            progress(res)
        start = current + 1
    return [r if r is not None else CaseResult(paths[i], "untyped", "Missing", "no result was reported")
            for i, r in enumerate(results)]


def summarize(results: Sequence[CaseResult]) -> dict[str, int]:
    """Counts per outcome, with every outcome present (``tried`` is the total)."""
    counts = Counter(r.outcome for r in results)
    keys = ("rejected", "loaded", "run-error", *BAD_OUTCOMES)
    return {"tried": len(results), **{k: counts.get(k, 0) for k in keys}}
