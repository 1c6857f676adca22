#!/usr/bin/env python3
"""Measure which ONNX operators each runtime supports, and write it to the runtime catalog.

What it does
    Runs ONNX's backend node test cases (1,765 single-operator models with inputs and expected
    outputs, shipped in the ``onnx==1.22.0`` wheel) through ``edgekit.load`` on each runtime
    (one thread, fp32; OpenVINO with ``INFERENCE_PRECISION_HINT=f32``) and records, per operator,
    how many cases passed, failed (wrong values, shape or dtype) or were unsupported (refused at
    load or run), crashed the process or timed out, with every non-passing case and its reason.
    For LiteRT, which cannot read ONNX, it builds a one-operator ``.tflite`` for every builtin
    operator of the TFLite schema and records whether LiteRT's builtin resolver has a kernel for
    it (registration only: values are not measured there).

Isolation
    Cases run in batches, each batch in its own Python process
    (:func:`edgekit.isolation.run_isolated`); the child reports each case as it starts
    and ends, and a per-case watchdog (``faulthandler``) ends the child when one case runs past
    ``--timeout``. When a batch process dies, the case in flight is re-run alone in a fresh
    process, which decides its status (``crashed``/``timeout`` if it dies again); the cases after
    it go on in a new batch. So a segfault is attributed to the case that causes it.

Output
    ``runtimes/onnx_ops/<runtime>.toml`` (and ``runtimes/tflite_ops/litert.toml``), referenced from
    the ``[ops]`` table of ``runtimes/<runtime>.toml``; ``edgekit check`` reads them. Regenerate
    after upgrading a runtime. Nothing else is written; conversions go to a temporary cache.

How to run (from the repository root, in an environment with every runtime and onnx==1.22.0)::

    python scripts/measure_op_support.py                       # all runtimes, ~2-5 minutes on 2 cores
    python scripts/measure_op_support.py --runtime opencv --jobs 2
    python scripts/measure_op_support.py --runtime onnxruntime --cases 'test_conv*' --dry-run   # print only
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ONNX_RUNTIMES = ("onnxruntime", "openvino", "opencv", "mnn", "ncnn")
STATUSES = ("passed", "passed_const", "failed", "unsupported", "crashed", "timeout", "skipped")
PASSING = ("passed", "passed_const")


def _q(s: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    import json

    return json.dumps(s, ensure_ascii=False)


def _key(s: str) -> str:
    return s if s.replace("_", "").replace("-", "").isalnum() else _q(s)


def run_runtime(runtime: str, names: list[str], *, batch: int, timeout: float, jobs: int, cache: str,
                memory_mb: int, log: Any) -> dict[str, dict[str, Any]]:
    """Results for ``names`` on ``runtime``: batches in subprocesses, crashes re-run alone."""
    from edgekit.isolation import IsolatedFailure, run_isolated

    env = {"EDGEKIT_CACHE": cache, "OMP_NUM_THREADS": "1"}
    target = "edgekit.testing.onnx_backend:run_batch"
    kwargs = {"timeout": timeout, "memory_mb": memory_mb}

    def solo(name: str) -> dict[str, Any]:
        res = run_isolated(target, (runtime, [name]), kwargs, timeout=timeout + 30, env=env)
        if isinstance(res, dict):
            return res[name]
        if res.kind == "timeout" or "Timeout (" in res.output_tail:
            return {"status": "timeout", "reason": f"no result within {timeout:g} s; the process was killed"}
        if res.kind == "crash":
            return {"status": "crashed", "reason": res.message}
        return {"status": "unsupported", "reason": f"harness: {res.describe()}"[:300]}

    def one_batch(chunk: list[str]) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        todo = list(chunk)
        while todo:
            inflight: list[str] = []

            def on_message(msg: dict[str, Any]) -> None:
                if "start" in msg:
                    inflight[:] = [msg["start"]]
                elif "done" in msg:
                    results[msg.pop("done")] = msg
                    inflight.clear()

            res = run_isolated(target, (runtime, todo), kwargs, on_message=on_message,
                               timeout=timeout * len(todo) + 60, env=env)
            if not isinstance(res, IsolatedFailure):
                results.update(res)
                break
            bad = inflight[0] if inflight else next((n for n in todo if n not in results), None)
            if bad is None:
                break
            outcome = solo(bad)
            if outcome["status"] not in ("crashed", "timeout"):
                outcome["reason"] = (outcome.get("reason") or "") + (
                    f" (its batch process died while it ran: {res.describe()}; alone it did not)")
            results[bad] = outcome
            log(f"  {runtime}: {bad}: {outcome['status']} {outcome.get('reason', '')[:100]}")
            todo = [n for n in todo if n not in results]
        return results

    chunks = [names[i:i + batch] for i in range(0, len(names), batch)]
    out: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for i, part in enumerate(pool.map(one_batch, chunks)):
            out.update(part)
            log(f"  {runtime}: {min((i + 1) * batch, len(names))}/{len(names)} cases")
    return out


def summarize(cases: list[Any], results: dict[str, dict[str, Any]]) -> tuple[Counter, dict[str, dict[str, Any]]]:
    """Totals and per-operator records (status from the non-expanded cases of the operator)."""
    totals: Counter = Counter(r["status"] for r in results.values())
    ops: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"counts": Counter(), "expanded": Counter(), "notes": {}, "by_dtype": defaultdict(Counter)})
    for c in cases:
        r = results.get(c.name)
        if r is None:
            continue
        rec = ops[c.op]
        (rec["expanded"] if c.expanded else rec["counts"])[r["status"]] += 1
        if not c.expanded and c.dtype:
            rec["by_dtype"][c.dtype][r["status"]] += 1
        if r["status"] != "passed":  # passed_const keeps its note: inputs must be constants
            rec["notes"][c.name] = f"{r['status']}: {r.get('reason', '')}".strip().rstrip(":")
    for rec in ops.values():
        rec["status"] = _status(rec["counts"])
        rec["dtypes"] = {t: _status(n) for t, n in sorted(rec["by_dtype"].items()) if _status(n) != "untested"}
    return totals, dict(ops)


def _status(n: Counter) -> str:
    """supported / partial / failing / unsupported / untested from a Counter of case outcomes."""
    ran = sum(n[s] for s in STATUSES if s != "skipped")
    ok = sum(n[s] for s in PASSING)
    if ran == 0:
        return "untested"
    if ok == ran:
        return "supported"
    if ok:
        return "partial"
    return "failing" if n["failed"] else "unsupported"


def write_onnx_ops(runtime: str, version: str, cases: list[Any], results: dict[str, dict[str, Any]],
                   path: Path, seconds: float, pattern: str = "*") -> Counter:
    import onnx

    totals, ops = summarize(cases, results)
    by_status = Counter(r["status"] for r in ops.values())
    lines = [
        f"# Operator support of {runtime} {version} for ONNX models, MEASURED by scripts/measure_op_support.py.",
        "# Generated file: do not edit by hand; rerun the script after upgrading the runtime.",
        "# Per operator: status from its own cases (supported = all pass, partial = some pass, failing = none",
        "# pass but some ran with wrong values, unsupported = none ran); counts per outcome; `expanded_*`",
        "# counts the cases run through the operator's function body; `cases` lists each non-passing case",
        "# with its reason (the known failures, as data). passed_const: the case passes once its inputs 2.. are",
        "# constants (as in exported models: weights, shapes, axes), not when they are fed at run time.",
        "# dtypes: the status per element type of the first input, where it differs between types.",
        *([f"# SUBSET: only the cases matching --cases {pattern!r} were run; other operators are untested."]
          if pattern != "*" else []),
        'format = "onnx"',
        f"runtime = {_q(runtime)}",
        f"version = {_q(version)}",
        'evidence = "measured"',
        f'source = "ONNX backend node test cases of the onnx {onnx.__version__} wheel (onnx/backend/test/data/node)"',
        f"measured_on = {_q(_host())}",
        'options = "threads=1, precision fp32, through edgekit.load"',
        'tolerance = "each case\'s rtol/atol (ONNX defaults rtol 1e-3, atol 1e-7), assert_allclose semantics"',
        f"seconds = {seconds:.0f}",
        "",
        "[totals]",
        f"cases = {len(results)}",
        *(f"{s} = {totals[s]}" for s in STATUSES),
        f"operators = {len(ops)}",
        *(f"operators_{s} = {by_status[s]}" for s in ("supported", "partial", "failing", "unsupported", "untested")),
        "",
    ]
    for op in sorted(ops, key=str.lower):
        rec = ops[op]
        lines.append(f"[ops.{_key(op)}]")
        lines.append(f"status = {_q(rec['status'])}")
        lines.extend(f"{s} = {rec['counts'][s]}" for s in STATUSES if rec["counts"][s])
        lines.extend(f"expanded_{s} = {rec['expanded'][s]}" for s in STATUSES if rec["expanded"][s])
        if len(set(rec["dtypes"].values())) > 1:  # per first-input element type, where it matters
            lines.append("dtypes = { " + ", ".join(f"{_key(t)} = {_q(v)}" for t, v in rec["dtypes"].items()) + " }")
        if rec["notes"]:
            lines.append(f"[ops.{_key(op)}.cases]")
            lines.extend(f"{_key(k)} = {_q(v)}" for k, v in sorted(rec["notes"].items()))
        lines.append("")
    _write(path, "\n".join(lines))
    return totals


def measure_litert(path: Path, log: Any) -> Counter:
    """Which TFLite builtin operators LiteRT's builtin resolver registers (versions 1-8 tried)."""
    from edgekit.isolation import run_isolated
    from edgekit.registry import get_runtime

    version = get_runtime("litert").version() or "?"
    res = run_isolated("edgekit.testing.tflite_registry:probe_builtins", (), timeout=300)
    if not isinstance(res, dict):
        raise SystemExit(f"litert probe failed: {res.describe()}")
    counts = Counter(r["status"] for r in res.values())
    lines = [
        f"# TFLite builtin operators and LiteRT {version}: kernel REGISTRATION, measured by",
        "# scripts/measure_op_support.py.",
        "# Generated file: do not edit by hand. Values are NOT measured here: a one-operator model of each builtin",
        "# of the schema is given to LiteRT's interpreter; `registered` means its builtin op resolver found a kernel",
        "# (for the listed op version), `not_registered` means it reported \"Didn't find op for builtin opcode\".",
        'format = "tflite"',
        'runtime = "litert"',
        f"version = {_q(version)}",
        'evidence = "registered"',
        'source = "BuiltinOperator enum of the TFLite schema (tflite package), probed against ai-edge-litert\'s '
        'builtin resolver"',
        f"measured_on = {_q(_host())}",
        "",
        "[totals]",
        f"operators = {len(res)}",
        *(f"{s} = {counts[s]}" for s in sorted(counts)),
        "",
    ]
    for op in sorted(res):
        r = res[op]
        lines.append(f"[ops.{_key(op)}]")
        lines.append(f"status = {_q(r['status'])}")
        if r.get("version"):
            lines.append(f"version = {r['version']}")
        if r.get("reason"):
            lines.append(f"reason = {_q(r['reason'])}")
        lines.append("")
    _write(path, "\n".join(lines))
    log(f"litert {version}: {dict(counts)}")
    return counts


