"""Predictor behaviour shared by every runtime: threads, closing, placement, explicit choice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import edgekit
from edgekit.registry import get_runtime, runtime_names
from edgekit.testing.cases import CASES


def _native(runtime: str) -> str:
    fmts = get_runtime(runtime).info.formats
    return "onnx" if "onnx" in fmts else fmts[0]


@pytest.mark.parametrize("runtime", runtime_names())
def test_threads_give_identical_outputs(runtime: str, build) -> None:
    fmt = _native(runtime)
    case = CASES["conv_relu"]
    feeds = [case.inputs(fmt, seed=s) for s in range(8)]
    with edgekit.load(build("conv_relu", fmt), runtime=runtime, threads=1) as m:
        expected = [m.run(f)["y"] for f in feeds]

        def work(i: int) -> bool:
            return all(np.array_equal(m.run(feeds[(i + k) % 8])["y"], expected[(i + k) % 8]) for k in range(50))

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(work, range(8)))


@pytest.mark.parametrize("runtime", runtime_names())
def test_placement_reports_what_ran(runtime: str, build) -> None:
    with edgekit.load(build("conv_relu", _native(runtime)), runtime=runtime, threads=1) as m:
        p = m.placement
        assert p.runtime == runtime
        assert p.version == get_runtime(runtime).version()
        assert p.accelerator in get_runtime(runtime).accelerators()
        assert p.precision == "fp32"
        assert p.options.get("threads") == 1
        assert runtime in str(p) and "fp32" in p.explain()


def test_default_runtime_order(build) -> None:
    with edgekit.load(build("conv_relu", "onnx")) as m:
        assert m.placement.runtime == "onnxruntime"
    with edgekit.load(build("conv_relu", "tflite")) as m:
        assert m.placement.runtime == "litert"


def test_outputs_are_not_overwritten_by_next_run(build) -> None:
    for runtime in runtime_names():
        fmt = _native(runtime)
        case = CASES["conv_relu"]
        with edgekit.load(build("conv_relu", fmt), runtime=runtime) as m:
            a = m(case.inputs(fmt, seed=1))["y"]
            keep = a.copy()
            m(case.inputs(fmt, seed=2))
            assert np.array_equal(a, keep), f"{runtime} returned a view that the next run overwrote"
