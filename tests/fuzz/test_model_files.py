"""Mutated model files, loaded through ``edgekit.load`` by every runtime that reads them.

Each case must end in a typed edgekit error or a correct load (and a run on zeros that
succeeds or raises a typed error): no untyped exception, no crash, no hang. Counts are small
for CI; ``benchmarks/robustness.py`` runs 1,000 per format.
"""

from __future__ import annotations

import pytest

from edgekit.registry import get_runtime
from edgekit.testing.fuzz import BAD_OUTCOMES, fuzz_runtime, readers, summarize

#: mutants per (format, runtime) in CI; slow readers (a subprocess probe or conversion per new file) get fewer
COUNTS = {"onnxruntime": 100, "litert": 100, "openvino": 60, "opencv": 30, "mnn": 30}
PAIRS = [(fmt, rt) for fmt in ("onnx", "tflite", "mnn") for rt in readers(fmt)]


@pytest.mark.parametrize(("fmt", "runtime"), PAIRS, ids=[f"{f}-{r}" for f, r in PAIRS])
def test_mutants_end_in_a_typed_error_or_a_correct_load(fmt: str, runtime: str, mutant_paths, fuzz_env) -> None:
    not_ready = get_runtime(runtime).not_ready(fmt)  # e.g. ncnn's ONNX converter could not be fetched
    if not_ready:
        pytest.skip(f"{runtime} cannot read {fmt} here: {not_ready}")
    paths = mutant_paths(fmt, COUNTS.get(runtime, 30) * (2 if fmt == "mnn" else 1))
    results = fuzz_runtime(paths, runtime, case_timeout=30, env=fuzz_env)
    bad = [f"{r.outcome}: {r.path} ({r.error}: {r.message[:300]})" for r in results if r.outcome in BAD_OUTCOMES]
    assert not bad, f"{len(bad)} of {len(results)} {fmt} mutants were not handled by {runtime}:\n" + "\n".join(bad)
    counts = summarize(results)
    assert counts["rejected"] and counts["loaded"], counts  # both paths were exercised
