"""LiteRT adapter, TFLite builders and the TFLite structural verifier, on real runs."""

from __future__ import annotations

import ctypes.util
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import AcceleratorUnavailableError, CorruptModelError, InvalidOptionError, UnsupportedModelError
from edgekit.models import tflite_schema
from edgekit.models.build import OpDef, TensorDef, write_tflite
from edgekit.models.formats import open_model
from edgekit.models.sample import build_sample_cnn, sample_cnn_reference
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES, INT8
from edgekit.testing.tflite_models import build_custom_op_model, build_tflite

# The verifier and builder tests run with the core alone; these need LiteRT itself.
needs_litert = pytest.mark.skipif(not get_runtime("litert").is_installed(),
                                  reason="ai-edge-litert is not installed: pip install 'edgekit[litert]'")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tflite")
    for name in CASES:
        build_tflite(name, folder / f"{name}.tflite")
    return folder


def _close(case_name: str, got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    case = CASES[case_name]
    assert list(got) == list(ref)
    for k in ref:
        assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape, k
        np.testing.assert_allclose(got[k].astype(np.float64), ref[k].astype(np.float64), atol=case.atol, rtol=case.rtol)


@needs_litert
@pytest.mark.parametrize("case_name", list(CASES))
def test_case_matches_reference(models: Path, case_name: str) -> None:
    case = CASES[case_name]
    with edgekit.load(models / f"{case_name}.tflite", runtime="litert", threads=2) as m:
        assert [s.name for s in m.inputs] == list(case.onnx_inputs)
        assert m.placement.runtime == "litert" and m.placement.options["threads"] == 2
        assert m.session.thread_safe is False
        feeds = case.inputs("tflite")
        _close(case_name, m.run(feeds), case.reference("tflite", feeds))


@needs_litert
def test_reference_kernels_match(models: Path) -> None:
    case = CASES["conv_relu"]
    feeds = case.inputs("tflite")
    for kernels in ("optimized", "reference"):
        with edgekit.load(models / "conv_relu.tflite", runtime="litert", accelerator="reference", kernels=kernels) as m:
            assert m.placement.accelerator == "reference"
            _close("conv_relu", m.run(feeds), case.reference("tflite", feeds))


@needs_litert
def test_dynamic_batch_resizes(models: Path) -> None:
    case = CASES["dynamic_batch"]
    with edgekit.load(models / "dynamic_batch.tflite", runtime="litert") as m:
        assert m.inputs[0].shape == (None, 6) and m.outputs[0].shape == (None, 3)
        for batch in (1, 5, 1):
            feeds = case.inputs("tflite", batch=batch)
            out = m.run(feeds)
            assert out["y"].shape == (batch, 3)
            _close("dynamic_batch", out, case.reference("tflite", feeds))


@needs_litert
def test_int8_quantization(models: Path) -> None:
    case = CASES["int8_fc"]
    with edgekit.load(models / "int8_fc.tflite", runtime="litert") as m:
        assert m.placement.precision == "int8"
        (x,), (y,) = m.inputs, m.outputs
        assert x.dtype == np.int8 and x.quantization == pytest.approx((INT8["x_scale"], INT8["x_zp"]))
        assert y.quantization == pytest.approx((INT8["y_scale"], INT8["y_zp"]))
        for seed in range(3):
            feeds = case.inputs("tflite", seed=seed)
            got, ref = m.run(feeds)["y"], case.reference("tflite", feeds)["y"]
            assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
        with pytest.raises(InvalidOptionError):
            edgekit.load(models / "int8_fc.tflite", runtime="litert", precision="fp32")


@needs_litert
def test_outputs_are_copies(models: Path) -> None:
    with edgekit.load(models / "two_in_two_out.tflite", runtime="litert") as m:
        first = m.run([np.ones((1, 4), np.float32), np.ones((1, 4), np.float32)])
        m.run([np.full((1, 4), 5, np.float32), np.ones((1, 4), np.float32)])
        assert (first["z_sum"] == 2).all() and (first["a_prod"] == 1).all()


@needs_litert
def test_sample_cnn(tmp_path: Path) -> None:
    path = build_sample_cnn(tmp_path / "cnn.tflite")
    ops = Counter(tflite_schema.operator_names(path.read_bytes()))
    assert ops == {"CONV_2D": 4, "DEPTHWISE_CONV_2D": 3, "MEAN": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    image = np.random.default_rng(0).random((1, 96, 96, 3), dtype=np.float32)
    with edgekit.load(path, runtime="litert") as m:
        assert [s.name for s in m.inputs] == ["image"] and [s.name for s in m.outputs] == ["probs"]
        probs = m(image)["probs"]
    np.testing.assert_allclose(probs, sample_cnn_reference(image.transpose(0, 3, 1, 2)), atol=1e-5)
    assert probs.sum() == pytest.approx(1, abs=1e-5)


@needs_litert
def test_unknown_custom_op_is_unsupported(tmp_path: Path) -> None:
    path = build_custom_op_model(tmp_path / "custom.tflite", "EdgekitNoSuchOp")
    assert tflite_schema.operator_names(path.read_bytes()) == ["EdgekitNoSuchOp"]
    with pytest.raises(UnsupportedModelError, match="EdgekitNoSuchOp") as info:
        edgekit.load(path, runtime="litert")
    assert info.value.operators == ("EdgekitNoSuchOp",)


@needs_litert
def test_depthwise_without_bias_is_refused(tmp_path: Path) -> None:
    """ai-edge-litert 2.3.0 segfaults invoking a DEPTHWISE_CONV_2D that has no bias input (found by fuzzing)."""
    tensors = [TensorDef("x", [1, 8, 8, 3]), TensorDef("w", [1, 3, 3, 3], data=np.ones((1, 3, 3, 3), np.float32)),
               TensorDef("y", [1, 8, 8, 3])]
    opts = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1}
    path = write_tflite(tensors, [OpDef("DEPTHWISE_CONV_2D", [0, 1], [2], opts)], [0], [2], tmp_path / "dw.tflite")
    with pytest.raises(UnsupportedModelError, match="without a bias") as info:
        edgekit.load(path, runtime="litert")
    assert info.value.operators == ("DEPTHWISE_CONV_2D",)


@needs_litert
def test_delegate_failures(models: Path, tmp_path: Path) -> None:
    model = models / "two_in_two_out.tflite"
    with pytest.raises(AcceleratorUnavailableError, match="nope/libdelegate.so"):
        edgekit.load(model, runtime="litert", delegate=str(tmp_path / "nope/libdelegate.so"))
    libc = ctypes.util.find_library("c")
    if libc:
        with pytest.raises(AcceleratorUnavailableError, match="tflite_plugin_create_delegate"):
            edgekit.load(model, runtime="litert", accelerator="delegate", delegate=libc)
    with pytest.raises(InvalidOptionError, match="delegate="):
        edgekit.load(model, runtime="litert", accelerator="delegate")
    with pytest.raises(InvalidOptionError, match="delegate_options="):
        edgekit.load(model, runtime="litert", delegate_options={"device": "usb:0"})
    if "edgetpu" not in get_runtime("litert").accelerators():
        with pytest.raises(AcceleratorUnavailableError, match="edgetpu"):
            edgekit.load(model, runtime="litert", accelerator="edgetpu")


# --- the verifier -------------------------------------------------------------------------------

def _load_corrupt(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    with pytest.raises(CorruptModelError) as info:
        edgekit.load(path, runtime="litert")
    return str(info.value)


def test_verifier_rejects_broken_files(models: Path, tmp_path: Path) -> None:
    good = (models / "conv_relu.tflite").read_bytes()
    bad = tmp_path / "bad.tflite"
    assert "empty" in _load_corrupt(bad, b"")
    assert "TFL3" in _load_corrupt(bad, good[:4] + b"ONNX" + good[8:])
    for cut in (3, 8, 12, 64, len(good) // 2, len(good) - 8, len(good) - 1):
        _load_corrupt(bad, good[:cut])
    rng = np.random.default_rng(0)
    for _ in range(20):
        _load_corrupt(bad, rng.bytes(int(rng.integers(1, 4000))))
        _load_corrupt(bad, rng.bytes(4) + b"TFL3" + rng.bytes(int(rng.integers(0, 4000))))


def test_verifier_checks_indices_and_semantics(tmp_path: Path) -> None:
    tensors = [TensorDef("a", [1, 4]), TensorDef("w", [1, 4], data=np.ones((1, 4), np.float32)),
               TensorDef("s", [1, 4])]
    ok = write_tflite(tensors, [OpDef("ADD", [0, 1], [2])], [0], [2], tmp_path / "ok.tflite")
    tflite_schema.verify(ok.read_bytes())
    tensors[1].buffer = 9
    msg = _load_corrupt(tmp_path / "b.tflite", write_tflite(tensors, [OpDef("ADD", [0, 1], [2])], [0], [2],
                                                          tmp_path / "b.tflite").read_bytes())
    assert "buffer index 9 is out of range" in msg
    tensors[1].buffer = None
    cases = {"inputs refers to tensor 7": ([OpDef("ADD", [0, 7], [2])], [0]),
             "subgraph 0 input is tensor 1 \\('w'\\), a constant": ([OpDef("ADD", [0, 1], [2])], [1]),
             "\\(ADD\\) output is tensor 1 \\('w'\\), a constant": ([OpDef("ADD", [0, 2], [1])], [0])}
    for expected, (ops, inputs) in cases.items():
        path = write_tflite(tensors, ops, inputs, [2], tmp_path / "i.tflite")
        with pytest.raises(tflite_schema.SchemaViolation, match=expected):
            tflite_schema.verify(path.read_bytes())
    # semantic rules found by fuzzing: each of these crashed or exhausted memory in LiteRT 2.3
    paddings = np.array([[0, 0], [1, 1], [1, 1], [0, 0]])
    pads = [TensorDef("x", [1, 4, 4, 2]), TensorDef("p", [4, 2], "int32", data=paddings), TensorDef("y", [1, 6, 6, 2])]
    write_tflite(pads, [OpDef("PAD", [0, 1], [2])], [0], [2], tmp_path / "pad.tflite")
    tflite_schema.verify((tmp_path / "pad.tflite").read_bytes())
    pads[1].data = np.array([[65536, 0], [1, 1], [1, 1], [0, 0]])
    path = write_tflite(pads, [OpDef("PAD", [0, 1], [2])], [0], [2], tmp_path / "pad.tflite")
    with pytest.raises(tflite_schema.SchemaViolation, match="the constant is corrupt"):
        tflite_schema.verify(path.read_bytes())
    deq = [TensorDef("w", [2, 3], "float16", data=np.ones((2, 3), np.float16)), TensorDef("wf", [2, 30]),
           TensorDef("x", [2, 3]), TensorDef("y", [2, 3])]
    ops = [OpDef("DEQUANTIZE", [0], [1]), OpDef("ADD", [2, 1], [3])]
    path = write_tflite(deq, ops, [2], [3], tmp_path / "dq.tflite")
    with pytest.raises(tflite_schema.SchemaViolation, match=r"DEQUANTIZE\): output shape \[2, 30\] differs"):
        tflite_schema.verify(path.read_bytes())
    big = [TensorDef("a", [1 << 20, 1 << 20]), TensorDef("s", [1 << 20, 1 << 20])]
    path = write_tflite(big, [OpDef("ADD", [0, 0], [1])], [0], [1], tmp_path / "big.tflite")
    with pytest.raises(tflite_schema.SchemaViolation, match="GiB"):
        tflite_schema.verify(path.read_bytes(), memory_limit=1 << 30)


def test_verifier_bounds_work_on_aliased_tables() -> None:
    """A crafted file whose vectors point at the same tables over and over is rejected fast, not walked."""
    import time

    import flatbuffers
    import tflite as tfl

    b = flatbuffers.Builder(1024)
    tfl.TensorStart(b)
    tensor = tfl.TensorEnd(b)

    def same(offset: int, n: int) -> int:
        b.StartVector(4, n, 4)
        for _ in range(n):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    tensors = same(tensor, 2000)
    tfl.SubGraphStart(b)
    tfl.SubGraphAddTensors(b, tensors)
    subgraphs = same(tfl.SubGraphEnd(b), 2000)  # 4 million tensor visits in a 16 kB file
    tfl.BufferStart(b)
    buffers = same(tfl.BufferEnd(b), 1)
    tfl.ModelStart(b)
    tfl.ModelAddVersion(b, 3)
    tfl.ModelAddSubgraphs(b, subgraphs)
    tfl.ModelAddBuffers(b, buffers)
    b.Finish(tfl.ModelEnd(b), file_identifier=b"TFL3")
    start = time.perf_counter()
    with pytest.raises(tflite_schema.SchemaViolation, match="same data over and over"):
        tflite_schema.verify(bytes(b.Output()))
    assert time.perf_counter() - start < 1


_WORKER = """
import json, sys
try:
    import resource  # a fuzzed shape must not exhaust the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
except (ImportError, ValueError, OSError):
    pass
import numpy as np
import edgekit
for path in sys.stdin.read().split():
    print(json.dumps(["start", path]), flush=True)
    try:
        with edgekit.load(path, runtime="litert", threads=1) as m:
            feeds = {s.name: np.zeros(s.concrete_shape(), s.dtype) for s in m.inputs}
            if sum(a.nbytes for a in feeds.values()) < 1 << 26:
                m.run(feeds)
        print(json.dumps(["ok", path]), flush=True)
    except edgekit.EdgekitError as exc:
        print(json.dumps(["error", path, type(exc).__name__, str(exc)[:200]]), flush=True)
"""


@needs_litert
def test_fuzzed_models_never_crash(models: Path, tmp_path: Path) -> None:
    """300 seeded bit-flips/truncations: each is rejected, or edgekit loads and runs it on LiteRT without a crash
    (in a subprocess, where a crash is an exit status) and any failure is an edgekit error."""
    good = (models / "conv_relu.tflite").read_bytes()
    rng = random.Random(20240601)
    passed = []
    for i in range(300):
        data = bytearray(good)
        if i % 4 == 3:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(1 + i % 3):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path = tmp_path / f"fuzz{i}.tflite"
        path.write_bytes(bytes(data))
        try:
            open_model(path)
        except CorruptModelError:
            continue
        passed.append(str(path))
    assert 20 < len(passed) < 250  # the mutations exercise both paths
    proc = subprocess.run([sys.executable, "-c", _WORKER], input="\n".join(passed), capture_output=True,
                          text=True, timeout=120)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]
    started = [entry[1] for entry in lines if entry[0] == "start"]
    assert proc.returncode == 0, (f"exit {proc.returncode} (a crash, or a non-edgekit exception) on "
                                  f"{started[-1] if started else '?'}: {proc.stderr[-800:]}")
    assert len(started) == len(passed)
