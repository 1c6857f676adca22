"""``edgekit.load(..., timeout=)``: loads and runs in a worker process, bounded in time, crashes contained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import InferenceError, InferenceTimeoutError, InvalidOptionError, UnsupportedModelError
from edgekit.registry import get_runtime
from edgekit.testing.fuzz import build_loop_onnx

pytestmark = pytest.mark.skipif(not get_runtime("onnxruntime").is_installed(), reason="needs onnxruntime")
X = np.zeros((1, 4), np.float32)


@pytest.fixture(scope="module")
def endless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid model whose run never ends (a Loop of 10**12 iterations)."""
    return build_loop_onnx(tmp_path_factory.mktemp("loop") / "endless.onnx")


def test_isolated_results_match_in_process(build) -> None:
    path = build("conv_relu", "onnx")
    x = np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32)
    with edgekit.load(path, runtime="onnxruntime", threads=1) as local, \
            edgekit.load(path, runtime="onnxruntime", threads=1, timeout=30) as isolated:
        assert isolated.inputs == local.inputs and isolated.outputs == local.outputs
        np.testing.assert_array_equal(isolated(x)["y"], local(x)["y"])
        assert isolated.placement.runtime == "onnxruntime" and "worker process" in isolated.placement.explain()
        with pytest.raises(edgekit.InputError):  # inputs are checked here, before the worker sees them
            isolated(np.zeros((1, 3, 4, 4), np.float32))


def test_a_run_past_the_timeout_raises_and_the_next_call_restarts(endless: Path, build) -> None:
    small = build_loop_onnx(endless.with_name("small.onnx"), 3)
    with edgekit.load(small, runtime="onnxruntime", timeout=30) as m:
        np.testing.assert_array_equal(m(X)["y"], np.full((1, 4), 3, np.float32))
    with edgekit.load(endless, runtime="onnxruntime", threads=1, timeout=2) as m:
        t0 = time.perf_counter()
        with pytest.raises(InferenceTimeoutError, match="2 s timeout running") as info:
            m(X)
        assert 1.9 < time.perf_counter() - t0 < 10
        assert isinstance(info.value, TimeoutError)
        with pytest.raises(InferenceTimeoutError):  # a fresh worker, loaded again, times out again
            m(X)
        assert m.session.restarts == 1


def test_a_load_past_the_timeout_raises(endless: Path) -> None:
    with pytest.raises(InferenceTimeoutError, match="starting the worker and loading"):
        edgekit.load(endless, runtime="onnxruntime", timeout=0.01)


def test_a_crash_while_running_is_a_typed_error_and_the_caller_survives(endless: Path) -> None:
    with edgekit.load(endless, runtime="onnxruntime", threads=1, timeout=60) as m:
        pid = m.session._pid
        threading.Timer(1.0, lambda: os.kill(pid, signal.SIGSEGV)).start()
        with pytest.raises(InferenceError, match="crashed running .* SIGSEGV"):
            m(X)


def test_load_errors_keep_their_type(tmp_path: Path, build) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="edgekit.test")], "custom",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("edgekit.test", 1)])
    model.ir_version = 7
    onnx.save(model, str(tmp_path / "custom.onnx"))
    with pytest.raises(UnsupportedModelError, match="NoSuchOp"):  # raised in the worker, sent back typed
        edgekit.load(tmp_path / "custom.onnx", runtime="onnxruntime", timeout=30)
    for bad in (0, -1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InvalidOptionError, match="timeout must be"):
            edgekit.load(build("conv_relu", "onnx"), timeout=bad)


def test_no_timeout_means_nothing_isolated_is_imported() -> None:
    """The in-process path is untouched: loading without timeout= never imports edgekit.worker_session."""
    code = ("import sys, numpy as np, edgekit; from edgekit.models.sample import sample_model; "
            "m = edgekit.load(sample_model('onnx'), runtime='onnxruntime', threads=1); "
            "m(np.zeros((1, 3, 96, 96), np.float32)); print('edgekit.worker_session' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
