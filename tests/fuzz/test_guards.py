"""The guards, one per crash that fuzzing found: each damaged file is refused with a typed error.

Validation guards (``edgekit.models.onnx_rules``, ``tflite_rules``) are checked on files built
here. MNN's probe is shown to be needed (unguarded, mutants crash a worker) and sufficient (guarded,
the same files raise typed errors); OpenCV's probe, to run once per file and be remembered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgekit
from edgekit.errors import CorruptModelError, InputError
from edgekit.models.formats import open_model
from edgekit.registry import get_runtime
from edgekit.testing.conformance import build_model
from edgekit.testing.fuzz import fuzz_runtime
from edgekit.testing.mutate import mutants


def _damaged(build, tmp_path: Path, case: str, damage) -> Path:
    model = onnx.load(str(build(case, "onnx")))
    damage(model)
    path = tmp_path / f"{case}-damaged.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _opset(m: onnx.ModelProto) -> None:
    m.opset_import[0].version = 1 << 40  # OpenVINO 2026.4's reader looped for hours


def _conv_one_input(m: onnx.ModelProto) -> None:
    del m.graph.node[0].input[1:]  # OpenVINO's reader: SIGSEGV


def _dims(m: onnx.ModelProto) -> None:
    m.graph.initializer[0].dims[-1] = 65536  # OpenCV's importer: SIGSEGV


def _negative_dim(m: onnx.ModelProto) -> None:
    m.graph.initializer[0].dims[-1] = -1  # OpenCV: SIGABRT at release


def _loop_without_body(m: onnx.ModelProto) -> None:
    m.graph.node[0].op_type = "Loop"  # OpenCV: SIGSEGV running it


def _dim_param(m: onnx.ModelProto) -> None:
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"


def _dangling(m: onnx.ModelProto) -> None:
    del m.graph.initializer[0]  # OpenCV's importer: SIGFPE


@pytest.mark.parametrize(("damage", "message"), [
    (_opset, "opset 1099511627776"), (_conv_one_input, "has 1 inputs; its schema allows 2..3"),
    (_dims, r"need \d+ bytes, its raw data has 432"), (_negative_dim, "negative dim"),
    (_dangling, "reads 'w', which no graph input"), (_loop_without_body, r"lacks the required attribute\(s\) \['body'\]"),
])
def test_onnx_values_that_crashed_a_runtime_are_refused(damage, message: str, build, tmp_path: Path) -> None:
    path = _damaged(build, tmp_path, "conv_relu", damage)
    with pytest.raises(CorruptModelError, match=message.replace("..", r"\.\.")):
        open_model(path)


@pytest.mark.parametrize("text", [b"MatMul", b"batch"])
def test_non_utf8_text_is_refused(build, tmp_path: Path, text: bytes) -> None:
    """OpenCV raised UnicodeDecodeError on a damaged op type; ONNX Runtime on a damaged dim_param."""
    data = _damaged(build, tmp_path, "matmul_add_softmax", _dim_param).read_bytes()
    path = tmp_path / "text.onnx"
    path.write_bytes(data.replace(text, text[:2] + b"\xff" + text[3:]))
    with pytest.raises(CorruptModelError, match="not UTF-8 text"):
        open_model(path)


def test_the_rules_refuse_no_valid_model() -> None:
    """Every model of ONNX's backend test data (1,700+ files, Loop/If/Scan bodies included) passes the rules."""
    import glob
    import os

    import onnx.backend.test

    from edgekit.models import onnx_rules

    root = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data")
    paths = glob.glob(f"{root}/**/*.onnx", recursive=True)
    assert len(paths) > 1000
    flagged = [(p, why) for p in paths if (why := onnx_rules.problem(onnx.load(p, load_external_data=False)))]
    assert not flagged, flagged[:5]


def test_tflite_omitted_input_of_an_op_that_needs_it_is_refused(tmp_path: Path) -> None:
    """LiteRT 2.3 crashed in prepare on an ADD whose second input was -1 (after other models were loaded)."""
    from edgekit.testing.tflite_models import OpDef, TensorDef, write_tflite

    path = write_tflite([TensorDef("a", [1, 4]), TensorDef("b", [1, 4]), TensorDef("y", [1, 4])],
                       [OpDef("ADD", [0, -1], [2])], [0, 1], [2], tmp_path / "add.tflite")
    with pytest.raises(CorruptModelError, match="omitted"):
        open_model(path)


def test_tflite_empty_constant_with_data_is_refused(tmp_path: Path) -> None:
    """OpenVINO's TFLite reader died of SIGFPE on a Conv weight of shape [4, 3, 3, 0] holding 432 bytes."""
    import struct

    from edgekit.testing.tflite_models import OpDef, TensorDef, write_tflite

    tensors = [TensorDef("x", [1, 8, 8, 3]), TensorDef("w", [4, 3, 3, 3], data=np.ones((4, 3, 3, 3), np.float32)),
               TensorDef("b", [4], data=np.zeros(4, np.float32)), TensorDef("y", [1, 8, 8, 4])]
    path = write_tflite(tensors, [OpDef("CONV_2D", [0, 1, 2], [3], {"padding": "SAME"})], [0], [3], tmp_path / "c.tflite")
    open_model(path)
    data = path.read_bytes()
    shape = struct.pack("<5i", 4, 4, 3, 3, 3)  # the weights' shape vector: count, then dims
    assert data.count(shape) == 1
    path.write_bytes(data.replace(shape, struct.pack("<5i", 4, 4, 3, 3, 0)))
    with pytest.raises(CorruptModelError, match="has no elements, yet its buffer"):
        open_model(path)


