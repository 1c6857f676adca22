"""Every error a user can meet says what happened, what was expected and how to fix it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import (
    CorruptModelError,
    InputError,
    InvalidOptionError,
    ModelNotFoundError,
    RuntimeNotInstalledError,
    UnknownFormatError,
    UnknownRuntimeError,
    UnsupportedModelError,
)
from edgekit.registry import get_runtime, runtime_names
from edgekit.testing.onnx_models import build_custom_op_onnx


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"model file not found: .*nope\.onnx \(check the path\)") as e:
        edgekit.load(tmp_path / "nope.onnx")
    assert isinstance(e.value, FileNotFoundError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="it is a directory"):
        edgekit.load(tmp_path)


def test_unknown_format(tmp_path: Path) -> None:
    p = tmp_path / "model.pt"
    p.write_bytes(b"\x80\x02junk")
    with pytest.raises(UnknownFormatError, match=r"unknown model format '\.pt'; edgekit reads \.onnx, \.tflite, \.xml, \.mnn"):
        edgekit.load(p)


@pytest.mark.parametrize("suffix", [".onnx", ".tflite", ".mnn"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"empty{suffix}"
    p.write_bytes(b"")
    with pytest.raises(CorruptModelError, match="the file is empty"):
        edgekit.load(p)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_onnx(tmp_path: Path, build, cut: float) -> None:
    data = build("conv_relu").read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CorruptModelError, match=r"not a valid ONNX model .*re-export or re-download"):
        edgekit.load(p)


def test_garbage_onnx(tmp_path: Path) -> None:
    p = tmp_path / "garbage.onnx"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptModelError):
        edgekit.load(p)


def test_ir_without_bin(tmp_path: Path) -> None:
    p = tmp_path / "model.xml"
    p.write_text("<net><layers/></net>")
    with pytest.raises(ModelNotFoundError, match=r"needs its weights file model\.bin"):
        edgekit.load(p)


def test_unknown_runtime(build) -> None:
    with pytest.raises(UnknownRuntimeError, match=r"no runtime named 'tensorflow'; registered runtimes: \["):
        edgekit.load(build("conv_relu"), runtime="tensorflow")


def test_runtime_cannot_read_format(build) -> None:
    with pytest.raises(UnsupportedModelError, match=r"runtime 'litert' cannot read onnx models .*Runtimes that read onnx"):
        edgekit.load(build("conv_relu"), runtime="litert")


def test_runtime_not_installed_names_extra(build, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = edgekit.get_runtime("onnxruntime")
    monkeypatch.setattr(type(rt), "is_installed", lambda self: False)
    with pytest.raises(RuntimeNotInstalledError, match=r"pip install 'edgekit\[onnxruntime\]'") as e:
        edgekit.load(build("conv_relu"), runtime="onnxruntime")
    assert isinstance(e.value, ImportError)




@pytest.mark.parametrize(("runtime", "fmt"), [(r, f) for r in runtime_names() for f in ("onnx", "tflite")
                                              if get_runtime(r).can_read(f)])
def test_unknown_operator_is_named(runtime: str, fmt: str, tmp_path: Path) -> None:
    from edgekit.testing.tflite_models import build_custom_op_model

    path = (build_custom_op_onnx(tmp_path / "custom.onnx") if fmt == "onnx"
            else build_custom_op_model(tmp_path / "custom.tflite"))
    with pytest.raises(UnsupportedModelError, match="EdgekitNoSuchOp") as e:
        edgekit.load(path, runtime=runtime)
    assert e.value.operators == ("EdgekitNoSuchOp",)


def test_unknown_option(build) -> None:
    with pytest.raises(InvalidOptionError, match=r"does not take option\(s\) \['warp_speed'\]; it takes threads="):
        edgekit.load(build("conv_relu"), runtime="onnxruntime", warp_speed=9)


def test_bad_threads(build) -> None:
    with pytest.raises(InvalidOptionError, match="threads must be a positive integer, got 0"):
        edgekit.load(build("conv_relu"), threads=0)


def test_absent_accelerator(build) -> None:
    with pytest.raises(edgekit.AcceleratorUnavailableError, match=r"accelerator 'cuda' \(CUDAExecutionProvider.*available here: \['cpu'"):
        edgekit.load(build("conv_relu"), runtime="onnxruntime", accelerator="cuda")


@pytest.fixture(scope="module")
def two(build):
    with edgekit.load(build("two_in_two_out"), runtime="onnxruntime") as m:
        yield m


@pytest.fixture(scope="module")
def conv(build):
    with edgekit.load(build("conv_relu"), runtime="onnxruntime") as m:
        yield m


class TestInputs:
    def test_wrong_name(self, two) -> None:
        x = np.ones((1, 4), np.float32)
        with pytest.raises(InputError, match=r"unknown input name\(s\) \['c'\] and missing \['b'\]; the model's inputs are a: float32\[1, 4\], b: float32\[1, 4\]"):
            two.run({"a": x, "c": x})

    def test_wrong_count(self, two) -> None:
        with pytest.raises(InputError, match=r"got 3 input\(s\), the model takes 2"):
            two.run([np.ones((1, 4), np.float32)] * 3)

    def test_one_array_for_two_inputs(self, two) -> None:
        with pytest.raises(InputError, match="got one array, the model takes 2 inputs"):
            two(np.ones((1, 4), np.float32))

    def test_wrong_rank(self, conv) -> None:
        with pytest.raises(InputError, match=r"input 'x': got rank 3 shape \(3, 8, 8\), expected rank 4 shape \(1, 3, 8, 8\)\. Reshape it, e\.g\. x\[None\]"):
            conv(np.ones((3, 8, 8), np.float32))

    def test_wrong_shape(self, conv) -> None:
        with pytest.raises(InputError, match=r"input 'x': got shape \(1, 3, 9, 8\), expected \(1, 3, 8, 8\)"):
            conv(np.ones((1, 3, 9, 8), np.float32))

    def test_lossy_dtype(self, conv) -> None:
        with pytest.raises(InputError, match=r"got dtype float64, expected float32; float64 -> float32 is not a lossless cast\. .*x\.astype\(np\.float32\)"):
            conv(np.ones((1, 3, 8, 8), np.float64))

    def test_lossless_cast_accepted(self, conv) -> None:
        a = conv(np.ones((1, 3, 8, 8), np.uint8))["y"]
        b = conv(np.ones((1, 3, 8, 8), np.float32))["y"]
        np.testing.assert_array_equal(a, b)

    def test_python_lists_and_keywords(self, two) -> None:
        out = two(a=[[1, 2, 3, 4]], b=[[0.5, 0.5, 0.5, 0.5]])
        np.testing.assert_allclose(out["z_sum"], [[1.5, 2.5, 3.5, 4.5]])
        assert list(out) == ["z_sum", "a_prod"]

    def test_non_contiguous_and_readonly(self, conv) -> None:
        base = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
        x = base.transpose(0, 3, 1, 2)  # a non-contiguous view
        x.flags.writeable = False
        np.testing.assert_array_equal(conv(x)["y"], conv(np.ascontiguousarray(x))["y"])

    def test_ragged_list(self, conv) -> None:
        with pytest.raises(InputError, match="cannot turn a list into an array|ragged"):
            conv([[1, 2], [3]])

    def test_closed(self, build) -> None:
        m = edgekit.load(build("conv_relu"), runtime="onnxruntime")
        m.close()
        with pytest.raises(edgekit.InferenceError, match="is closed; load the model again"):
            m(np.zeros((1, 3, 8, 8), np.float32))


def test_import_loads_no_runtime() -> None:
    import subprocess

    code = ("import sys, edgekit; heavy = {'onnxruntime', 'ai_edge_litert', 'openvino', 'cv2', 'MNN', "
            "'tflite_runtime', 'onnx'}; print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
