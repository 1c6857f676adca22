"""Bundle format: validation errors, safe archives, coordinate mapping, and each post-processing kind.

Models here are built by the tests themselves (tiny ONNX graphs); the real-model checks are in
test_pipeline.py.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.errors import BundleError, ConfigError
from edgekit.pipeline.archive import Limits, safe_extract, unpack_bundle
from edgekit.pipeline.config import Preprocess
from edgekit.pipeline.preprocess import plan_resize, preprocess
from edgekit.tensors import TensorSpec
from edgekit.testing.bundles import write_bundle
from edgekit.testing.onnx_models import save_onnx

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")


def _color_model(path: Path, head: str) -> Path:
    """[1, 3, 32, 32] -> 'classify': mean colour per channel * 10 ([1, 3]); 'segment': red-vs-green score map."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    if head == "classify":
        nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["flat"]),
                 helper.make_node("Mul", ["flat", "ten"], ["logits"])]
        inits = [numpy_helper.from_array(np.array(10.0, np.float32), "ten")]
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    else:  # channel 1 = R - G, channel 0 = G - R: argmax marks red pixels as class 1
        w = np.array([[-1, 1, 0], [1, -1, 0]], np.float32).reshape(2, 3, 1, 1)
        nodes = [helper.make_node("Conv", ["image", "w"], ["scores"])]
        inits = [numpy_helper.from_array(w, "w")]
        y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, 32, 32])
    return save_onnx(helper.make_graph(nodes, head, [x], [y], inits), path)


def _write_bundle(folder: Path, model: Path, post: dict[str, Any]) -> Path:
    """A bundle of a [1, 3, 32, 32] RGB model, letterboxed, pixels scaled to [0, 1]."""
    return write_bundle(folder, model, inputs=[{"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}],
                        preprocess={"color": "rgb", "resize": "letterbox", "mean": 0, "std": 255, "layout": "NCHW"},
                        postprocess=post)


@pytest.fixture()
def classifier(tmp_path: Path) -> Path:
    model = _color_model(tmp_path / "color.onnx", "classify")
    post = {"kind": "classification", "top_k": 2, "labels": ["red", "green", "blue"]}
    return _write_bundle(tmp_path / "cls", model, post)


def test_classification_top_k_with_labels(classifier: Path) -> None:
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:] = (200, 30, 10)  # BGR: mostly blue
    with edgekit.load_bundle(classifier, runtime="onnxruntime") as pipe:
        top = pipe.predict(frame)
    assert [c.label for c in top] == ["blue", "green"] and top[0].index == 2
    assert top[0].score > 0.9 and abs(sum(c.score for c in top) - 1) < 0.01


def test_segmentation_mask_is_in_frame_pixels(tmp_path: Path) -> None:
    model = _color_model(tmp_path / "seg.onnx", "segment")
    bundle = _write_bundle(tmp_path / "seg", model, {"kind": "segmentation", "labels": ["background", "red"]})
    frame = np.full((100, 200, 3), 128, np.uint8)  # wide: letterboxed top and bottom
    frame[30:70, 120:180] = (0, 0, 255)
    with edgekit.load_bundle(bundle, runtime="onnxruntime") as pipe:
        (seg,) = pipe.predict(frame)
    assert isinstance(seg, edgekit.SegmentationMask) and seg.mask.shape == (100, 200)
    truth = np.zeros((100, 200), bool)
    truth[30:70, 120:180] = True
    got = seg.mask == 1
    iou = (got & truth).sum() / (got | truth).sum()
    assert iou > 0.85, iou
    assert seg.as_dict()["pixels"]["red"] == seg.area(1)


# --- validation: each broken edgekit.toml gives a BundleError naming the key, what was expected, what was got ---

BROKEN = {
    "bad syntax": (("[preprocess", ""), "not valid TOML"),
    "unknown key": (('color = "rgb"', 'colour = "rgb"'), "unknown key(s) ['colour']"),
    "wrong type": (("std = 255", 'std = "255"'), "key 'std' expected a number or a list"),
    "bad choice": (('resize = "letterbox"', 'resize = "squash"'), "expected one of ['stretch', 'letterbox'"),
    "zero std": (("std = 255", "std = 0"), "non-zero"),
    "format": (("format = 1", "format = 2"), "key 'format' expected 1, got 2"),
    "missing model": (('model = "color.onnx"', 'model = "nope.onnx"'), "names 'nope.onnx', which is not in"),
    "model outside": (('model = "color.onnx"', 'model = "../color.onnx"'), "points outside"),
    "absolute model": (('model = "color.onnx"', 'model = "/etc/passwd"'), "points outside"),
    "no inputs": (("[[inputs]]\nname = \"image\"\nshape = [1, 3, 32, 32]\ndtype = \"float32\"\n", ""),
                  "missing key 'inputs'"),
    "wrong input shape": (("shape = [1, 3, 32, 32]", "shape = [1, 32, 32, 3]"),
                          "declared as image: float32[1, 32, 32, 3], but color.onnx on onnxruntime expects"),
    "wrong input name": (('name = "image"', 'name = "input"'), "declares ['input: float32[1, 3, 32, 32]']"),
    "wrong output": (('kind = "classification"', 'kind = "classification"\noutput = "probs"'),
                     "names output 'probs', but the model's outputs are ['logits']"),
    "wrong dtype": (('layout = "NCHW"', 'layout = "NCHW"\ndtype = "uint8"'), "expected the model input's float32"),
    "wrong layout": (('layout = "NCHW"', 'layout = "NHWC"'), "gives 3 channel(s), but input image: float32[1, 3, 32, 32] has 32 there"),
    "ssd without anchors": (('kind = "classification"\ntop_k = 2', 'kind = "ssd"\nboxes = "a"\nscores = "b"'),
                            "needs key 'anchors'"),
    "missing labels file": (('labels = ["red", "green", "blue"]', 'labels = "labels.txt"'), "cannot be read"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validation_errors(case: str, classifier: Path) -> None:
    (old, new), message = BROKEN[case]
    toml = classifier / "edgekit.toml"
    text = toml.read_text()
    assert old in text, f"test setup: {old!r} not in edgekit.toml"
    toml.write_text(text.replace(old, new, 1))
    with pytest.raises(BundleError) as info:
        edgekit.load_bundle(classifier, runtime="onnxruntime")
    assert message in str(info.value)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)
    if case not in ("bad syntax",):
        assert "edgekit.toml" in str(info.value)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no edgekit.toml in this folder"):
        edgekit.load_bundle(tmp_path)
    with pytest.raises(BundleError, match="no such bundle"):
        edgekit.load_bundle(tmp_path / "missing")


def test_ssd_anchor_count_must_match_the_model(tmp_path: Path) -> None:
    from edgekit.pipeline.ssd import ssd_anchors

    anchors = ssd_anchors((128, 128), strides=[8, 16, 16, 16])
    assert anchors.shape == (896, 4)  # BlazeFace short-range: 16*16*2 + 8*8*6
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16, 1, 1]) and np.allclose(anchors[-1], [7.5 / 8, 7.5 / 8, 1, 1])


