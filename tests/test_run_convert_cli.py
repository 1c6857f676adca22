"""``edgekit run`` / ``convert`` / ``quantize`` as a newcomer meets them (issue 14, items 6-8).

- 6: a dynamic-shape ONNX model converted to ``.mnn`` runs with ``edgekit run X.mnn --shape ...``,
  and a missing shape is a message naming ``--shape``, never MNN's NoneType error.
- 7: ``convert`` verifies on image-like inputs (or the user's), says what it ran on, rounds float16
  as a float16 device does (ONNX Runtime's CPU does not) and judges with ``load(verify=True)``'s
  reduced-precision tolerance.
- 8: ``run`` on a folder that is not a bundle, or on a missing or broken image, says so, once,
  with no OpenCV log line.

Every case runs the real command through ``edgekit.cli.main`` with the file descriptors captured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.cli import main
from edgekit.cli.codes import FAILED, OK, USAGE
from edgekit.models.sample import sample_model
from edgekit.registry import get_runtime
from edgekit.verification import TOLERANCES

needs_mnn = pytest.mark.skipif(not get_runtime("mnn").is_installed(), reason="needs `pip install mnn`")


def _run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, out + err
    return int(code or 0), out, err


def _save(nodes: list, weights: list, path: Path) -> Path:
    """A model with input x[n, 3, h, w] and output y[n, 1, h, w] (every dim but the channels dynamic)."""
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run_convert")


@pytest.fixture(scope="module")
def dyn(folder: Path) -> Path:
    """A small detector-like model whose height and width are dynamic: Conv 3x3 -> Relu -> Conv 1x1 -> Sigmoid."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (1, 4, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["c2"]), helper.make_node("Sigmoid", ["c2"], ["y"])]
    return _save(nodes, [w1, b1, w2], folder / "det.onnx")


