"""Real models from pinned PyPI wheels give the same outputs on every runtime that reads them.

BlazeFace (.tflite) is compared with LiteRT, PP-OCR det/cls (.onnx) with ONNX Runtime;
OpenVINO runs in f32. Inputs are real-looking images drawn with OpenCV, fixed seed.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.testing.real_models import fetch

pytestmark = pytest.mark.slow

#: model -> (reference runtime, other runtimes, atol relative to the reference's max |value|)
MATRIX = {
    "blazeface": ("litert", ["openvino", "opencv", "mnn"], 1e-3),
    "ppocr-det": ("onnxruntime", ["openvino", "opencv", "mnn"], 1e-3),
    "ppocr-cls": ("onnxruntime", ["openvino", "opencv", "mnn"], 1e-3),
}


def _image(h: int, w: int) -> np.ndarray:
    import cv2

    img = np.full((h, w, 3), 235, np.uint8)
    cv2.putText(img, "edgekit 2026", (8, h // 2), cv2.FONT_HERSHEY_SIMPLEX, w / 300, (20, 20, 20), 2)
    cv2.circle(img, (w * 3 // 4, h // 3), h // 6, (40, 90, 200), -1)
    return img


def _inputs(name: str) -> np.ndarray:
    if name == "blazeface":
        return (_image(128, 128)[None].astype(np.float32) / 127.5 - 1.0).astype(np.float32)
    h, w = (320, 320) if name == "ppocr-det" else (48, 192)
    x = (_image(h, w).astype(np.float32) / 255.0 - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]).astype(np.float32)


@pytest.fixture(scope="module")
def reference_outputs() -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for name, (ref, _, _) in MATRIX.items():
        with edgekit.load(fetch(name), runtime=ref) as m:
            out[name] = m(_inputs(name))
    return out


@pytest.mark.parametrize(("name", "runtime"), [(n, r) for n, (_, rts, _) in MATRIX.items() for r in rts])
def test_matches_reference_runtime(name: str, runtime: str, reference_outputs) -> None:
    ref = reference_outputs[name]
    with edgekit.load(fetch(name), runtime=runtime, precision="fp32") as m:
        out = m(_inputs(name))
    assert list(out) == list(ref), f"{runtime}: output names {list(out)}, reference {list(ref)}"
    rel_atol = MATRIX[name][2]
    for key in ref:
        assert out[key].shape == ref[key].shape, f"{runtime} {key}: shape {out[key].shape} vs {ref[key].shape}"
        scale = max(1.0, float(np.abs(ref[key]).max()))
        err = float(np.abs(out[key] - ref[key]).max())
        assert err <= rel_atol * scale, f"{runtime} {name} {key}: max abs error {err:.3g} > {rel_atol * scale:.3g}"


def test_blazeface_reference_is_sane(reference_outputs) -> None:
    out = reference_outputs["blazeface"]
    shapes = sorted(v.shape for v in out.values())
    assert shapes == [(1, 896, 1), (1, 896, 16)]
