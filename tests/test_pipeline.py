"""Bundles with real models: BlazeFace on a real photograph, PP-OCRv4 det on drawn text, on every runtime.

BlazeFace runs on scikit-image's ``data.astronaut()`` (512x512, one face: eyes at about
(205, 100) and (249, 108), face box about x 179-272, y 81-174 — checked by eye on the drawn
result). Every runtime that reads the model must give the same detections within 1 px.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.pipeline.create import create_bundle
from edgekit.registry import get_runtime
from edgekit.testing.real_models import fetch

cv2 = pytest.importorskip("cv2")
pytestmark = pytest.mark.slow

FACE_RUNTIMES = ["litert", "openvino", "opencv", "mnn"]
TEXT_RUNTIMES = ["onnxruntime", "openvino", "opencv", "mnn"]
TEXTS = [("EDGEKIT 2026", (40, 100), 1.5), ("hello world", (300, 260), 1.0), ("Text detection", (60, 400), 1.2)]


def _installed(name: str) -> bool:
    return get_runtime(name).is_installed()


def _runtimes(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.skipif(not _installed(n), reason=f"{n} not installed")) for n in names]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def face_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_bundle(fetch("blazeface"), "blazeface", tmp_path_factory.mktemp("b") / "blazeface")


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_bundle(fetch("ppocr-det"), "ppocr-det", tmp_path_factory.mktemp("b") / "ppocr-det.zip")


@pytest.fixture(scope="module")
def face_reference(face_bundle: Path, astronaut: np.ndarray) -> list[edgekit.Detection]:
    with edgekit.load_bundle(face_bundle, runtime="litert") as pipe:
        return pipe.predict(astronaut)


def _same(a: list[edgekit.Detection], b: list[edgekit.Detection], px: float = 1.0) -> None:
    assert len(a) == len(b), f"{len(a)} vs {len(b)} detections"
    for da, db in zip(a, b):
        assert np.abs(np.subtract(da.box, db.box)).max() <= px, (da.box, db.box)
        assert np.abs(np.subtract(da.keypoints, db.keypoints)).max() <= px
        assert abs(da.score - db.score) <= 2e-3 and da.label == db.label


def test_blazeface_finds_the_astronauts_face(face_reference: list[edgekit.Detection]) -> None:
    assert len(face_reference) == 1, face_reference
    face = face_reference[0]
    x0, y0, x1, y1 = face.box
    assert face.label == "face" and face.score > 0.8
    assert 165 <= x0 <= 195 and 255 <= x1 <= 285 and 65 <= y0 <= 95 and 160 <= y1 <= 190, face.box
    assert 70 <= face.width <= 120 and 70 <= face.height <= 120
    (rex, rey), (lex, ley) = face.keypoints[:2]  # the subject's right eye is on the image's left
    assert abs(rex - 205) < 8 and abs(rey - 100) < 8 and abs(lex - 249) < 8 and abs(ley - 108) < 8, face.keypoints


@pytest.mark.parametrize("runtime", _runtimes(FACE_RUNTIMES[1:]))
def test_blazeface_same_on_every_runtime(runtime: str, face_bundle: Path, astronaut: np.ndarray,
                                         face_reference: list[edgekit.Detection]) -> None:
    with edgekit.load_bundle(face_bundle, runtime=runtime, precision="fp32") as pipe:
        assert pipe.placement.runtime == runtime
        _same(pipe.predict(astronaut), face_reference)


def test_letterbox_maps_detections_back_to_the_frame(face_bundle: Path, astronaut: np.ndarray,
                                                      face_reference: list[edgekit.Detection]) -> None:
    """Non-square crops keep the longer side at 512, so the model sees the face at the same scale,
    shifted by the letterbox padding; mapped back, the box must move by exactly the crop offset."""
    crops = {"tall (padded left/right)": (slice(0, 512), slice(60, 400), (60, 0)),
             "wide (padded top/bottom)": (slice(40, 360), slice(0, 512), (0, 40))}
    ref = face_reference[0]
    with edgekit.load_bundle(face_bundle, runtime="litert") as pipe:
        for name, (rows, cols, (dx, dy)) in crops.items():
            (face,) = pipe.predict(np.ascontiguousarray(astronaut[rows, cols]))
            moved = np.subtract(ref.box, [dx, dy, dx, dy])
            assert np.abs(np.subtract(face.box, moved)).max() < 3, (name, face.box, moved)
            # keypoints move too; the model places them less steadily than boxes (about 2 input pixels here)
            assert np.abs(np.subtract(face.keypoints, np.subtract(ref.keypoints, [dx, dy]))).max() < 12, name


def _text_truth() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    img = np.full((480, 640, 3), 245, np.uint8)
    truth = []
    for text, org, scale in TEXTS:
        alone = np.zeros((480, 640), np.uint8)
        cv2.putText(alone, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2)
        ys, xs = np.nonzero(alone > 127)
        truth.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 2)
    return img, truth


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


@pytest.fixture(scope="module")
def text_reference(text_bundle: Path) -> list[edgekit.TextBox]:
    img, _ = _text_truth()
    with edgekit.load_bundle(text_bundle, runtime="onnxruntime") as pipe:
        return pipe.predict(img)


def test_ppocr_det_finds_drawn_text(text_reference: list[edgekit.TextBox]) -> None:
    _, truth = _text_truth()
    assert len(text_reference) == len(truth), [b.box for b in text_reference]
    for t in truth:
        best = max(text_reference, key=lambda b: _iou(b.box, t))
        # measured: IoU with the ink's bounding box 0.72-0.90, every edge within 4 px of it
        assert _iou(best.box, t) > 0.6, (best.box, t)
        assert np.abs(np.subtract(best.box, t)).max() <= 6 and best.score > 0.6, (best.box, t)


@pytest.mark.parametrize("runtime", _runtimes(TEXT_RUNTIMES[1:]))
def test_ppocr_det_same_on_every_runtime(runtime: str, text_bundle: Path,
                                         text_reference: list[edgekit.TextBox]) -> None:
    img, _ = _text_truth()
    with edgekit.load_bundle(text_bundle, runtime=runtime, precision="fp32") as pipe:
        got = pipe.predict(img)
    assert len(got) == len(text_reference)
    for a, b in zip(got, text_reference):
        assert np.abs(np.subtract(a.points, b.points)).max() <= 1.5 and abs(a.score - b.score) < 0.01


def test_pipeline_is_thread_safe(face_bundle: Path, astronaut: np.ndarray,
                                 face_reference: list[edgekit.Detection]) -> None:
    frames = [astronaut, cv2.flip(astronaut, 1), cv2.resize(astronaut, (320, 240))]
    with edgekit.load_bundle(face_bundle, runtime="litert") as pipe:
        expected = [pipe.predict(f) for f in frames]
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                for i in range(30):
                    j = (i + k) % len(frames)
                    _same(pipe.predict(frames[j]), expected[j], px=1e-3)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    _same(expected[0], face_reference)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_memory_stays_flat_over_2000_predictions(face_bundle: Path, astronaut: np.ndarray) -> None:
    """Bound: RSS grows by less than 5 MB over 2,000 predictions after a 200-prediction warm-up (measured: 0.16 MB)."""
    with edgekit.load_bundle(face_bundle, runtime="litert", threads=1) as pipe:
        for _ in range(200):
            pipe.predict(astronaut)
        before = _rss_mb()
        for _ in range(2000):
            pipe.predict(astronaut)
        growth = _rss_mb() - before
    assert growth < 5, f"RSS grew {growth:.1f} MB over 2,000 predictions"


def test_cli_run_bundle_and_plain_model(face_bundle: Path, astronaut: np.ndarray, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from edgekit.cli import cli

    photo, out = tmp_path / "photo.jpg", tmp_path / "annotated.jpg"
    cv2.imwrite(str(photo), astronaut)
    res = CliRunner().invoke(cli, ["run", str(face_bundle), "--input", str(photo), "--output", str(out),
                                   "--runtime", "litert", "--format", "json"])
    assert res.exit_code == 0, res.output
    (face,) = json.loads(res.output)
    assert face["kind"] == "detection" and face["label"] == "face" and 165 <= face["box"][0] <= 195
    drawn = cv2.imread(str(out))
    assert drawn.shape == astronaut.shape and not np.array_equal(drawn, astronaut)

    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 128, 128, 3), np.float32))
    res = CliRunner().invoke(cli, ["run", str(fetch("blazeface")), "--input", str(x), "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "output,dtype,shape,min,max,mean"
    assert lines[1].startswith("regressors,float32,") and lines[2].startswith("classificators,float32,")
