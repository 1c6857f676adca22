"""Robustness, measured: fuzzed model files, concurrency, memory stability — per runtime.

1. **Model files.** ``--count`` mutants per format (ONNX, TFLite, MNN; truncated, bit-flipped,
   spliced, random bytes, zero-length, huge declared sizes, and for ONNX protobuf-level damage
   that still parses) of the project's models and the pinned real ones, loaded through
   ``edgekit.load`` by every installed runtime that reads the format, each in a worker process
   (:func:`edgekit.testing.fuzz.fuzz_runtime`). Outcomes: typed error / correct load (loaded, and
   a run on zeros succeeded or raised a typed error) / untyped exception / crash / hang (a case
   running past ``--case-timeout``).
2. **Concurrency.** ``--threads`` threads x ``--runs`` runs on one Predictor (the sample CNN),
   every output compared bitwise with a sequential run of the same input; throughput of both.
3. **Memory.** RSS growth over ``--runs`` runs after 1,000 warm-up runs, and over ``--cycles``
   load/close cycles after 20 warm-up cycles, each runtime in a fresh process.

    python benchmarks/robustness.py            # the full run: 1,000 mutants per format, 8 x 10,000 runs, 200 cycles
    python benchmarks/robustness.py --quick    # smoke: 60 mutants, 8 x 200 runs, 20 cycles

The last line states the figures. Exit status 1 when any crash, hang, untyped error, concurrency
mismatch, or RSS growth above the bounds (``--max-run-growth``/``--max-cycle-growth`` MiB) was seen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from edgekit.isolation import IsolatedFailure, run_isolated
from edgekit.testing.fuzz import fuzz_runtime, readers, seed_models, summarize, write_mutants
from edgekit.models.sample import sample_model

FORMATS = ("onnx", "tflite", "mnn")


def fuzz_section(args: argparse.Namespace, work: Path, env: dict[str, str]) -> list[dict]:
    rows = []
    for fmt in FORMATS:
        runtimes = [rt for rt in readers(fmt) if not args.runtime or rt in args.runtime]
        if not runtimes:
            continue
        seeds = seed_models(fmt, work / "seeds", real=not args.no_real)
        paths = write_mutants(seeds, fmt, args.count, args.seed, work / f"mutants-{fmt}")
        for rt in runtimes:
            t0 = time.perf_counter()
            results = fuzz_runtime(paths, rt, case_timeout=args.case_timeout, env=env)
            counts = summarize(results)
            row = {"format": fmt, "runtime": rt, **counts, "typed_errors": counts["rejected"],
                   "correct_loads": counts["loaded"] + counts["run-error"], "seconds": round(time.perf_counter() - t0, 1),
                   "bad": [f"{r.outcome} {Path(r.path).name}: {r.error} {r.message[:200]}" for r in results
                           if r.outcome in ("untyped", "crash", "hang")]}
            rows.append(row)
            print(f"fuzz {fmt:6} {rt:12} tried {row['tried']:5}  typed errors {row['typed_errors']:5}  correct loads "
                  f"{row['correct_loads']:5} (run raised typed: {row['run-error']})  untyped {row['untyped']}  "
                  f"crashes {row['crash']}  hangs {row['hang']}  [{row['seconds']} s]", flush=True)
            for line in row["bad"]:
                print("    " + line, flush=True)
    return rows


def _isolated(target: str, args: tuple, kwargs: dict, env: dict[str, str]) -> dict:
    out = run_isolated(target, args, kwargs, env=env, timeout=3600)
    if isinstance(out, IsolatedFailure):
        return {"failure": out.describe()}
    return out


def stress_section(args: argparse.Namespace, env: dict[str, str]) -> tuple[list[dict], list[dict]]:
    conc, mem = [], []
    for rt in dict.fromkeys(readers("onnx") + readers("tflite")):
        if args.runtime and rt not in args.runtime:
            continue
        model = str(sample_model("tflite" if rt == "litert" else "onnx"))
        c = _isolated("edgekit.testing.stress:concurrency", (model, rt), {"threads": args.threads, "runs": args.runs}, env)
        c["runtime"] = rt
        conc.append(c)
        if "failure" in c:
            print(f"concurrency {rt:12} FAILED: {c['failure']}", flush=True)
        else:
            print(f"concurrency {rt:12} {c['threads']} threads x {args.runs} runs: mismatches {c['mismatches']}, "
                  f"errors {len(c['errors'])}; {c['threaded_per_s']:.0f} runs/s threaded vs "
                  f"{c['sequential_per_s']:.0f} sequential ({'concurrent' if c['thread_safe'] else 'serialised'})",
                  flush=True)
        m = _isolated("edgekit.testing.stress:memory", (model, rt), {"runs": args.runs, "cycles": args.cycles}, env)
        m["runtime"] = rt
        mem.append(m)
        if "failure" in m:
            print(f"memory      {rt:12} FAILED: {m['failure']}", flush=True)
        else:
            print(f"memory      {rt:12} RSS steady {m['steady_runs_mib']} MiB, {m['growth_runs_mib']:+.2f} MiB after "
                  f"{m['runs']} runs; steady {m['steady_cycles_mib']} MiB, {m['growth_cycles_mib']:+.2f} MiB after "
                  f"{m['cycles']} load/close cycles", flush=True)
    return conc, mem


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 60 mutants, 200 runs, 20 cycles")
    ap.add_argument("--count", type=int, help="mutants per format (default 1000; quick 60)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--case-timeout", type=float, default=60.0, help="seconds before a case counts as a hang")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--runs", type=int, help="runs per thread, and runs for the RSS check (default 10000; quick 200)")
    ap.add_argument("--cycles", type=int, help="load/close cycles (default 200; quick 20)")
    ap.add_argument("--runtime", action="append", help="only this runtime (repeatable)")
    ap.add_argument("--no-real", action="store_true", help="mutate only the project's own models")
    ap.add_argument("--skip-fuzz", action="store_true")
    ap.add_argument("--skip-stress", action="store_true")
    ap.add_argument("--max-run-growth", type=float, default=8.0, help="MiB of RSS growth allowed over the runs")
    ap.add_argument("--max-cycle-growth", type=float, default=16.0, help="MiB allowed over the load/close cycles")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    args.count = args.count or (60 if args.quick else 1000)
    args.runs = args.runs or (200 if args.quick else 10_000)
    args.cycles = args.cycles or (20 if args.quick else 200)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-robustness-") as tmp:
        work = Path(tmp)
        env = {"EDGEKIT_CACHE": str(work / "cache")}  # MNN conversions and probe verdicts start cold
        fuzz = [] if args.skip_fuzz else fuzz_section(args, work, env)
        conc, mem = ([], []) if args.skip_stress else stress_section(args, env)
    bad_fuzz = sum(r["crash"] + r["hang"] + r["untyped"] for r in fuzz)
    mismatches = sum(c.get("mismatches", 0) + len(c.get("errors", [])) + ("failure" in c) for c in conc)
    over = [m["runtime"] for m in mem if "failure" in m or m["growth_runs_mib"] > args.max_run_growth
            or m["growth_cycles_mib"] > args.max_cycle_growth]
    if args.json:
        args.json.write_text(json.dumps({"fuzz": fuzz, "concurrency": conc, "memory": mem}, indent=2))
    by_format: dict[str, int] = {}
    for r in fuzz:
        by_format[r["format"]] = by_format.get(r["format"], 0) + r["tried"]
    run_growth = max((m.get("growth_runs_mib", 0) for m in mem), default=0)
    cycle_growth = max((m.get("growth_cycles_mib", 0) for m in mem), default=0)
    print(f"robustness ({time.perf_counter() - t0:.0f} s): fuzz {sum(by_format.values())} loads "
          f"({', '.join(f'{k} {v}' for k, v in by_format.items())}) across {len(fuzz)} runtime/format pairs: "
          f"{sum(r['typed_errors'] for r in fuzz)} typed errors, {sum(r['correct_loads'] for r in fuzz)} correct loads, "
          f"{sum(r['crash'] for r in fuzz)} crashes, {sum(r['hang'] for r in fuzz)} hangs, "
          f"{sum(r['untyped'] for r in fuzz)} untyped; concurrency {len(conc)} runtimes x {args.threads} threads x "
          f"{args.runs} runs: {mismatches} mismatches; RSS growth max {run_growth:+.2f} MiB over {args.runs} runs "
          f"(bound {args.max_run_growth:g}), {cycle_growth:+.2f} MiB over {args.cycles} load/close cycles "
          f"(bound {args.max_cycle_growth:g})")
    return 1 if bad_fuzz or mismatches or over else 0


if __name__ == "__main__":
    sys.exit(main())
