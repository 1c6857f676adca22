"""Concurrency and memory stability, small enough for CI (``benchmarks/robustness.py`` runs 8 x 10,000 and 200 cycles)."""

from __future__ import annotations

import pytest

from edgekit.isolation import IsolatedFailure, run_isolated
from edgekit.models.sample import sample_model
from edgekit.registry import get_runtime

RUNTIMES = [rt for rt in ("onnxruntime", "litert", "openvino", "opencv", "mnn") if get_runtime(rt).is_installed()]


def _model(rt: str) -> str:
    return str(sample_model("tflite" if rt == "litert" else "onnx"))


@pytest.mark.parametrize("rt", RUNTIMES)
def test_threads_sharing_one_predictor_get_the_sequential_outputs(rt: str, fuzz_env) -> None:
    out = run_isolated("edgekit.testing.stress:concurrency", (_model(rt), rt), {"threads": 8, "runs": 150},
                       env=fuzz_env, timeout=300)
    assert not isinstance(out, IsolatedFailure), out.describe()
    assert out["mismatches"] == 0 and not out["errors"], out


@pytest.mark.parametrize("rt", RUNTIMES)
def test_load_close_cycles_do_not_leak(rt: str, fuzz_env) -> None:
    """MNN 3.6.1 leaked 110 kB per load once Module.get_info() had been called (+5.3 MiB / 50 cycles); edgekit asks once."""
    out = run_isolated("edgekit.testing.stress:memory", (_model(rt), rt),
                       {"runs": 300, "cycles": 40, "warmup_runs": 100, "warmup_cycles": 10}, env=fuzz_env, timeout=300)
    assert not isinstance(out, IsolatedFailure), out.describe()
    assert out["growth_runs_mib"] < 2 and out["growth_cycles_mib"] < 3, out
