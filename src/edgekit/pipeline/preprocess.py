"""Frame -> input tensor with OpenCV and numpy, and the mapping back to frame coordinates.

Coordinates are continuous pixel coordinates (the top-left corner of the top-left pixel is
(0, 0), the bottom-right corner of a W x H image is (W, H)), so a resize by ``s`` maps
``x -> x * s`` exactly. :class:`Transform` holds ``model = frame * scale + offset``.

Example::

    pre = Preprocess(color="rgb", resize="letterbox", size=(128, 128), mean=(127.5,), std=(127.5,))
    tensor, tf = preprocess(frame, pre, spec)      # tensor float32 [1, 128, 128, 3] in [-1, 1]
    tf.to_frame(np.array([[64.0, 64.0]]))          # the model's centre, in frame pixels
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import InputError
from edgekit.pipeline.config import Preprocess
from edgekit.tensors import TensorSpec

__all__ = ["Transform", "check_frame", "model_size", "plan_resize", "preprocess", "read_image"]


@dataclass(frozen=True)
class Transform:
    """``model_xy = frame_xy * (sx, sy) + (tx, ty)``; sizes are (width, height)."""

    sx: float
    sy: float
    tx: float
    ty: float
    frame_size: tuple[int, int]
    model_size: tuple[int, int]

    def to_frame(self, xy: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Model-input pixel coordinates ``[..., 2]`` to frame pixels (clipped to the frame by default)."""
        xy = np.asarray(xy, np.float64)
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] - self.tx) / self.sx
        out[..., 1] = (xy[..., 1] - self.ty) / self.sy
        if clip:
            np.clip(out[..., 0], 0, self.frame_size[0], out=out[..., 0])
            np.clip(out[..., 1], 0, self.frame_size[1], out=out[..., 1])
        return out

    def to_model(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates ``[..., 2]`` to model-input pixels."""
        xy = np.asarray(xy, np.float64)
        out = np.empty_like(xy)
        out[..., 0] = xy[..., 0] * self.sx + self.tx
        out[..., 1] = xy[..., 1] * self.sy + self.ty
        return out


def read_image(path: str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """The BGR uint8 frame in the image file ``path``; InputError (naming ``what``) when it is missing or unreadable.

    Existence is checked first, and OpenCV's own log lines (``[ WARN:0@0.02] ... imread_(...)``)
    are silenced while it reads: the error says what happened, once.

    >>> read_image("nope.jpg", "--input")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    edgekit.errors.InputError: --input nope.jpg: no such file...
    """
    import cv2

    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} {path}: no such file. Expected an image file (jpg, png, bmp, ...); check the path.")
    if not p.is_file():
        raise InputError(f"{what} {path}: a folder, not an image file; give one image (jpg, png, bmp, ...).")
    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        frame = cv2.imread(str(p), cv2.IMREAD_COLOR)
    finally:
        log.setLogLevel(level)
    if frame is None:
        raise InputError(f"{what} {path}: OpenCV cannot read it as an image; expected a jpg, png, bmp or other format "
                         "cv2.imread reads.")
    return np.asarray(frame)


def check_frame(frame: object) -> np.ndarray:
    """A BGR ``uint8`` image ``[H, W, 3]`` (gray ``[H, W]``/``[H, W, 1]`` and BGRA are converted)."""
    import cv2

    if not isinstance(frame, np.ndarray):
        raise InputError(f"expected a frame as a numpy array (BGR uint8 [H, W, 3], as cv2.imread gives), got "
                         f"{type(frame).__name__}. Read images with cv2.imread or decode them to an array first.")
    if frame.dtype != np.uint8:
        raise InputError(f"expected a uint8 frame, got dtype {frame.dtype}. Convert it, e.g. "
                         "np.clip(frame * 255, 0, 255).astype(np.uint8) for a float image in [0, 1].")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"expected a BGR frame [H, W, 3] (or gray [H, W], BGRA [H, W, 4]), got shape {frame.shape}.")
    return np.ascontiguousarray(frame)  # a slice of a larger image is fine too


def model_size(pre: Preprocess, spec: TensorSpec) -> tuple[int, int] | None:
    """The (width, height) the model takes: ``size`` from the bundle, else the input's static dims."""
    if pre.size is not None:
        return pre.size
    if len(spec.shape) != 4:
        return None
    h, w = (spec.shape[1], spec.shape[2]) if pre.layout == "NHWC" else (spec.shape[2], spec.shape[3])
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return (w, h)
    return None


def plan_resize(pre: Preprocess, frame_wh: tuple[int, int], target: tuple[int, int] | None) -> tuple[
        tuple[int, int], tuple[int, int], Transform]:
    """(resized size, model size, transform) for a frame of ``frame_wh``; all sizes (width, height)."""
    w, h = frame_wh
    if pre.resize == "none":
        size = target or (w, h)
        if size != (w, h):
            raise InputError(f"bundle resize 'none' needs frames of exactly {size[0]}x{size[1]}, got {w}x{h}. "
                             "Resize frames yourself, or set resize to 'stretch' or 'letterbox' in edgekit.toml.")
        return size, size, Transform(1.0, 1.0, 0.0, 0.0, (w, h), size)
    if pre.resize == "multiple":
        side = max(w, h) if pre.limit_type == "max" else min(w, h)
        ratio = pre.limit_side / side if (side > pre.limit_side if pre.limit_type == "max" else side < pre.limit_side) \
            else 1.0
        m = pre.multiple
        rw, rh = max(int(round(w * ratio / m)) * m, m), max(int(round(h * ratio / m)) * m, m)
        return (rw, rh), (rw, rh), Transform(rw / w, rh / h, 0.0, 0.0, (w, h), (rw, rh))
    assert target is not None  # checked when the pipeline is built
    tw, th = target
    if pre.resize == "stretch":
        return (tw, th), (tw, th), Transform(tw / w, th / h, 0.0, 0.0, (w, h), (tw, th))
    s = min(tw / w, th / h) if pre.resize == "letterbox" else max(tw / w, th / h)
    rw, rh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    left, top = (tw - rw) // 2, (th - rh) // 2  # letterbox: padding; crop: negative = cut off
    return (rw, rh), (tw, th), Transform(rw / w, rh / h, float(left), float(top), (w, h), (tw, th))


_INTERP = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3}  # cv2.INTER_* values


