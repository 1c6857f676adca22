"""The emulated backend: partitioning, device numerics and the latency model (real ONNX Runtime underneath)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.emulation.core import prepare
from edgekit.emulation.spec import parse_spec
from edgekit.errors import ConfigError, InvalidOptionError, UnsupportedModelError
from edgekit.models.formats import open_model

FP16_EPS = 2.0**-10


@pytest.fixture(autouse=True)
def _quiet_quantizer() -> None:
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization warns on the root logger


def _net(path: Path, middle: str = "Relu", channels: int = 8, size: int = 16, batch: int | str = 1) -> Path:
    """x -> Conv(3->c) -> Relu -> <middle> -> Conv(c->c) -> Relu -> y, with fixed random weights."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.4, (channels, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (channels, channels, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, (channels,)).astype(np.float32)
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [helper.make_node("Conv", ["x", "w1", "b"], ["c1"], name="conv1", **conv),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node(middle, ["r1"], ["m"], name="middle"),
             helper.make_node("Conv", ["m", "w2", "b"], ["c2"], name="conv2", **conv),
             helper.make_node("Relu", ["c2"], ["y"], name="relu2")]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels, size, size])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _x(size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (1, 3, size, size)).astype(np.float32)


# --- operators and partitions -----------------------------------------------------------------

def test_unsupported_op_makes_a_cpu_partition(tmp_path: Path) -> None:
    path = _net(tmp_path / "erf.onnx", middle="Erf")  # Erf is not in the QNN HTP operator list
    m = edgekit.load(path, device="snapdragon-8-gen-3", emulate=True)
    assert m.placement.emulated and m.placement.runtime == "emulated"
    assert m.placement.accelerator == "qnn" and m.placement.precision == "fp16"
    plan = m.session.emulation.plan
    sides = [p.on_accelerator for p in plan.partitions]
    assert sides == [True, False, True], sides
    text = m.placement.explain()
    assert "falls back to CPU: 'middle' (Erf): Erf is not in qnn-htp's onnx operator list" in text
    assert "rejected #1 onnxruntime/qnn int8 on npu" in text  # float model: the int8 target is skipped, with why
    ref = edgekit.load(path, runtime="onnxruntime")
    out, exp = m(_x())["y"], ref(_x())["y"]
    assert np.abs(out - exp).max() <= 20 * FP16_EPS * np.abs(exp).max()


def test_strict_mode_names_each_unsupported_op(tmp_path: Path) -> None:
    path = _net(tmp_path / "erf.onnx", middle="Erf")
    with pytest.raises(UnsupportedModelError) as info:
        edgekit.load(path, device="snapdragon-8-gen-3", emulate=True, strict=True, accelerator="qnn", precision="fp16")
    assert "'middle' (Erf)" in str(info.value) and "strict=False" in str(info.value)
    assert info.value.operators == ("Erf",)


def test_edgetpu_stops_at_the_first_unsupported_op(tmp_path: Path) -> None:
    path = _net(tmp_path / "erf.onnx", middle="Erf")
    m = edgekit.load(path, device="coral-edgetpu", emulate=True, calibration=[_x(seed=s) for s in range(2)])
    emu = m.session.emulation
    convs = {n.name: emu.plan.on_accelerator[n.index] for n in emu.graph.nodes if n.op == "Conv"}
    assert convs == {"conv1": True, "conv2": False}  # conv2 is supported, but after the Erf
    assert "maps only the ops before it" in m.placement.explain()


# --- numerics -----------------------------------------------------------------------------------

def test_fp16_emulation_changes_outputs_plausibly(tmp_path: Path) -> None:
    path = _net(tmp_path / "relu.onnx")
    m = edgekit.load(path, device="snapdragon-8-gen-3", emulate=True)
    assert m.placement.precision == "fp16"
    exp = edgekit.load(path, runtime="onnxruntime")(_x())["y"]
    out = m(_x())["y"]
    err = np.abs(out.astype(np.float64) - exp).max()
    assert err > 0, "fp16 emulation must change the outputs"
    assert err <= 20 * FP16_EPS * np.abs(exp).max(), (err, np.abs(exp).max())
    fp32 = edgekit.load(path, device="generic-x86-64", emulate=True)(_x())["y"]
    np.testing.assert_array_equal(fp32, exp)  # an fp32 CPU profile changes nothing


