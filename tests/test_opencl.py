"""OpenCV DNN's ``opencl`` accelerator on a real OpenCL device (PoCL's CPU device in CI).

Needs an OpenCL runtime: ``apt-get install pocl-opencl-icd ocl-icd-libopencl1``; without one these
tests skip saying so. PoCL is a software device: these check the OpenCL code path and its
numbers, never GPU latency.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgekit
from edgekit.errors import InvalidOptionError
from edgekit.models.sample import sample_model
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import check_case
from edgekit.verification import TOLERANCES

PACKAGES = "apt-get install pocl-opencl-icd ocl-icd-libopencl1"


def _opencl() -> dict | None:
    rt = get_runtime("opencv")
    if not rt.is_installed():
        return None
    from edgekit.runtimes.opencv import opencl_device

    return opencl_device()


needs_opencl = pytest.mark.skipif(_opencl() is None, reason=f"no OpenCL device for OpenCV here ({PACKAGES})")


def _x() -> np.ndarray:
    return np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32)


def _out(m: edgekit.Predictor, x: np.ndarray) -> np.ndarray:
    return next(iter(m.run({m.inputs[0].name: x}).values()))


@needs_opencl
def test_opencl_runs_on_the_device_and_matches_the_cpu() -> None:
    x = _x()
    with edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="cpu", threads=1) as cpu:
        ref = _out(cpu, x)
    with edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", threads=1) as m:
        assert m.placement.accelerator == "opencl", m.placement.explain()
        assert m.placement.options["device"].startswith("opencl: "), m.placement.options
        assert "fallback" not in m.placement.options
        got = _out(m, x)
    atol, rtol = TOLERANCES["fp32"]
    assert np.abs(got - ref).max() <= max(atol, rtol * np.abs(ref).max()), np.abs(got - ref).max()


@needs_opencl
@pytest.mark.parametrize("case", ["conv_relu", "matmul_add_softmax"])
def test_opencl_passes_conformance_cases(case: str, model_dir) -> None:
    assert case in CASES
    check_case("opencv", case, "onnx", model_dir / "opencl", accelerator="opencl")


@needs_opencl
def test_a_cpu_opencl_device_is_named_software_and_says_what_edgekit_set() -> None:
    dev = _opencl()
    assert dev is not None
    if dev["gpu"]:
        pytest.skip(f"this host's OpenCL device is a GPU ({dev['name']}): the software path is not taken")
    assert "software — functional check only, not a GPU" in dev["description"] or "a CPU device" in dev["description"]
    with edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", threads=1) as m:
        assert m.placement.options["software_device"] is True
        if os.environ.get("OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES") == "1":
            assert m.placement.options["env"] == "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1"


@needs_opencl
def test_fp16_is_offered_only_where_the_device_computes_it() -> None:
    dev = _opencl()
    assert dev is not None
    rt = get_runtime("opencv")
    if not dev["fp16"]:  # PoCL on x86: no cl_khr_fp16; OpenCV would run OCL_FP16 in fp32 without a word
        assert rt.precisions("opencl") == ("fp32",)
        with pytest.raises(InvalidOptionError, match="fp16"):
            edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", precision="fp16")
        return
    x = _x()
    with edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="cpu", threads=1) as cpu:
        ref = _out(cpu, x)
    with edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", precision="fp16") as m:
        got = _out(m, x)
        assert m.placement.precision == "fp16"
    atol, rtol = TOLERANCES["fp16"]
    assert np.abs(got - ref).max() <= max(atol, rtol * np.abs(ref).max())


_FALLBACK = """
import json, sys, edgekit
from edgekit.errors import AcceleratorUnavailableError, DeviceUnavailableError
from edgekit.models.sample import sample_model
m = edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", threads=1)
out = {"accelerator": m.placement.accelerator, "fallback": m.placement.options.get("fallback")}
try:
    edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", threads=1, allow_fallback=False)
    out["strict"] = "opened"
except AcceleratorUnavailableError as exc:
    out["strict"] = str(exc)
try:
    edgekit.load(sample_model("onnx"), runtime="opencv", accelerator="opencl", threads=1, strict=True)
    out["runtime_strict"] = "opened"
except AcceleratorUnavailableError as exc:
    out["runtime_strict"] = str(exc)
try:  # a device target under strict=True: the adapter's switch to the CPU is a fallback strict refuses
    edgekit.load(sample_model("onnx"), device="rockchip-rk3588", runtime="opencv", accelerator="opencl",
                 precision="fp32", threads=1, strict=True)
    out["device_strict"] = "opened"
except DeviceUnavailableError as exc:
    out["device_strict"] = str(exc)
print(json.dumps(out))
"""


@needs_opencl
def test_opencvs_switch_to_the_cpu_is_detected_not_silent() -> None:
    if (_opencl() or {}).get("gpu"):
        pytest.skip("the OpenCL device is a GPU: OpenCV does not switch to the CPU here")
    # "0" keeps OpenCV DNN's GPU-only rule (edgekit sets the variable only when it is absent): it switches to the CPU
    env = dict(os.environ, OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES="0")
    proc = subprocess.run([sys.executable, "-c", _FALLBACK], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["accelerator"] == "cpu"
    assert "not on the opencl target" in got["fallback"]
    assert "allow_fallback=False" in got["strict"]
    assert "strict=True" in got["device_strict"] and "not on the opencl target" in got["device_strict"]
    assert "allow_fallback=False" in got["runtime_strict"]