def preprocess(frame: np.ndarray, pre: Preprocess, spec: TensorSpec,
               target: tuple[int, int] | None = None) -> tuple[np.ndarray, Transform]:
    """The model input (batch of one) for a BGR uint8 ``frame``, and the frame <-> model transform."""
    import cv2

    frame = check_frame(frame)
    h, w = frame.shape[:2]
    (rw, rh), (tw, th), tf = plan_resize(pre, (w, h), target if target is not None else model_size(pre, spec))
    img = frame
    if pre.color == "rgb":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif pre.color == "gray":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if (rw, rh) != (w, h):
        img = cv2.resize(img, (rw, rh), interpolation=_INTERP[pre.interpolation])
    if img.ndim == 2:
        img = img[:, :, None]
    if (rw, rh) != (tw, th):
        canvas = np.full((th, tw, img.shape[2]), pre.pad_value, np.float32 if pre.pad_value % 1 else np.uint8)
        left, top = int(tf.tx), int(tf.ty)
        sx0, sy0 = max(0, -left), max(0, -top)  # crop: skip what falls outside the canvas
        dx0, dy0 = max(0, left), max(0, top)
        cw, ch = min(rw - sx0, tw - dx0), min(rh - sy0, th - dy0)
        canvas[dy0:dy0 + ch, dx0:dx0 + cw] = img[sy0:sy0 + ch, sx0:sx0 + cw]
        img = canvas
    if pre.layout == "NCHW":
        img = img.transpose(2, 0, 1)  # the float copy below makes it contiguous
    x = img.astype(np.float32, order="C")
    mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
    if np.any(mean != 0) or np.any(std != 1):
        shape = (-1, 1, 1) if pre.layout == "NCHW" else (-1,)
        x -= mean.reshape(shape)
        x *= (1.0 / std).reshape(shape)
    return _to_dtype(x[None], pre, spec), tf


def _to_dtype(x: np.ndarray, pre: Preprocess, spec: TensorSpec) -> np.ndarray:
    dtype = np.dtype(pre.dtype)
    if dtype.kind == "f":
        return np.ascontiguousarray(x, dtype=dtype)
    if pre.quantize and spec.quantization is not None:
        scale, zero_point = spec.quantization
        x = x / np.float32(scale) + np.float32(zero_point)
    info = np.iinfo(dtype)
    return np.ascontiguousarray(np.clip(np.rint(x), info.min, info.max).astype(dtype))