def _pool_model(path: Path) -> Path:
    """Dynamic H, W -> 2x2 MaxPool (stride 2) -> Relu: any H or W below 2 is invalid."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, None, None])
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Relu", ["p"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "pool", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


@pytest.mark.skipif(not get_runtime("openvino").is_installed(), reason="needs openvino")
def test_openvino_checks_new_dynamic_shapes(tmp_path: Path) -> None:
    """OpenVINO's CPU plugin ran shapes its own shape inference rejects (PP-OCR cls at 32x32) and corrupted
    the heap; edgekit checks each new shape set once and raises InputError."""
    with edgekit.load(_pool_model(tmp_path / "pool.onnx"), runtime="openvino", threads=1) as m:
        x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
        expected = np.maximum(x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)), 0)
        np.testing.assert_array_equal(m(x)["y"], expected)
        with pytest.raises(InputError, match="shape inference rejects"):
            m(np.zeros((1, 2, 1, 1), np.float32))
        np.testing.assert_array_equal(m(x)["y"], expected)  # still usable


@pytest.mark.skipif(not get_runtime("openvino").is_installed(), reason="needs openvino")
def test_openvino_refuses_outputs_it_infers_otherwise_than_declared(build, tmp_path: Path, fuzz_env) -> None:
    """A Conv turned into a Resize (scales = the Conv's bias): declared [1,4,8,8], OpenVINO infers [0,0,?,1]; it ran
    it and corrupted its heap (two models later, a run crashed)."""
    def to_resize(m: onnx.ModelProto) -> None:
        m.graph.node[0].op_type = "Resize"

    path = _damaged(build, tmp_path, "conv_relu", to_resize)
    open_model(path)  # the file is sound: the values are not
    with pytest.raises(edgekit.UnsupportedModelError, match=r"infers output 'y' .* as \[0,0,\?,1\]"):
        edgekit.load(path, runtime="openvino")


@pytest.mark.skipif(not get_runtime("opencv").is_installed(), reason="needs opencv")
def test_opencv_probes_each_new_file_once(build, tmp_path: Path, fuzz_env) -> None:
    """OpenCV's importer crashed on 1.3% of mutated ONNX files (most now refused by the rules) and on a uint8
    input feeding a float MatMul (heap damage, abort at exit): each new file is loaded in a probe process first."""
    from edgekit.cache import cache_dir

    model = onnx.load(str(build("conv_relu", "onnx")))
    model.producer_name = f"edgekit-test-{tmp_path.name}"  # a file no earlier test has probed
    path = tmp_path / "conv.onnx"
    path.write_bytes(model.SerializeToString())
    before = set(cache_dir("probed").glob("opencv-*"))
    x = np.ones((1, 3, 8, 8), np.float32)
    for _ in range(2):
        with edgekit.load(path, runtime="opencv", threads=1) as m:
            assert m(x)["y"].shape == (1, 4, 8, 8)
    assert len(set(cache_dir("probed").glob("opencv-*")) - before) == 1  # probed once, remembered
    with edgekit.load(path, runtime="opencv", threads=1, probe=False, engine="classic") as m:  # trusted: no probe
        assert m(x)["y"].shape == (1, 4, 8, 8)
    assert len(set(cache_dir("probed").glob("opencv-*")) - before) == 1


@pytest.mark.skipif(not get_runtime("mnn").is_installed(), reason="needs mnn")
def test_mnn_probe_turns_crashes_into_typed_errors(tmp_path: Path, fuzz_env) -> None:
    """About 4% of bit-flipped .mnn files that are well-formed flatbuffers crash MNN 3.6.1."""
    seeds = {c: build_model(c, "mnn", tmp_path / "seeds").read_bytes() for c in ("conv_relu", "matmul_add_softmax")}
    paths = []
    for m in mutants(seeds, "mnn", 120, seed=7):
        path = tmp_path / f"{m.name}.mnn"
        path.write_bytes(m.data)
        try:
            open_model(path)
        except CorruptModelError:
            continue
        paths.append(str(path))
    unguarded = fuzz_runtime(paths, "mnn", case_timeout=30, options={"probe": False}, env=fuzz_env)
    crashed = [r.path for r in unguarded if r.outcome == "crash"]
    assert crashed, "no mutant crashed MNN unguarded: the probe may no longer be needed (re-measure)"
    guarded = fuzz_runtime(crashed, "mnn", case_timeout=30, env=fuzz_env)
    assert all(r.outcome == "rejected" and r.error == "CorruptModelError" for r in guarded), guarded
    with pytest.raises(CorruptModelError, match="probe process"):
        edgekit.load(crashed[0], runtime="mnn")  # in this process: the probe protects it