@pytest.fixture(scope="module")
def saturating(folder: Path) -> Path:
    """sigmoid(100 x (sum of a 3x3x3 window) - 1350): 0 on noise at 1x1, a steep edge on images in [0, 1].

    Where the window's mean is near 0.5 a float16 rounding of the input moves the output by ~0.07, and
    ONNX Runtime's CPU hides it (it runs the float16 model's Conv and Sigmoid in float32).
    """
    w = numpy_helper.from_array(np.full((1, 3, 3, 3), 100.0, np.float32), "w")
    b = numpy_helper.from_array(np.array([-1350.0], np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Sigmoid", ["c"], ["y"])]
    return _save(nodes, [w, b], folder / "sat.onnx")


# -- item 6: a converted .mnn runs -------------------------------------------------------------------

@needs_mnn
def test_dynamic_onnx_converted_to_mnn_runs_with_shape(dyn: Path, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    mnn = tmp_path / "det.mnn"
    code, out, err = _run(["convert", str(dyn), "--to", "mnn", "-o", str(mnn), "--format", "json"], capfd)
    assert code == OK, out + err
    report = json.loads(out)
    assert report["notes"] == [] and report["failures"] == [] and report["drift"][0]["max_abs"] < 1e-4

    with edgekit.load(mnn, runtime="mnn") as m:  # MNN could not infer its output shapes: 'NoneType' ...
        assert [s.shape for s in m.inputs] == [(1, 3, None, None)]
        assert [(s.name, s.shape) for s in m.outputs] == [("y", (1, 1, None, None))]

    code, out, err = _run(["run", str(mnn), "--shape", "x=1x3x64x48", "--format", "json"], capfd)
    assert code == OK, out + err
    (row,) = json.loads(out)
    assert row["output"] == "y" and row["shape"] == [1, 1, 64, 48] and 0 < row["min"] <= row["max"] < 1

    x = tmp_path / "x.npy"
    np.save(x, np.full((1, 3, 40, 32), 0.5, np.float32))
    code, out, err = _run(["run", str(mnn), "--input", str(x), "--format", "json"], capfd)
    assert code == OK and json.loads(out)[0]["shape"] == [1, 1, 40, 32], out + err

    code, out, err = _run(["run", str(mnn)], capfd)  # the shape is needed and missing
    assert code == USAGE and "--shape x=1x3x640x640" in err and "NoneType" not in err, err


def test_run_shape_feeds_a_plain_model(dyn: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["run", str(dyn), "--shape", "x=2x3x24x40"], capfd)
    assert code == OK, out + err
    assert "2, 1, 24, 40" in out and "synthetic image-like" in out
    for argv, fragment in [([], "--shape x=1x3x640x640"), (["--shape", "y=1x3x8x8"], "y"),
                           (["--shape", "x=1x4x8x8"], "does not fit")]:
        code, out, err = _run(["run", str(dyn), *argv], capfd)
        assert code == USAGE and fragment in err, (argv, err)


# -- item 7: convert verifies on realistic inputs --------------------------------------------------

def test_fp16_verification_sees_what_noise_and_ort_cpu_hide(saturating: Path, tmp_path: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    """Before: N(0, 1) inputs with dynamic dims set to 1 and ONNX Runtime's CPU gave max |diff| 0 and exit 0."""
    out_path = tmp_path / "sat.fp16.onnx"
    code, out, err = _run(["convert", str(saturating), "--to", "onnx", "-o", str(out_path)], capfd)
    assert code == FAILED, out + err
    assert "verified on 8 synthetic image-like inputs" in out and "1x3x224x224" in out
    atol, rtol = TOLERANCES["fp16"]
    assert f"max({atol:g}, {rtol:g} x the original's peak" in out  # load(verify=True)'s fp16 tolerance
    assert "the file as is: max |diff| 0 here" in out  # ONNX Runtime's CPU alone would have passed it
    assert out_path.is_file() and "Do not deploy it" in err


def test_convert_verifies_on_the_users_input_and_says_so(saturating: Path, tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    frame = tmp_path / "frame.npy"
    np.save(frame, np.zeros((1, 3, 16, 16), np.float32))  # a black frame: sigmoid(-1350) everywhere
    code, out, err = _run(["convert", str(saturating), "--to", "onnx", "-o", str(tmp_path / "a.onnx"), "--input",
                           str(frame), "--format", "json"], capfd)
    assert code == OK, out + err
    report = json.loads(out)
    assert report["inputs_source"] == "frame.npy" and report["inputs_compared"] == 1

    target = tmp_path / "b.onnx"
    code, out, err = _run(["convert", str(saturating), "--to", "onnx", "-o", str(target), "--input",
                           str(tmp_path / "nope.npy")], capfd)
    assert code == USAGE and "nope.npy" in err and not target.exists(), err  # nothing written on a bad input


def test_convert_a_bundle_verifies_through_its_preprocessing(folder: Path, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    code, out, err = _run(["bundle", "create", str(sample_model("onnx")), "--preset", "classifier", "-o", str(bundle)],
                          capfd)
    assert code == OK, out + err
    code, out, err = _run(["convert", str(bundle), "--to", "onnx", "--format", "json"], capfd)
    assert code in (OK, FAILED), out + err
    report = json.loads(out)
    assert "640x480 frames" in report["inputs_source"] and "preprocessing" in report["inputs_source"]
    assert Path(report["output"]).parent == bundle


def test_quantize_dynamic_measures_on_image_like_inputs(dyn: Path, tmp_path: Path) -> None:
    from edgekit.tools.quantize import quantize_dynamic

    report = quantize_dynamic(dyn, tmp_path / "q.onnx")
    assert "synthetic image-like" in report.inputs_source and "1x3x224x224" in report.inputs_source
    assert report.heldout_inputs == 8 and report.inputs_source in report.summary()


def test_image_like_feeds_resemble_images() -> None:
    from edgekit.tensors import TensorSpec
    from edgekit.tools.verify import image_like_feeds

    spec = TensorSpec("x", (None, 3, None, None), np.dtype("float32"))
    feeds, what = image_like_feeds([spec], 3)
    again, _ = image_like_feeds([spec], 3)
    x = feeds[0]["x"]
    assert x.shape == (1, 3, 224, 224) and 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
    assert float(np.abs(np.diff(x, axis=3)).mean()) < 0.1  # smooth, not per-pixel noise
    assert feeds[1]["x"].min() < 0 and feeds[2]["x"].max() > 1.0  # [-1, 1], ImageNet mean/std
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(feeds, again))
    assert "[0, 1], [-1, 1], ImageNet mean/std in turn" in what


# -- item 8: run's messages ------------------------------------------------------------------------

def test_run_on_a_folder_that_is_not_a_bundle(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "frames"
    plain.mkdir()
    np.save(plain / "frame.npy", np.zeros((1, 3, 96, 96), np.float32))
    code, out, err = _run(["run", str(plain), "--input", str(plain / "frame.npy")], capfd)
    assert code == USAGE, err
    assert "not a bundle" in err and "no edgekit.toml" in err and "edgekit bundle create" in err, err
    assert "as an image" not in err

    shutil.copy(sample_model("onnx"), plain / "model.onnx")
    code, out, err = _run(["run", str(plain), "--input", str(plain / "frame.npy")], capfd)
    assert code == USAGE and f"edgekit run {plain / 'model.onnx'}" in err, err


def test_run_bundle_on_a_missing_or_broken_image(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    code, out, err = _run(["bundle", "create", str(sample_model("onnx")), "--preset", "classifier", "-o", str(bundle)],
                          capfd)
    assert code == OK, out + err
    missing = tmp_path / "nope.jpg"
    code, out, err = _run(["run", str(bundle), "--input", str(missing)], capfd)
    assert code == USAGE and f"--input {missing}: no such file" in err, err
    assert "WARN" not in out + err and "imread" not in out + err  # OpenCV's own log line stays out

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    code, out, err = _run(["run", str(bundle), "--input", str(broken)], capfd)
    assert code == USAGE and "cannot read it as an image" in err, err
    assert "WARN" not in out + err and "ERROR:" not in out + err

    arrays = tmp_path / "frame.npy"
    np.save(arrays, np.zeros((1, 3, 96, 96), np.float32))
    code, out, err = _run(["run", str(bundle), "--input", str(arrays)], capfd)
    assert code == USAGE and "give the model file: `edgekit run" in err, err


def test_run_output_that_cannot_be_written_is_a_usage_error(dyn: Path, tmp_path: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    """Was a FileNotFoundError / cv2.error traceback after the run."""
    import cv2

    from edgekit.tools.verify import synthetic_images

    bundle = tmp_path / "bundle"
    assert _run(["bundle", "create", str(sample_model("onnx")), "--preset", "classifier", "-o", str(bundle)],
                capfd)[0] == OK
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), synthetic_images(1, 96, 96)[0])
    for target, argv in [(bundle, ["--input", str(photo), "--output", str(tmp_path / "out.foo")]),
                         (bundle, ["--input", str(photo), "--output", str(tmp_path / "no" / "out.png")]),
                         (dyn, ["--shape", "x=1x3x8x8", "--output", str(tmp_path / "no" / "out.npz")])]:
        code, out, err = _run(["run", str(target), *argv], capfd)
        assert code == USAGE and "--output" in err and "WARN" not in err, err
    code, out, err = _run(["run", str(dyn), "--shape", "x=1x3x8x8", "--output", str(tmp_path / "y.npz")], capfd)
    assert code == OK and np.load(tmp_path / "y.npz")["y"].shape == (1, 1, 8, 8), err
