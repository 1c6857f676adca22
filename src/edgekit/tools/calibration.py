"""Calibration and evaluation inputs for a model: a folder of images or ``.npy``/``.npz`` files.

Images are read with OpenCV and turned into the model's input: resized to its height and
width (``size`` for dynamic ones), converted to RGB unless ``bgr``, scaled and normalised as
``(pixel * scale - mean) / std`` per channel, laid out NCHW or NHWC (from the input's shape,
or ``layout``) with a batch dimension of 1. A ``.npy`` file holds one input's array (with or
without the batch dimension); a ``.npz`` file holds arrays by input name, for multi-input models.

Example::

    spec = input_specs("det.onnx")[0]
    feeds = load_calibration("images/", input_specs("det.onnx"), size=(640, 640),
                             mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    feeds[0]["x"].shape          # (1, 3, 640, 640)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError, InvalidOptionError, ModelNotFoundError
from edgekit.tensors import TensorSpec

__all__ = ["IMAGE_SUFFIXES", "Preprocess", "input_specs", "load_calibration", "preprocess_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
Feeds = dict[str, np.ndarray]


class Preprocess:
    """How an image becomes an input tensor (see the module docstring)."""

    def __init__(self, *, size: tuple[int, int] | None = None, layout: str | None = None, bgr: bool = False,
                 scale: float = 1 / 255, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,)) -> None:
        if layout not in (None, "NCHW", "NHWC"):
            raise InvalidOptionError(f"layout must be NCHW or NHWC, got {layout!r}.")
        if any(s == 0 for s in std):
            raise InvalidOptionError(f"std must not contain 0, got {list(std)}.")
        self.size, self.layout, self.bgr = size, layout, bgr
        self.scale, self.mean, self.std = scale, np.asarray(mean, np.float32), np.asarray(std, np.float32)


def input_specs(model: str | os.PathLike[str]) -> list[TensorSpec]:
    """The model's inputs as its file declares them (ONNX, TFLite)."""
    from edgekit.models.formats import open_model
    from edgekit.models.model_io import model_io

    io = model_io(open_model(model))
    if io is None:
        raise InvalidOptionError(f"{model}: calibration inputs are built for ONNX and TFLite models.")
    return io[0]


def _layout(spec: TensorSpec, pre: Preprocess) -> str:
    if pre.layout:
        return pre.layout
    if spec.layout:
        return spec.layout
    shape = spec.shape
    if len(shape) == 4 and shape[1] in (1, 3, 4):
        return "NCHW"
    if len(shape) == 4 and shape[3] in (1, 3, 4):
        return "NHWC"
    return "NCHW"


def preprocess_image(image: np.ndarray, spec: TensorSpec, pre: Preprocess | None = None) -> np.ndarray:
    """An OpenCV (BGR, HxWxC uint8) image as a batch-1 tensor for ``spec``."""
    import cv2

    pre = pre or Preprocess()
    if len(spec.shape) != 4:
        raise InputError(f"input {spec.name!r} has shape {spec.shape}: images feed 4-D inputs only. "
                         "Give .npy files of that shape instead.")
    layout = _layout(spec, pre)
    h, w, c = (spec.shape[2], spec.shape[3], spec.shape[1]) if layout == "NCHW" else spec.shape[1:4]
    if pre.size:
        h, w = pre.size
    if not isinstance(h, int) or not isinstance(w, int) or h < 1 or w < 1:
        raise InputError(f"input {spec.name!r} has a dynamic height/width {spec.shape}: say the size to resize the "
                         f"images to (quantize: --size HxW; convert: --shape {spec.name}=1x3xHxW; Python: "
                         "Preprocess(size=(H, W))).")
    channels = c if isinstance(c, int) and c > 0 else 3
    if image.ndim == 2:
        image = image[:, :, None]
    if channels == 1 and image.shape[2] != 1:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    elif channels == 3:
        if image.shape[2] == 1:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if not pre.bgr:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    x = (resized.astype(np.float32) * np.float32(pre.scale) - pre.mean) / pre.std
    x = x[None]
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x.astype(spec.dtype if spec.dtype.kind == "f" else np.float32))