# --- archives: nothing is written outside the target ---

def _zip_with(path: Path, name: str, data: bytes = b"x", *, mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.create_system = 3
            info.external_attr = mode << 16
        z.writestr(info, data)
    return path


@pytest.mark.parametrize(("member", "message"), [
    ("/tmp/evil.txt", "absolute path"),
    ("../evil.txt", "contains '..'"),
    ("bundle/../../evil.txt", "contains '..'"),
    ("..\\evil.txt", "contains '..'"),
    ("C:\\evil.txt", "absolute path"),
])
def test_archive_path_traversal_refused(tmp_path: Path, member: str, message: str) -> None:
    target = tmp_path / "out" / "bundle"
    with pytest.raises(BundleError, match=message.replace("(", r"\(")):
        safe_extract(_zip_with(tmp_path / "evil.zip", member), target)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert not target.exists() or not any(target.rglob("*"))


def test_archive_symlink_refused(tmp_path: Path) -> None:
    archive = _zip_with(tmp_path / "link.zip", "model.onnx", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)
    with pytest.raises(BundleError, match="is a symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_archive_bombs_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(8 << 20))
    with pytest.raises(BundleError, match="likely zip bomb"):
        safe_extract(bomb, tmp_path / "a")

    class Small(Limits):
        max_total_bytes = 1000

    with pytest.raises(BundleError, match="expected at most 1000"):
        safe_extract(_zip_with(tmp_path / "big.zip", "big.bin", os.urandom(2000)), tmp_path / "b", Small)


def test_zip_bundle_round_trip(classifier: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "cls.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in classifier.iterdir():
            z.write(f, f"cls/{f.name}")  # one top-level folder is accepted
    root = unpack_bundle(archive)
    assert root.parent.parent == tmp_path / "cache" / "bundles" and (root / "edgekit.toml").is_file()
    assert unpack_bundle(archive) == root  # unpacked once, reused
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[:] = (0, 255, 0)
    with edgekit.load_bundle(archive, runtime="onnxruntime") as pipe:
        assert pipe.predict(frame)[0].label == "green"


# --- coordinate mapping ---

@pytest.mark.parametrize("resize", ["letterbox", "crop", "stretch", "multiple"])
@pytest.mark.parametrize("frame_wh", [(640, 480), (480, 640), (333, 91), (128, 128)])
def test_transform_round_trips(resize: str, frame_wh: tuple[int, int]) -> None:
    pre = Preprocess(resize=resize, size=(128, 96), limit_side=160)
    _, _, tf = plan_resize(pre, frame_wh, (128, 96))
    pts = np.random.default_rng(0).uniform(0, 1, (50, 2)) * frame_wh
    assert np.allclose(tf.to_frame(tf.to_model(pts), clip=False), pts, atol=1e-9)
    if resize == "letterbox":  # the whole frame lands inside the model input, centred
        corners = tf.to_model(np.array([[0.0, 0.0], frame_wh]))
        assert corners.min() >= -1e-9 and corners[1, 0] <= 128 + 1e-9 and corners[1, 1] <= 96 + 1e-9
        assert abs(corners[0, 0] - (128 - corners[1, 0])) <= 1 and abs(corners[0, 1] - (96 - corners[1, 1])) <= 1


def test_letterbox_puts_a_pixel_where_the_transform_says() -> None:
    frame = np.zeros((300, 500, 3), np.uint8)
    cv2.circle(frame, (400, 70), 12, (255, 255, 255), -1)
    pre = Preprocess(color="gray", resize="letterbox", size=(100, 100), layout="NHWC")
    tensor, tf = preprocess(frame, pre, TensorSpec("x", (1, 100, 100, 1), np.dtype("float32")))
    img = tensor[0, :, :, 0]
    ys, xs = np.nonzero(img > 127)
    centre = np.array([[xs.mean() + 0.5, ys.mean() + 0.5]])  # pixel centre -> continuous coordinates
    assert np.abs(tf.to_frame(centre) - [[400.5, 70.5]]).max() < 2.5
    assert img[:5].max() == 0 and img[-5:].max() == 0  # padding above and below


def test_quantized_input_uses_scale_and_zero_point() -> None:
    frame = np.array([[[0, 0, 0], [128, 128, 128], [255, 255, 255]]], np.uint8)
    pre = Preprocess(resize="none", mean=(127.5,), std=(127.5,), dtype="int8")
    spec = TensorSpec("x", (1, 1, 3, 3), np.dtype("int8"), quantization=(1 / 128, 0))
    tensor, _ = preprocess(frame, pre, spec)
    assert tensor.dtype == np.int8 and tensor[0, 0, :, 0].tolist() == [-128, 1, 127]


def test_cli_bundle_create_check_presets(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edgekit.cli import cli

    model = _color_model(tmp_path / "color.onnx", "classify")
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    out = tmp_path / "bundle"
    runner = CliRunner()
    res = runner.invoke(cli, ["bundle", "create", str(model), "--preset", "classifier", "--labels", str(labels),
                              "--output", str(out)])
    assert res.exit_code == 0, res.output
    text = (out / "edgekit.toml").read_text()
    assert 'layout = "NCHW"' in text and 'labels = "labels.txt"' in text and "shape = [1, 3, 32, 32]" in text
    res = runner.invoke(cli, ["bundle", "check", str(out), "--format", "csv"])
    assert res.exit_code == 0 and "classification (3 labels)" in res.output, res.output
    res = runner.invoke(cli, ["bundle", "presets", "--format", "csv"])
    assert {"blazeface", "ppocr-det", "classifier"} <= {ln.split(",")[0] for ln in res.output.splitlines()}
    res = runner.invoke(cli, ["bundle", "create", str(model), "--preset", "classifier", "--output", str(out)])
    assert res.exit_code != 0 and "already exists" in str(res.exception)
    frame = np.zeros((10, 10, 3), np.uint8)
    frame[..., 2] = 255
    with edgekit.load_bundle(out) as pipe:
        assert pipe.predict(frame[2:8, 1:9])[0].label == "red"  # a non-contiguous slice is a valid frame