def test_int8_emulation_matches_the_quantized_model_on_onnxruntime(tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    path = _net(tmp_path / "relu.onnx")
    samples = [_x(seed=s) for s in range(3)]
    with pytest.raises(UnsupportedModelError, match="calibration="):
        edgekit.load(path, device="coral-edgetpu", emulate=True)  # float model, int8-only accelerator
    m = edgekit.load(path, device="coral-edgetpu", emulate=True, calibration=samples)
    assert m.placement.precision == "int8" and "2 of 2 ops run on edgetpu" in m.placement.explain()  # Relu folded by the quantizer

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"x": s} for s in samples])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(path), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    exp = edgekit.load(tmp_path / "q.onnx", runtime="onnxruntime")(_x(seed=9))["y"]
    np.testing.assert_allclose(m(_x(seed=9))["y"], exp, rtol=0, atol=1e-6)
    fp32 = edgekit.load(path, runtime="onnxruntime")(_x(seed=9))["y"]
    assert np.abs(exp - fp32).max() > 0  # quantization is visible


def test_static_shapes_are_required_where_the_profile_says(tmp_path: Path) -> None:
    path = _net(tmp_path / "dyn.onnx", batch="N")
    with pytest.raises(UnsupportedModelError, match="input_shapes="):
        edgekit.load(path, device="snapdragon-8-gen-3", emulate=True)
    m = edgekit.load(path, device="snapdragon-8-gen-3", emulate=True, input_shapes={"x": (1, 3, 16, 16)})
    assert m.inputs[0].shape == (1, 3, 16, 16)
    assert any("fit in npu's" in n for n in m.placement.notes)  # model size against accelerator memory


def test_estimate_only_for_emulated_placements(tmp_path: Path) -> None:
    path = _net(tmp_path / "relu.onnx")
    with pytest.raises(InvalidOptionError, match="emulate=True"):
        edgekit.load(path, runtime="onnxruntime").estimate()
    est = edgekit.load(path, device="jetson-orin-nano", emulate=True).estimate()
    assert est.total_s > 0 and est.partitions and len(est.ops) == 5


# --- the latency model --------------------------------------------------------------------------

def _estimate(path: Path, device: str, **options: object) -> object:
    return prepare(open_model(path), device, **options).estimate()  # type: ignore[arg-type]


def test_latency_is_monotone_in_flops(tmp_path: Path) -> None:
    for device in ("snapdragon-8-gen-3", "raspberry-pi-5", "jetson-orin-nano"):
        totals = [_estimate(_net(tmp_path / f"c{c}.onnx", channels=c, size=32), device).total_s  # type: ignore[attr-defined]
                  for c in (4, 16, 64, 128)]
        assert totals == sorted(totals) and len(set(totals)) == 4, (device, totals)


def test_latency_prefers_int8_on_an_int8_npu(tmp_path: Path) -> None:
    path = _net(tmp_path / "big.onnx", channels=64, size=64)
    fp16 = _estimate(path, "snapdragon-8-gen-3")
    int8 = _estimate(path, "snapdragon-8-gen-3", calibration=[_x(64)])
    assert fp16.precision == "fp16" and int8.precision == "int8"  # type: ignore[attr-defined]
    assert int8.total_s < fp16.total_s  # type: ignore[attr-defined]


def test_latency_charges_partition_boundaries(tmp_path: Path) -> None:
    inside = _estimate(_net(tmp_path / "sig.onnx", middle="Sigmoid"), "snapdragon-8-gen-3")
    split = _estimate(_net(tmp_path / "erf.onnx", middle="Erf"), "snapdragon-8-gen-3")
    assert len(inside.partitions) == 1 and len(split.partitions) == 3  # type: ignore[attr-defined]
    assert split.transfer_s > inside.transfer_s > 0  # type: ignore[attr-defined]
    assert split.total_s > inside.total_s  # type: ignore[attr-defined]


def test_malformed_spec_is_a_precise_error() -> None:
    with pytest.raises(ConfigError, match="key 'partition' expected one of"):
        parse_spec({"name": "x", "title": "x", "source": "s", "partition": "greedy", "ops": {"onnx": ["*"]}}, "x.toml")
    with pytest.raises(ConfigError, match="compute_efficiency"):
        parse_spec({"name": "x", "title": "x", "source": "s", "ops": {"onnx": ["*"]},
                    "latency": {"compute_efficiency": 2}}, "x.toml")


def test_a_target_read_only_after_a_conversion_says_so(tmp_path: Path) -> None:
    """coral-edgetpu's only accelerator target is LiteRT: an ONNX model is emulated there as if converted, and
    the placement says so (no silent pretence that LiteRT reads ONNX)."""
    path = _net(tmp_path / "relu.onnx")
    m = edgekit.load(path, device="coral-edgetpu", emulate=True, calibration=[_x()])
    assert m.placement.target is not None and m.placement.target.startswith("#1 litert/edgetpu")
    assert m.session.emulation.converted is not None
    assert "litert does not read onnx models" in m.placement.explain()
    assert "as if the model were converted" in m.placement.explain()
