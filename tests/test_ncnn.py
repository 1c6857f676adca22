"""ncnn adapter: the conformance suite, Vulkan on a real (software) device, pnnx conversion and its cache, errors.

The pnnx converter binary is fetched once per session into the default cache (as the real
models are: a pinned wheel, checked by sha256); tests that need a private cache copy it in.
Vulkan tests skip on a host without a Vulkan device, naming the Debian packages that give one.
"""

from __future__ import annotations

import importlib.util
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
    UnsupportedModelError,
)
from edgekit.models.formats import ModelFile, open_model
from edgekit.models.ncnn_param import parse, validate
from edgekit.models.sample import sample_model
from edgekit.registry import get_runtime
from edgekit.runtimes.ncnn_convert import copy_pnnx
from edgekit.testing.conformance import check_case
from edgekit.verification import TOLERANCES

pytestmark = pytest.mark.skipif(not get_runtime("ncnn").is_installed(), reason="needs `pip install 'edgekit[ncnn]'`")

VULKAN_PACKAGES = "mesa-vulkan-drivers libvulkan1"


@pytest.fixture(scope="session")
def pnnx() -> Path:
    """The pnnx binary in the default cache (fetched from its pinned wheel once, like the real models)."""
    from edgekit.runtimes.ncnn_convert import fetch_pnnx

    return fetch_pnnx()


def _needs_vulkan() -> None:
    if "vulkan" not in get_runtime("ncnn").accelerators():
        pytest.skip(f"no Vulkan device: install one (Debian: apt-get install {VULKAN_PACKAGES}, a software "
                    "device) to run the Vulkan code path")


# --- Vulkan --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["conv_relu", "matmul_add_softmax", "two_in_two_out"])
def test_vulkan_fp32_passes_the_conformance_cases(case: str, build, pnnx: Path, tmp_path: Path) -> None:
    _needs_vulkan()
    check_case("ncnn", case, "onnx", tmp_path, accelerator="vulkan", precision="fp32")


