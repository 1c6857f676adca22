"""The OpenVINO adapter: conformance cases in IR, ONNX and TFLite, explicit precision, threads, profiling, errors."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import AcceleratorUnavailableError, InvalidOptionError
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import check_case

ov = pytest.importorskip("openvino")

FORMATS = ("onnx", "tflite", "openvino")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(CASES))
def test_case_matches_reference(case: str, fmt: str, model_dir: Path) -> None:
    # names and order, dtypes, shapes, values; dynamic batch runs 1, 5, 1
    check_case("openvino", case, fmt, model_dir / fmt)


def test_output_names_in_model_order(build) -> None:
    for fmt in FORMATS:
        with edgekit.load(build("two_in_two_out", fmt), runtime="openvino") as m:
            assert [s.name for s in m.outputs] == ["z_sum", "a_prod"], fmt
            assert [s.name for s in m.inputs] == ["a", "b"], fmt


def test_dynamic_batch_spec_is_none(build) -> None:
    with edgekit.load(build("dynamic_batch", "onnx"), runtime="openvino") as m:
        assert m.inputs[0].shape == (None, 6)
        assert m.outputs[0].shape == (None, 3)


def test_tflite_int8_inputs_stay_int8(build) -> None:
    with edgekit.load(build("int8_fc", "tflite"), runtime="openvino") as m:
        assert m.inputs[0].dtype == np.int8 and m.outputs[0].dtype == np.int8
        assert m.inputs[0].quantization == (pytest.approx(0.05), 3)


@pytest.mark.parametrize("asked", [None, "fp32"])
def test_precision_defaults_to_fp32(build, asked: str | None) -> None:
    """No precision and precision="fp32" both compute in f32, read back as such (not bf16, the CPU default)."""
    case = CASES["conv_relu"]
    feeds = case.inputs("onnx")
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", precision=asked) as m:
        assert m.placement.precision == "fp32"
        assert m.session.precision == "fp32"
        assert "precision_requested" not in m.placement.options  # OpenVINO used what was asked
        assert "precision_verified" not in m.placement.options  # read back from the compiled model, not assumed
        assert np.abs(m(feeds)["y"] - case.reference("onnx", feeds)["y"]).max() < 1e-5


def test_bf16_is_asked_for_and_differs(build) -> None:
    """On this bf16-capable CPU, bf16 was off by 0.0144 on conv_relu; fp32 by 1e-6."""
    case = CASES["conv_relu"]
    feeds = case.inputs("onnx")
    ref = case.reference("onnx", feeds)["y"]
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", precision="bf16") as m:
        err = float(np.abs(m(feeds)["y"] - ref).max())
        if m.placement.precision == "fp32":
            pytest.skip("this CPU has no bf16: OpenVINO read back f32")
        assert m.placement.precision == "bf16"
        assert err > 1e-3, f"bf16 result is as exact as fp32 ({err})"


@pytest.mark.parametrize("asked", ["fp32", "fp16", "bf16"])
def test_precision_reported_is_read_back(build, asked: str) -> None:
    """The placement says what OpenVINO itself reads back for that hint on this CPU (fp16 may become bf16 or f32)."""
    path = build("conv_relu", "onnx")
    hint = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}[asked]
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": hint})
    read_back = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    actual = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}[read_back]
    with edgekit.load(path, runtime="openvino", precision=asked) as m:
        assert m.placement.precision == actual
        assert m.session.precision == actual
        if actual == asked:
            assert "precision_requested" not in m.placement.options
        else:  # e.g. fp16 on a CPU without fp16 arithmetic: OpenVINO computes in bf16
            assert m.placement.options["precision_requested"] == asked


def test_unknown_precision_is_refused(build) -> None:
    with pytest.raises(InvalidOptionError, match="int8"):
        edgekit.load(build("conv_relu", "onnx"), runtime="openvino", precision="int8")


def test_ir_from_save_model_loads(build, tmp_path: Path) -> None:
    core = ov.Core()
    xml = tmp_path / "conv.xml"
    ov.save_model(core.read_model(str(build("conv_relu", "onnx"))), str(xml))  # default: fp16-compressed weights
    case = CASES["conv_relu"]
    feeds = case.inputs("onnx")
    with edgekit.load(xml) as m:
        assert m.placement.runtime == "openvino"
        assert m.model.weights == xml.with_suffix(".bin").resolve()
        assert [s.name for s in m.outputs] == ["y"]
        # compress_to_fp16 weights: 1.7e-3 off here (exact with compress_to_fp16=False, see the conformance case)
        np.testing.assert_allclose(m(feeds)["y"], case.reference("onnx", feeds)["y"], atol=1e-2)


def test_auto_device(build) -> None:
    case = CASES["matmul_add_softmax"]
    feeds = case.inputs("onnx")
    with edgekit.load(build("matmul_add_softmax", "onnx"), runtime="openvino", accelerator="auto") as m:
        assert m.placement.accelerator == "auto"
        assert m.placement.options["precision_verified"] is False
        assert "cpu" in m.placement.options["execution_devices"]
        np.testing.assert_allclose(m(feeds)["probs"], case.reference("onnx", feeds)["probs"], atol=1e-5)


def test_accelerators_and_missing_device(build) -> None:
    rt = get_runtime("openvino")
    present = rt.accelerators()
    assert present[0] == "cpu" and present[-1] == "auto"
    absent = next(a for a in ("npu", "gpu") if a not in present)
    with pytest.raises(AcceleratorUnavailableError, match="available here"):
        edgekit.load(build("conv_relu", "onnx"), runtime="openvino", accelerator=absent)


def test_options_are_checked(build) -> None:
    with pytest.raises(InvalidOptionError, match="hint"):
        edgekit.load(build("conv_relu", "onnx"), runtime="openvino", hint="fastest")
    with pytest.raises(InvalidOptionError, match="takes"):
        edgekit.load(build("conv_relu", "onnx"), runtime="openvino", no_such_option=1)


def test_throughput_hint_and_config(build) -> None:
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", hint="throughput", threads=1,
                      config={"NUM_STREAMS": 1}) as m:
        assert m.placement.options["hint"] == "throughput"
        assert m.placement.options["config"] == {"NUM_STREAMS": 1}
        m(CASES["conv_relu"].inputs("onnx"))


def test_cache_dir(build, tmp_path: Path) -> None:
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", cache_dir=tmp_path / "ov") as m:
        assert m.placement.options["cache_dir"] == tmp_path / "ov"
    assert any((tmp_path / "ov").iterdir())


def test_concurrent_runs_from_threads(build) -> None:
    case = CASES["dynamic_batch"]
    errors: list[str] = []
    with edgekit.load(build("dynamic_batch", "onnx"), runtime="openvino") as m:
        assert m.session.thread_safe

        def work(seed: int) -> None:
            for i in range(20):
                feeds = case.inputs("onnx", batch=1 + (seed + i) % 4, seed=seed * 100 + i)
                got, want = m(feeds)["y"], case.reference("onnx", feeds)["y"]
                if got.shape != want.shape or np.abs(got - want).max() > 1e-4:
                    errors.append(f"thread {seed} run {i}")

        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


def test_outputs_are_copies(build) -> None:
    case = CASES["conv_relu"]
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino") as m:
        first = m(case.inputs("onnx", seed=1))["y"]
        kept = first.copy()
        m(case.inputs("onnx", seed=2))
        np.testing.assert_array_equal(first, kept)


def test_op_profile(build) -> None:
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", profile_ops=True) as m:
        for _ in range(3):
            m(CASES["conv_relu"].inputs("onnx"))
        profile = m.op_profile(skip=1)
    assert profile.runs == 2
    conv = [op for op in profile.ops if op.type == "Convolution"]
    assert conv and conv[0].time_us >= 0 and conv[0].kernel  # the CPU plugin names its kernel (e.g. brgconv_...)
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino") as m, pytest.raises(InvalidOptionError,
                                                                                            match="profile_ops=True"):
        m.op_profile()






def test_one_core_per_process() -> None:
    from edgekit.runtimes.openvino import core

    assert core() is core()


def test_module_import_is_light() -> None:
    code = "import sys, edgekit.runtimes.openvino; assert 'openvino' not in sys.modules, 'imported openvino'"
    subprocess.run([sys.executable, "-c", code], check=True)
