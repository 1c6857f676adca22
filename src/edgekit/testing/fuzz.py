"""Fuzzing edgekit's loaders: load many (mutated) model files through ``edgekit.load``, in isolation.

:func:`fuzz_runtime` hands a list of model files to a worker process
(:func:`~edgekit.isolation.run_isolated`, edgekit's one isolation mechanism) which
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

from edgekit.errors import EdgekitError

__all__ = ["BAD_OUTCOMES", "CaseResult", "build_loop_onnx", "fuzz_runtime", "load_cases", "readers", "seed_models",
           "summarize", "write_mutants"]

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

    from edgekit.predictor import load

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
                model = load(path, runtime=runtime, threads=threads, **(options or {}))
            except EdgekitError as exc:
                outcome, error, message = "rejected", type(exc).__name__, str(exc)
            else:
                with model:
                    try:
                        _run_once(model)
                    except EdgekitError as exc:
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
    from edgekit.isolation import IsolatedFailure, run_isolated

    results: list[CaseResult | None] = [None] * len(paths)
    start = 0
    while start < len(paths):
        todo = list(paths[start:])
        state: dict[str, Any] = {"current": None, "since": time.perf_counter()}
        lock = threading.Lock()

        def on_message(msg: dict[str, Any], offset: int = start, state: dict[str, Any] = state,
                       lock: threading.Lock = lock) -> None:
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
                           timeout=case_timeout * len(todo) + 120, on_message=on_message, env=env, strict_exit=True)
        if not isinstance(out, IsolatedFailure):
            break
        current, late = state["current"], ""
        if current is None:  # died between cases or at exit: damage done by the last case surfaced late
            done = [i for i in range(start, len(paths)) if results[i] is not None]
            if out.kind == "error" or not done:
                raise RuntimeError(f"fuzz worker for {runtime} failed outside any case: {out.describe()}\n"
                                   f"{out.output_tail[-1500:]}")
            current, late = max(done), "after the case ended (heap damage surfacing late): "
        elapsed = time.perf_counter() - state["since"]
        tail = out.output_tail
        stacks_only = out.returncode == 1 and "most recent call first" in tail and "Fatal Python error" not in tail
        kind = "hang" if not late and (elapsed >= case_timeout * 0.95 or stacks_only) else "crash"  # faulthandler
        res = CaseResult(paths[current], kind, out.signal or f"exit {out.returncode}",
                         f"{late}{out.describe()}; output: {out.output_tail[-400:]}", elapsed)
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


def build_loop_onnx(path: Any, trip_count: int = 10**12) -> Any:
    """A valid ONNX model whose run never ends in practice: ``y = x + 1``, ``trip_count`` times (a Loop).

    For testing timeouts: ``edgekit.load(build_loop_onnx(p), timeout=1)(x)`` raises InferenceTimeoutError.
    """
    from pathlib import Path

    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)], "loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [trip_count]),
         helper.make_tensor("cond", TensorProto.BOOL, [], [True])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def readers(fmt: str) -> list[str]:
    """Installed runtimes that read ``fmt`` (natively or by converting), the emulated one excluded."""
    from edgekit.registry import iter_runtimes

    return [rt.name for rt in iter_runtimes() if rt.picked_by_default and rt.can_read(fmt) and rt.is_installed()]


def seed_models(fmt: str, folder: Any, *, real: bool = True) -> dict[str, bytes]:
    """Models to mutate: the conformance cases, the sample CNN and (``real``) the pinned real models.

    ``mnn`` seeds are converted from the ONNX/TFLite ones with MNN's converter. A real model
    that cannot be fetched (no network) is left out.
    """
    from pathlib import Path

    from edgekit.models.sample import sample_model
    from edgekit.testing.cases import CASES
    from edgekit.testing.conformance import build_model

    folder = Path(folder)
    seeds = {case: build_model(case, fmt, folder / fmt).read_bytes() for case in CASES}
    sources = {"sample": lambda: sample_model("onnx" if fmt == "mnn" else fmt)}
    if real:
        from edgekit.testing.real_models import fetch

        if fmt in ("onnx", "mnn"):
            sources["ppocr-cls"] = lambda: fetch("ppocr-cls")
        if fmt in ("tflite", "mnn"):
            sources["blazeface"] = lambda: fetch("blazeface")
    for name, get in sources.items():
        try:
            src = get()
        except Exception:  # noqa: BLE001 - a real model that cannot be fetched here is left out
            continue
        if fmt == "mnn":
            from edgekit.runtimes.mnn_convert import convert_to_mnn

            dst = folder / "mnn" / f"{name}.mnn"
            if not dst.is_file():
                convert_to_mnn(src, dst)
            src = dst
        seeds[name] = Path(src).read_bytes()
    return seeds


def write_mutants(seeds: dict[str, bytes], fmt: str, count: int, seed: int, folder: Any) -> list[str]:
    """Write ``count`` mutants of ``seeds`` (see :func:`edgekit.testing.mutate.mutants`) under ``folder``."""
    from pathlib import Path

    from edgekit.testing.mutate import mutants

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in mutants(seeds, fmt, count, seed=seed):
        path = folder / f"{m.name}.{fmt}"
        path.write_bytes(m.data)
        paths.append(str(path))
    return paths


def sweep_shapes(path: str, runtime: str, shapes: Sequence[Sequence[int]], canary: str | None = None) -> list[str]:
    """Worker (run isolated, with ``strict_exit``): run a one-input model on each shape; the outcome of each.

    Outcomes are ``"ok"`` or the edgekit error class name; anything else propagates (a bug).
    ``canary``: a model loaded and run afterwards, so heap damage done by a shape surfaces here.
    """
    import gc

    import numpy as np

    from edgekit.predictor import load

    outcomes = []
    with load(path, runtime=runtime, threads=1) as m:
        for shape in shapes:
            try:
                m.run(np.ones(tuple(shape), m.inputs[0].dtype))
                outcomes.append("ok")
            except EdgekitError as exc:
                outcomes.append(type(exc).__name__)
    gc.collect()
    if canary:
        for _ in range(3):
            with load(canary, runtime=runtime, threads=1) as c:
                c.run({s.name: np.ones(s.concrete_shape(), s.dtype) for s in c.inputs})
        gc.collect()
    return outcomes