def test_vulkan_fp16_is_within_the_reduced_precision_tolerance(pnnx: Path) -> None:
    _needs_vulkan()
    path = sample_model("onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
    with edgekit.load(path, runtime="ncnn", accelerator="cpu", precision="fp32") as cpu:
        ref = cpu(x)["probs"]
    with edgekit.load(path, runtime="ncnn", accelerator="vulkan", precision="fp16") as gpu:
        assert gpu.placement.precision == "fp16" and gpu.placement.accelerator == "vulkan"
        got = gpu(x)["probs"]
    atol, rtol = TOLERANCES["fp16"]
    np.testing.assert_allclose(got, ref, atol=atol, rtol=rtol)
    assert not np.array_equal(got, ref), "fp16 asked for, yet the output is bit-identical to fp32: was it honoured?"


def test_vulkan_fp32_is_not_ncnns_fp16_default(pnnx: Path) -> None:
    _needs_vulkan()
    path = sample_model("onnx")
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
    with edgekit.load(path, runtime="ncnn", accelerator="cpu") as cpu, \
            edgekit.load(path, runtime="ncnn", accelerator="vulkan") as gpu:
        assert gpu.placement.precision == "fp32"
        atol, rtol = TOLERANCES["fp32"]
        np.testing.assert_allclose(gpu(x)["probs"], cpu(x)["probs"], atol=atol, rtol=rtol)


def test_a_software_vulkan_device_is_named_as_such(pnnx: Path) -> None:
    _needs_vulkan()
    from edgekit.runtimes.ncnn import vulkan_device

    with edgekit.load(sample_model("onnx"), runtime="ncnn", accelerator="vulkan") as m:
        device = m.placement.options["device"]
    assert device == vulkan_device() and device.startswith("vulkan: ")
    if "llvmpipe" in device or "lavapipe" in device:
        assert device.endswith("(software rasterizer — functional check only, not a GPU)"), device
        assert "software rasterizer" in str(m.placement)


def test_precisions_are_explicit() -> None:
    rt = get_runtime("ncnn")
    assert rt.precisions("cpu") == ("fp32",)
    with pytest.raises(InvalidOptionError, match=r"cannot compute in precision 'fp16'.*\['fp32'\]"):
        rt.open(open_model(sample_model("onnx")), accelerator="cpu", precision="fp16")


# --- conversion with pnnx --------------------------------------------------------------------------

def test_without_pnnx_onnx_load_names_the_fetch_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(RuntimeNotInstalledError, match="edgekit fetch pnnx"):
        edgekit.load(sample_model("onnx"), runtime="ncnn")


def test_pnnx_is_the_binary_alone_never_torch(pnnx: Path) -> None:
    assert pnnx.is_file() and pnnx.stat().st_mode & 0o100
    assert importlib.util.find_spec("pnnx") is None and importlib.util.find_spec("torch") is None


def test_conversion_is_cached_by_content_and_rebuilt_when_planted(pnnx: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    assert copy_pnnx(cache) is not None  # from the shared cache (the pnnx fixture fetched it there)
    monkeypatch.setenv("EDGEKIT_CACHE", str(cache))
    with edgekit.load(sample_model("onnx"), runtime="ncnn", threads=1) as m:
        first = m.placement.options
    assert first["converted_now"] is True and Path(first["converted_model"]).parent == cache / "ncnn"
    with edgekit.load(sample_model("onnx"), runtime="ncnn", threads=1) as m:
        assert m.placement.options["converted_now"] is False
    param = Path(first["converted_model"])
    param.write_text(param.read_text().replace("Softmax", "Sigmoid"))  # planted under the key: converted again
    with edgekit.load(sample_model("onnx"), runtime="ncnn", threads=1) as m:
        assert m.placement.options["converted_now"] is True
    assert "Softmax" in param.read_text()


def test_converted_param_keeps_the_onnx_names_and_shapes(pnnx: Path, tmp_path: Path) -> None:
    from edgekit.runtimes.ncnn_convert import convert_to_ncnn

    param = tmp_path / "m.param"
    convert_to_ncnn(open_model(sample_model("onnx")), param, tmp_path / "m.bin")
    parsed = parse(param.read_text())
    (inp,) = parsed.inputs()
    assert inp.tops == ["image"] and parsed.outputs() == ["probs"]
    assert (inp.params[0], inp.params[1], inp.params[2]) == ("96", "96", "3")  # w, h, c: the batch axis dropped
    assert not list(tmp_path.glob("*.onnx")), "pnnx's side files must stay in its private folder"


def test_a_batch_above_one_is_refused_not_run_wrongly(pnnx: Path) -> None:
    from edgekit.testing.real_models import fetch

    with edgekit.load(fetch("ppocr-cls"), runtime="ncnn", threads=1) as m:
        assert m(np.zeros((1, 3, 48, 192), np.float32))[m.outputs[0].name].shape == (1, 2)
        with pytest.raises(InputError, match="no batch axis"):
            m(np.zeros((2, 3, 48, 192), np.float32))


def test_dynamic_image_sizes_run(pnnx: Path) -> None:
    from edgekit.testing.real_models import fetch

    with edgekit.load(fetch("ppocr-det"), runtime="ncnn", threads=2) as m:
        for side in (64, 96):
            out = m(np.zeros((1, 3, side, side), np.float32))
            assert out[m.outputs[0].name].shape == (1, 1, side, side)


# --- native .param/.bin ------------------------------------------------------------------------------

def _native(tmp_path: Path, pnnx: Path) -> Path:
    from edgekit.runtimes.ncnn_convert import convert_to_ncnn

    param = tmp_path / "m.param"
    convert_to_ncnn(open_model(sample_model("onnx")), param, tmp_path / "m.bin")
    return param


def test_native_model_runs_with_its_own_names(pnnx: Path, tmp_path: Path) -> None:
    param = _native(tmp_path, pnnx)
    model = ModelFile(param, "ncnn", validate(param))
    session = get_runtime("ncnn").open(model, threads=1)
    try:
        assert [(s.name, s.shape) for s in session.inputs] == [("image", (1, 3, 96, 96))]
        assert [(s.name, s.shape) for s in session.outputs] == [("probs", (1, 10))]
        x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
        with edgekit.load(sample_model("onnx"), runtime="onnxruntime") as ref:
            np.testing.assert_allclose(session.run({"image": x})[0], ref(x)["probs"], atol=1e-6, rtol=2e-4)
    finally:
        session.close()


def test_native_validation_names_what_is_wrong(pnnx: Path, tmp_path: Path) -> None:
    param = _native(tmp_path, pnnx)
    weights = param.with_suffix(".bin")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CorruptModelError, match=r"m.bin: 100 bytes, but the layers of m.param need at least"):
        validate(param)
    weights.unlink()
    with pytest.raises(ModelNotFoundError, match="needs its weights file m.bin"):
        validate(param)


def test_an_unknown_layer_is_named(tmp_path: Path) -> None:
    param = tmp_path / "m.param"
    param.write_text("7767517\n2 2\nInput in0 0 1 in0 0=4\nFancyOp op 1 1 in0 out0\n")
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(UnsupportedModelError, match="no layer for operator\\(s\\) FancyOp") as info:
        get_runtime("ncnn").open(ModelFile(param, "ncnn", validate(param)), threads=1, options={"probe": False})
    assert info.value.operators == ("FancyOp",)


def test_options_are_checked() -> None:
    with pytest.raises(InvalidOptionError, match="light_mode='yes' must be True or False"):
        get_runtime("ncnn").open(open_model(sample_model("onnx")), options={"light_mode": "yes"})


# --- edgekit fetch ----------------------------------------------------------------------------------

def test_fetch_command_reports_the_tool(pnnx: Path) -> None:
    from click.testing import CliRunner

    from edgekit.cli.codes import OK
    from edgekit.cli.fetch import fetch

    res = CliRunner().invoke(fetch, ["pnnx"])
    assert res.exit_code == OK and f"{pnnx} (already present)" in res.output


def test_fetch_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from edgekit.cli.codes import NOTHING
    from edgekit.cli.fetch import fetch

    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there: offline
    monkeypatch.setenv("PIP_RETRIES", "0")
    res = CliRunner().invoke(fetch, ["pnnx"])
    assert res.exit_code == NOTHING, res.output
    assert "could not download pnnx==" in res.output and "Check network access to PyPI" in res.output


def test_an_in_place_first_layer_on_the_input_does_not_crash_in_light_mode(tmp_path) -> None:
    """ReLU straight on the input: ncnn.Mat(array) borrowed the array and light mode released it (SIGSEGV)."""
    import onnx
    from onnx import TensorProto, helper

    from edgekit.runtimes.ncnn_convert import pnnx_path

    if pnnx_path() is None:
        pytest.skip("needs pnnx: edgekit fetch pnnx")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    with edgekit.load(path, runtime="ncnn", threads=1) as m:
        np.testing.assert_array_equal(m(x)["y"], np.maximum(x, 0))


def test_pnnx_is_pinned_for_x86_64_and_aarch64_linux_and_refused_elsewhere_with_what_to_do() -> None:
    from edgekit.errors import RuntimeNotInstalledError
    from edgekit.runtimes.ncnn_convert import PNNX_VERSION, pnnx_pin

    x86, arm = pnnx_pin("x86_64", "Linux"), pnnx_pin("aarch64", "Linux")
    assert pnnx_pin("AMD64", "Linux") == x86 and pnnx_pin("arm64", "Linux") == arm
    assert x86[0].platform_args()[1] == "manylinux2014_x86_64" and arm[0].platform_args()[1] == "manylinux2014_aarch64"
    assert x86[0].sha256 != arm[0].sha256 and x86[1] != arm[1] and PNNX_VERSION in arm[0].filename
    for machine, system in (("riscv64", "Linux"), ("arm64", "Darwin")):
        with pytest.raises(RuntimeNotInstalledError, match=r"convert model\.onnx --to ncnn.*\.param and \.bin"):
            pnnx_pin(machine, system)
