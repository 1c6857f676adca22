"""The apps in samples/ as a newcomer runs them (issue 14, item 12): no scikit-image (no extra installs it),
the next step when the models were not fetched yet, and no misleading figure when nothing is found.

Each sample runs as a script in its own process (``python samples/x.py``), with ``skimage`` made
unimportable by a shadow package first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def no_skimage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which ``import skimage`` fails, as after ``pip install 'edgekit[all]'``."""
    shadow = tmp_path_factory.mktemp("shadow") / "skimage"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('scikit-image is not installed (shadowed for the test)')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}


def _sample(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SAMPLES / script), *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=SAMPLES.parent)


@pytest.mark.parametrize("script", ["face_detect.py", "text_detect.py", "video_fps.py"])
def test_without_the_fetched_models_the_sample_says_to_fetch_them(script: str, tmp_path: Path,
                                                                  no_skimage: dict[str, str]) -> None:
    """Run before fetch_models.py, a sample printed a traceback that suggested `edgekit bundle create`."""
    missing = str(tmp_path / "bundles" / "blazeface")
    args = [missing] if script == "video_fps.py" else ["--bundle", missing]
    proc = _sample(script, *args, env=no_skimage)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "run `python samples/fetch_models.py` first" in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BlazeFace sample bundle, made as fetch_models.py makes it (the models come from the shared cache)."""
    from edgekit.pipeline.create import create_bundle
    from edgekit.testing.real_models import fetch

    out = tmp_path_factory.mktemp("bundles")
    for name in ("blazeface",):
        try:
            model = fetch(name)
        except Exception as exc:  # no network and no cached copy: say so
            pytest.skip(f"the {name} model could not be fetched: {exc}")
        create_bundle(model, name, out / name, force=True)
    return out


@pytest.mark.slow
def test_face_detect_finds_the_drawn_face_without_scikit_image(bundles: Path, no_skimage: dict[str, str]) -> None:
    proc = _sample("face_detect.py", "--bundle", str(bundles / "blazeface"), env=no_skimage)
    assert proc.returncode == 0, proc.stderr
    assert "1 face(s) in the 512x512 image" in proc.stdout, proc.stdout
    assert proc.stderr == "", proc.stderr


@pytest.mark.slow
def test_video_fps_synthetic_frames_hold_a_face(bundles: Path, no_skimage: dict[str, str]) -> None:
    """Without scikit-image the synthetic frames had no face: "0.00 results per frame". (They hold a page of
    text too, for the ppocr-det bundle, as before.)"""
    proc = _sample("video_fps.py", str(bundles / "blazeface"), "--frames", "5", "--warmup", "1", env=no_skimage)
    assert proc.returncode == 0, proc.stderr
    assert "(1.00 results per frame)" in proc.stdout, proc.stdout


@pytest.mark.slow
def test_video_fps_says_when_nothing_was_found(bundles: Path, tmp_path: Path, no_skimage: dict[str, str]) -> None:
    import cv2

    clip = tmp_path / "grey.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    if not writer.isOpened():
        pytest.skip("this OpenCV build writes no MJPG .avi")
    for _ in range(5):
        writer.write(np.full((240, 320, 3), 128, np.uint8))
    writer.release()
    proc = _sample("video_fps.py", str(bundles / "blazeface"), "--video", str(clip), "--frames", "4",
                   "--warmup", "1", env=no_skimage)
    assert proc.returncode == 0, proc.stderr
    assert "results per frame" not in proc.stdout and "no results in any frame" in proc.stdout, proc.stdout
