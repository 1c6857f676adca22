"""MNN adapter: conversion cache, names and layouts, errors, no stdout noise, no telemetry.

The conformance values (every case, every format, known failures) are checked by
test_conformance.py; here the cases run once more through the MNN-specific paths, and
the known failures are pinned to what was measured, so a fix in MNN shows up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.cache import cache_dir, cache_root
from edgekit.errors import (
    AcceleratorUnavailableError,
    CorruptModelError,
    InputError,
    InvalidOptionError,
    UnsupportedModelError,
)
from edgekit.models.formats import open_model
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import check_case, known_failures

pytestmark = pytest.mark.skipif(not get_runtime("mnn").is_installed(), reason="needs `pip install mnn`")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test converts into its own cache, never ~/.cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EDGEKIT_CACHE", str(folder))
    return folder


def _save(graph: onnx.GraphProto, path: Path, opsets: tuple[tuple[str, int], ...] = (("", 13),)) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


# --- the conformance cases, through the MNN paths -------------------------------------------

@pytest.mark.parametrize("fmt", ["onnx", "tflite", "mnn"])
@pytest.mark.parametrize("case", list(CASES))
def test_case_matches_reference(case: str, fmt: str, tmp_path: Path) -> None:
    reason = known_failures("mnn").get(f"{case}/{fmt}")
    if reason:
        with pytest.raises((AssertionError, InputError, UnsupportedModelError)):
            check_case("mnn", case, fmt, tmp_path / fmt)
    else:
        check_case("mnn", case, fmt, tmp_path / fmt)


def test_int8_onnx_error_is_the_measured_one(build) -> None:
    """Known failure kept as data: MNN's DequantizeLinear reads int8 inputs offset by 128."""
    case = CASES["int8_fc"]
    feeds = case.inputs("onnx")
    with edgekit.load(build("int8_fc", "onnx"), runtime="mnn") as m:
        got = m.run(feeds)["y"]
    err = np.abs(got.astype(np.int32) - case.reference("onnx", feeds)["y"]).max()
    assert got.dtype == np.int8 and err > 100, f"max error {err}: did MNN fix int8 QDQ? update runtimes/mnn.toml"


def test_int8_tflite_is_refused_at_load(build) -> None:
    with pytest.raises(UnsupportedModelError, match=r"int8 -> float32"):
        edgekit.load(build("int8_fc", "tflite"), runtime="mnn")


def test_layouts_are_the_models_own(build) -> None:
    """TFLite NHWC in and out, ONNX NCHW in and out: no NC4HW4 leaks."""
    case = CASES["conv_relu"]
    for fmt, shape in (("onnx", (1, 4, 8, 8)), ("tflite", (1, 8, 8, 4))):
        with edgekit.load(build("conv_relu", fmt), runtime="mnn") as m:
            feeds = case.inputs(fmt)
            out = m.run(feeds)["y"]
            assert out.shape == shape and m.outputs[0].shape == shape
            np.testing.assert_allclose(out, case.reference(fmt, feeds)["y"], atol=1e-5)


def test_fp32_default_avoids_lossy_winograd(tmp_path: Path) -> None:
    """MNN's own Winograd level 3 errs by ~5e-3 on one 32-channel 64x64 3x3 conv; edgekit's fp32 uses level 2."""
    from edgekit.testing.cases import _conv_same_nchw

    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.1, (32, 32, 3, 3)).astype(np.float32), np.zeros(32, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 64, 64])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    path = _save(graph, tmp_path / "conv.onnx")
    x = rng.normal(size=(1, 32, 64, 64)).astype(np.float32)
    ref = _conv_same_nchw(x.astype(np.float64), w.astype(np.float64), b)
    with edgekit.load(path, runtime="mnn") as m:
        assert m.placement.options["winograd"] == 2
        assert np.abs(m(x)["y"] - ref).max() < 1e-4
    with edgekit.load(path, runtime="mnn", winograd=3) as m:  # MNN's default, kept as measured data
        assert np.abs(m(x)["y"] - ref).max() > 1e-3, "MNN's level-3 Winograd is exact now: revisit the default"


# --- names, order, dtypes -------------------------------------------------------------------

def test_names_and_order_are_the_models(tmp_path: Path) -> None:
    """Inputs (z, a) and outputs (b_out, a_out) are deliberately not alphabetical."""
    graph = helper.make_graph(
        [helper.make_node("Sub", ["z", "a"], ["b_out"]), helper.make_node("Mul", ["z", "a"], ["a_out"])], "order",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("b_out", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("a_out", TensorProto.FLOAT, [1, 4])])
    path = _save(graph, tmp_path / "order.onnx")
    z, a = np.full((1, 4), 3, np.float32), np.arange(4, dtype=np.float32).reshape(1, 4)
    with edgekit.load(path, runtime="mnn") as m:
        assert [s.name for s in m.inputs] == ["z", "a"] and [s.name for s in m.outputs] == ["b_out", "a_out"]
        out = m.run([z, a])
    assert list(out) == ["b_out", "a_out"]
    np.testing.assert_array_equal(out["b_out"], z - a)
    from edgekit.runtimes.mnn import convert_to_mnn

    mnn_path = convert_to_mnn(path, tmp_path / "order.mnn")
    with edgekit.load(mnn_path, runtime="mnn") as m:  # the .mnn keeps them too
        assert [s.name for s in m.inputs] == ["z", "a"] and [s.name for s in m.outputs] == ["b_out", "a_out"]