def _host() -> str:
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, {date.today()}"


def _write(path: Path, text: str) -> None:
    import tomllib

    tomllib.loads(text)  # never write a file the catalog cannot read
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _copy_converters(cache: Path, log: Any) -> None:
    """Put the pnnx converter (ncnn's ONNX path) into the temporary cache, so ncnn's cases convert there."""
    from edgekit.runtimes.ncnn_convert import copy_pnnx

    if copy_pnnx(cache) is None:
        log("ncnn: pnnx is not in edgekit's cache (`edgekit fetch pnnx`): ncnn's ONNX cases will be unsupported")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", action="append", choices=[*ONNX_RUNTIMES, "litert"],
                    help="runtime to measure (repeatable; default: all)")
    ap.add_argument("--cases", default="*", help="fnmatch pattern(s) of case names, comma-separated (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="batches run at once (default 1; 2 cores here)")
    ap.add_argument("--batch", type=int, default=100, help="cases per subprocess (default 100)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    ap.add_argument("--memory-mb", type=int, default=6144,
                    help="address-space limit per subprocess in MiB (default 6144); a case past it fails")
    ap.add_argument("--out", type=Path, default=ROOT / "runtimes", help="catalog folder (default: runtimes/)")
    ap.add_argument("--dry-run", action="store_true", help="print totals, write nothing")
    args = ap.parse_args(argv)

    from edgekit.registry import get_runtime
    from edgekit.testing.onnx_backend import node_cases

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
    cases = [c for c in node_cases() if any(fnmatch.fnmatch(c.name, p) for p in patterns)]
    runtimes = args.runtime or [*ONNX_RUNTIMES, "litert"]
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-opsupport-") as cache:
        _copy_converters(Path(cache), log)
        for rt in runtimes:
            if rt == "litert":
                if not args.dry_run:
                    measure_litert(args.out / "tflite_ops" / "litert.toml", log)
                continue
            runtime = get_runtime(rt)
            if not runtime.is_installed():
                log(f"{rt}: not installed ({runtime.info.install_hint}); skipped")
                continue
            version = runtime.version() or "?"
            t0 = time.perf_counter()
            results = run_runtime(rt, [c.name for c in cases], batch=args.batch, timeout=args.timeout,
                                  jobs=args.jobs, cache=cache, memory_mb=args.memory_mb, log=log)
            seconds = time.perf_counter() - t0
            if args.dry_run:
                totals, _ = summarize(cases, results)
            else:
                totals = write_onnx_ops(rt, version, cases, results, args.out / "onnx_ops" / f"{rt}.toml", seconds,
                                        args.cases)
            log(f"{rt} {version}: {totals['passed']} of {len(results)} passed "
                f"({', '.join(f'{s} {totals[s]}' for s in STATUSES[1:])}) in {seconds:.0f} s")
    log(f"total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