def _check(spec: TensorSpec, arr: np.ndarray, source: str) -> np.ndarray:
    if arr.ndim == len(spec.shape) - 1:
        arr = arr[None]
    if not spec.accepts(tuple(arr.shape)):
        raise InputError(f"{source}: calibration array for input {spec.name!r} has shape {tuple(arr.shape)}, "
                         f"expected {tuple(spec.shape)} (None: any size). Save arrays of the input's shape, "
                         "with or without the batch dimension.")
    if arr.dtype != spec.dtype:
        if arr.dtype.kind == spec.dtype.kind == "f" or np.can_cast(arr.dtype, spec.dtype, "safe"):
            arr = arr.astype(spec.dtype)
        else:
            raise InputError(f"{source}: calibration array for input {spec.name!r} is {arr.dtype}, expected "
                             f"{spec.dtype}. Save it as {spec.dtype}.")
    return np.ascontiguousarray(arr)


def _from_file(path: Path, specs: Sequence[TensorSpec], pre: Preprocess) -> Feeds:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if len(specs) != 1:
            raise InputError(f"{path}: a .npy file feeds one input; the model has {len(specs)} "
                             f"({', '.join(s.name for s in specs)}). Use .npz files with one array per input name.")
        return {specs[0].name: _check(specs[0], np.load(path, allow_pickle=False), str(path))}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            missing = [s.name for s in specs if s.name not in z.files]
            if missing:
                raise InputError(f"{path}: no array for input(s) {missing}; it has {z.files}. Name the arrays "
                                 "after the model's inputs.")
            return {s.name: _check(s, z[s.name], str(path)) for s in specs}
    import cv2

    if len(specs) != 1:
        raise InputError(f"{path}: an image feeds one input; the model has {len(specs)}. Use .npz files.")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path}: OpenCV cannot read this image. Re-save it as PNG or JPEG.")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    return {specs[0].name: preprocess_image(image, specs[0], pre)}


def load_calibration(source: str | os.PathLike[str] | Iterable[Any], specs: Sequence[TensorSpec],
                     pre: Preprocess | None = None, *, limit: int | None = None) -> list[Feeds]:
    """Feeds (``{input name: array}``), one per file of ``source`` in name order, or per item of a list.

    ``source``: a folder (images, ``.npy``, ``.npz``), one such file, or a sequence of arrays
    (single-input models) or dicts. Raises InputError (wrong shape or dtype) or
    InvalidOptionError (empty folder).
    """
    pre = pre or Preprocess()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise ModelNotFoundError(f"calibration data not found: {path}. Pass a folder of images or .npy files.")
        files = [path] if path.is_file() else sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (*IMAGE_SUFFIXES, ".npy", ".npz"))
        if not files:
            raise InvalidOptionError(f"{path}: no calibration files in this folder (expected images "
                                     f"{', '.join(IMAGE_SUFFIXES)} or .npy/.npz arrays). Add a few dozen "
                                     "representative inputs.")
        return [_from_file(p, specs, pre) for p in files[:limit]]
    out: list[Feeds] = []
    for i, item in enumerate(source):
        if limit is not None and i >= limit:
            break
        if isinstance(item, Mapping):
            out.append({s.name: _check(s, np.asarray(item[s.name]), f"item {i}") for s in specs})
        elif len(specs) == 1:
            out.append({specs[0].name: _check(specs[0], np.asarray(item), f"item {i}")})
        else:
            raise InputError(f"item {i}: the model has {len(specs)} inputs; give dicts by input name.")
    if not out:
        raise InvalidOptionError("the calibration data is empty; give at least one input.")
    return out