def test_int64_keeps_the_models_dtype(tmp_path: Path) -> None:
    """MNN holds int64 as int32; the user still feeds and gets int64, and the dynamic dim stays."""
    table = np.arange(30, dtype=np.float32).reshape(10, 3)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "idx"], ["emb"], axis=0),
         helper.make_node("Identity", ["idx"], ["idx_out"])], "gather",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("idx_out", TensorProto.INT64, ["n"])],
        [numpy_helper.from_array(table, "table")])
    idx = np.array([1, 9, 0], np.int64)
    with edgekit.load(_save(graph, tmp_path / "gather.onnx"), runtime="mnn") as m:
        assert m.inputs[0].dtype == np.int64 and m.inputs[0].shape == ("n",)
        out = m.run(idx)
        np.testing.assert_array_equal(out["emb"], table[idx])
        assert out["idx_out"].dtype == np.int64
        with pytest.raises(InputError, match="would wrap"):
            m.run(np.array([2**40], np.int64))


# --- cache ------------------------------------------------------------------------------------

def test_cache_is_reused_and_honours_edgekit_cache(build, _cache: Path) -> None:
    path = build("conv_relu", "onnx")
    with edgekit.load(path, runtime="mnn") as m:
        first = m.placement.options
    cached = Path(first["converted_model"])
    version = get_runtime("mnn").version()
    sha = open_model(path).sha256()
    assert first["converted_now"] and cached == _cache / "mnn" / f"{sha}-{version}.mnn"
    stamp = cached.stat().st_mtime_ns
    with edgekit.load(path, runtime="mnn") as m:
        assert m.placement.options["converted_now"] is False
    assert cached.stat().st_mtime_ns == stamp
    assert not [p for p in cached.parent.iterdir() if p.suffix == ".tmp"], "a temporary file was left behind"


def test_cache_dir_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "explicit"))
    assert cache_dir("mnn") == tmp_path / "explicit" / "mnn" and (tmp_path / "explicit" / "mnn").is_dir()
    monkeypatch.delenv("EDGEKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "edgekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "edgekit"
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "file"))
    with pytest.raises(InvalidOptionError, match="EDGEKIT_CACHE"):
        cache_dir("mnn")


# --- errors -----------------------------------------------------------------------------------

def test_unconvertible_onnx_names_the_operator(tmp_path: Path, _cache: Path) -> None:
    graph = helper.make_graph([helper.make_node("FooBar", ["x"], ["y"], domain="com.example")], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = _save(graph, tmp_path / "bad.onnx", (("", 13), ("com.example", 1)))
    with pytest.raises(UnsupportedModelError, match="FooBar") as info:
        edgekit.load(path, runtime="mnn")
    assert info.value.operators == ("FooBar",)
    assert not list((_cache / "mnn").iterdir()), "a failed conversion left a file in the cache"


def test_converter_crash_on_tflite_custom_op_is_contained(tmp_path: Path) -> None:
    """MNN's converter segfaults on a TFLite custom op; the subprocess takes the crash."""
    from edgekit.testing.tflite_models import build_custom_op_model

    path = build_custom_op_model(tmp_path / "custom.tflite", op_name="EdgekitNoSuchOp")
    with pytest.raises(UnsupportedModelError, match="EdgekitNoSuchOp") as info:
        edgekit.load(path, runtime="mnn")
    assert info.value.operators == ("EdgekitNoSuchOp",)


def test_truncated_mnn_is_corrupt(build, tmp_path: Path) -> None:
    bad = tmp_path / "trunc.mnn"
    bad.write_bytes(build("conv_relu", "mnn").read_bytes()[:600])
    with pytest.raises(CorruptModelError, match="trunc.mnn"):
        edgekit.load(bad, runtime="mnn")


def test_absent_backend_and_precision_are_refused(build) -> None:
    rt = get_runtime("mnn")
    assert "cpu" in rt.accelerators()
    missing = [a for a in ("opencl", "vulkan", "cuda", "metal") if a not in rt.accelerators()]
    if missing:
        with pytest.raises(AcceleratorUnavailableError, match=missing[0]):
            edgekit.load(build("conv_relu", "onnx"), runtime="mnn", accelerator=missing[0])
    from edgekit.runtimes.mnn import cpu_features

    if not cpu_features().get("fp16"):
        with pytest.raises(InvalidOptionError, match="fp16"):
            edgekit.load(build("conv_relu", "onnx"), runtime="mnn", precision="fp16")


# --- hygiene: stdout, telemetry ------------------------------------------------------------------

_CHILD = """
import json, sys, numpy as np, edgekit
from edgekit.testing.onnx_models import build_onnx
p = build_onnx("conv_relu", sys.argv[1])
rt = edgekit.get_runtime("mnn")
accs = rt.accelerators()
with edgekit.load(p, runtime="mnn") as m:
    y = m(np.zeros((1, 3, 8, 8), np.float32))["y"]
print(json.dumps({"accelerators": accs, "shape": list(y.shape),
                  "tools": sorted(k for k in sys.modules if k.startswith(("MNN.tools", "aliyun")))}))
"""


def test_stdout_stays_clean_and_no_telemetry(tmp_path: Path) -> None:
    """MNN prints 'The device supports: ...' at import; edgekit output must stay parseable JSON."""
    env = {**os.environ, "EDGEKIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "m.onnx")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # fails if anything else reached stdout
    assert data["shape"] == [1, 4, 8, 8] and "cpu" in data["accelerators"]
    assert data["tools"] == [], "MNN.tools (pip install + usage logs) must never be imported"
    assert "device supports" not in proc.stderr
