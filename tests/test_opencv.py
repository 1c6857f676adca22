"""The OpenCV DNN adapter: conformance cases in ONNX and TFLite, hidden layout/engine quirks, profiling, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import AcceleratorUnavailableError, InvalidOptionError, UnsupportedModelError
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import check_case, known_failures

cv2 = pytest.importorskip("cv2")


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.parametrize("case", list(CASES))
def test_case_matches_reference(case: str, fmt: str, model_dir: Path) -> None:
    # names and order, dtypes, shapes, values; dynamic batch runs 1, 5, 1
    if f"{case}/{fmt}" in known_failures("opencv"):
        with pytest.raises(UnsupportedModelError):
            check_case("opencv", case, fmt, model_dir / "opencv-known" / fmt)
        return
    check_case("opencv", case, fmt, model_dir / fmt)


def test_tflite_int8_fc_names_the_missing_layer(build) -> None:
    with edgekit.load(build("int8_fc", "tflite"), runtime="opencv") as m, pytest.raises(UnsupportedModelError) as info:
        m(CASES["int8_fc"].inputs("tflite"))
    assert info.value.operators == ("GemmInt8",)


def test_tflite_two_outputs_both_returned_in_model_order(build) -> None:
    case = CASES["two_in_two_out"]
    feeds = case.inputs("tflite")
    with edgekit.load(build("two_in_two_out", "tflite"), runtime="opencv") as m:
        assert m.placement.options["engine"] == "classic"
        out = m(feeds)
    ref = case.reference("tflite", feeds)
    assert list(out) == ["z_sum", "a_prod"]
    for name in ref:
        np.testing.assert_allclose(out[name], ref[name], atol=1e-6)


def test_new_engine_loses_tflite_outputs_and_says_so(build) -> None:
    """Measured on OpenCV 5.0: the new engine exposes one output of two (a_prod)."""
    with pytest.raises(UnsupportedModelError, match="engine='classic'"):
        edgekit.load(build("two_in_two_out", "tflite"), runtime="opencv", engine="new")


def test_tflite_conv_keeps_nhwc_layout(build) -> None:
    case = CASES["conv_relu"]
    feeds = case.inputs("tflite")
    assert feeds["x"].shape == (1, 8, 8, 3)
    with edgekit.load(build("conv_relu", "tflite"), runtime="opencv") as m:
        assert m.inputs[0].shape == (1, 8, 8, 3) and m.outputs[0].shape == (1, 8, 8, 4)
        y = m(feeds)["y"]
    assert y.shape == (1, 8, 8, 4)
    np.testing.assert_allclose(y, case.reference("tflite", feeds)["y"], atol=1e-4)


def test_specs_come_from_the_model_file(build) -> None:
    with edgekit.load(build("dynamic_batch", "onnx"), runtime="opencv") as m:
        assert [(s.name, s.dtype) for s in m.inputs] == [("x", np.float32)]
        assert m.inputs[0].shape[1:] == (6,) and m.inputs[0].is_dynamic
    with edgekit.load(build("int8_fc", "tflite"), runtime="opencv") as m:
        assert m.inputs[0].dtype == np.int8 and m.inputs[0].quantization == (pytest.approx(0.05), 3)


def test_threads_are_process_global(build) -> None:
    before = cv2.getNumThreads()
    try:
        with edgekit.load(build("conv_relu", "onnx"), runtime="opencv", threads=1) as m:
            assert cv2.getNumThreads() == 1
            assert m.placement.options["threads_scope"] == "process"
            assert m.session.thread_safe is False
    finally:
        cv2.setNumThreads(before)


def test_op_profile(build) -> None:
    for fmt in ("onnx", "tflite"):
        with edgekit.load(build("conv_relu", fmt), runtime="opencv", profile_ops=True) as m:
            m(CASES["conv_relu"].inputs(fmt))
            profile = m.op_profile()
        assert profile.runs == 1 and profile.ops, fmt
        assert any(op.type.startswith("Conv") and op.time_us > 0 for op in profile.ops), profile


def test_accelerators_and_missing_device(build) -> None:
    present = get_runtime("opencv").accelerators()
    assert present[0] == "cpu"
    absent = next((a for a in ("cuda", "opencl") if a not in present), None)
    if absent is None:
        pytest.skip("both OpenCL and CUDA are present")
    with pytest.raises(AcceleratorUnavailableError, match="available here"):
        edgekit.load(build("conv_relu", "onnx"), runtime="opencv", accelerator=absent)


def test_fp16_only_where_the_target_exists(build) -> None:
    if cv2.dnn.DNN_TARGET_CPU_FP16 in cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_OPENCV):
        with edgekit.load(build("conv_relu", "onnx"), runtime="opencv", precision="fp16") as m:
            assert m.placement.precision == "fp16"
    else:
        with pytest.raises(InvalidOptionError, match="fp32"):
            edgekit.load(build("conv_relu", "onnx"), runtime="opencv", precision="fp16")


def test_engine_option_is_checked(build) -> None:
    with pytest.raises(InvalidOptionError, match="engine"):
        edgekit.load(build("conv_relu", "onnx"), runtime="opencv", engine="turbo")
    with edgekit.load(build("conv_relu", "onnx"), runtime="opencv", engine="classic") as m:
        case = CASES["conv_relu"]
        feeds = case.inputs("onnx")
        np.testing.assert_allclose(m(feeds)["y"], case.reference("onnx", feeds)["y"], atol=1e-4)






def test_module_import_is_light() -> None:
    code = "import sys, edgekit.runtimes.opencv; assert 'cv2' not in sys.modules, 'imported cv2'"
    subprocess.run([sys.executable, "-c", code], check=True)
