"""Compare two models on the same inputs: output differences and interleaved latency.

Used by ``quantize`` and ``convert``: the derived model is checked against the original on
the same inputs, so a conversion or a quantization is never reported without its cost.

- :func:`output_drift` per output: max and mean absolute difference, relative L2 error
  (``||b - a|| / ||a||``) and, for a ``[N, C]`` output, the share of rows whose argmax agrees.
- :func:`interleaved_latency`: each round runs every predictor once, in turn, so that load
  from other processes hits all of them alike; the median per predictor, in milliseconds.
- :func:`image_like_feeds`: reproducible inputs that resemble what models see (below), with a
  sentence saying what they are; :func:`random_feeds`: plain random ones.

Synthetic image-like inputs. Uniform or N(0, 1) noise says little about a conversion: a detector
answers it with near-constant outputs (PP-OCR det: every pixel ~1e-8, so fp16 "drifts" by 0 while
a real page drifts by 0.05-0.1), and a 1x1 image (dynamic dims set to 1) is degenerate.
:func:`synthetic_images` draws frames (numpy only) with what photos and scans have: a smooth
two-colour gradient, soft blobs, flat rectangles with hard edges, patches with lines of blocky
glyphs (text-like strokes: PP-OCR det finds text in them) and sensor noise (sigma 4 grey levels).
:func:`image_like_feeds` turns them into each image-like input (rank 4 with 1, 3 or 4 channels
first or last; dynamic height and width ``dims`` or :data:`IMAGE_SIDE`):
uint8 inputs get the pixels, quantized integer inputs the pixels shifted into the dtype's range,
float inputs the pixels scaled to one of :data:`FLOAT_RANGES` in turn (a plain model does not say
which it expects: [0, 1], [-1, 1] and ImageNet mean/std cover most). Other inputs get
:func:`edgekit.tensors.random_array` data (floats in [-1, 1), integers in [0, 10)).

Example::

    with edgekit.load("m.onnx") as a, edgekit.load("m.xml") as b:
        feeds, what = image_like_feeds(a.inputs, 8)   # what: "8 synthetic image-like inputs (...)"
        drift = output_drift([a(f) for f in feeds], [b(f) for f in feeds])
        p50_a, p50_b = interleaved_latency([a, b], feeds[0])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.tensors import TensorSpec, check_input_size, concrete_dims, random_array

__all__ = ["FLOAT_RANGES", "IMAGE_SIDE", "Drift", "image_like_feeds", "interleaved_latency", "output_drift",
           "random_feeds", "synthetic_images"]

#: height and width of a synthetic image for an input whose height and width are dynamic (as ``edgekit profile``)
IMAGE_SIDE = 224
_IMAGENET_MEAN, _IMAGENET_STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
#: how float image inputs are scaled from 0..255 pixels, one per sample in turn: (name, pixels -> values)
FLOAT_RANGES: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("[0, 1]", lambda px: px / np.float32(255.0)),
    ("[-1, 1]", lambda px: px / np.float32(127.5) - np.float32(1.0)),
    ("ImageNet mean/std", lambda px: (px / np.float32(255.0) - _IMAGENET_MEAN[:px.shape[-1]])
     / _IMAGENET_STD[:px.shape[-1]]),
)


@dataclass(frozen=True)
class Drift:
    """How far one output of model B is from model A's, over all compared inputs."""

    output: str
    max_abs: float
    mean_abs: float
    rel_l2: float
    top1_agreement: float | None = None  # [N, C] outputs: share of rows with the same argmax
    peak: float = 0.0  # max |A|: the scale a tolerance relative to the output is taken from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        top = f", top-1 agreement {self.top1_agreement:.1%}" if self.top1_agreement is not None else ""
        return f"{self.output}: max |diff| {self.max_abs:.3g}, mean |diff| {self.mean_abs:.3g}, " \
               f"rel L2 {self.rel_l2:.3g}{top}"


def output_drift(reference: Sequence[Mapping[str, np.ndarray]],
                 other: Sequence[Mapping[str, np.ndarray]]) -> list[Drift]:
    """Per output of ``reference`` (matched by position), the difference of ``other`` over all runs."""
    out: list[Drift] = []
    if not reference:
        return out
    names = list(reference[0])
    for i, name in enumerate(names):
        a = [np.asarray(r[name], np.float64) for r in reference]
        b = [np.asarray(list(o.values())[i], np.float64) for o in other]
        diff = np.concatenate([(y - x).ravel() for x, y in zip(a, b)])
        ref = np.concatenate([x.ravel() for x in a])
        norm = float(np.linalg.norm(ref))
        top1 = None
        if a[0].ndim == 2 and a[0].shape[1] > 1:
            top1 = float(np.mean(np.concatenate([x.argmax(1) == y.argmax(1) for x, y in zip(a, b)])))
        out.append(Drift(name, float(np.abs(diff).max(initial=0.0)), float(np.abs(diff).mean()) if diff.size else 0.0,
                         float(np.linalg.norm(diff) / norm) if norm else float(np.linalg.norm(diff)), top1,
                         float(np.abs(ref).max(initial=0.0))))
    return out


def interleaved_latency(predictors: Sequence[Any], feeds: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
                        *, warmup: int = 3, rounds: int = 50, budget_s: float = 5.0) -> list[float]:
    """Median milliseconds per predictor over interleaved rounds (stops early after ``budget_s``).

    ``feeds`` is one feed for all predictors, or one per predictor (when their input layouts differ).
    """
    per = list(feeds) if isinstance(feeds, Sequence) else [feeds] * len(predictors)
    for _ in range(warmup):
        for p, f in zip(predictors, per):
            p.run(f)
    times: list[list[float]] = [[] for _ in predictors]
    end = time.perf_counter() + budget_s
    for r in range(rounds):
        order = list(range(len(predictors)))
        if r % 2:
            order.reverse()  # alternate who runs first
        for i in order:
            t0 = time.perf_counter_ns()
            predictors[i].run(per[i])
            times[i].append((time.perf_counter_ns() - t0) / 1e6)
        if r >= 4 and time.perf_counter() > end:
            break
    return [float(np.median(t)) for t in times]


def random_feeds(specs: Sequence[TensorSpec], n: int = 3, *, seed: int = 0,
                 dims: Mapping[str, Sequence[int]] | None = None, fill: int = 1) -> list[dict[str, np.ndarray]]:
    """``n`` reproducible feeds: floats from N(0, 1), integers in [0, 10), booleans; dynamic dims ``fill``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        feed = {}
        for s in specs:
            shape = tuple((dims or {}).get(s.name) or s.concrete_shape(fill))
            if s.dtype.kind == "f":
                feed[s.name] = rng.normal(0, 1, shape).astype(s.dtype)
            elif s.dtype.kind == "b":
                feed[s.name] = rng.integers(0, 2, shape).astype(bool)
            else:
                info = np.iinfo(s.dtype)
                feed[s.name] = rng.integers(max(info.min, 0), min(info.max, 10), shape).astype(s.dtype)
        out.append(feed)
    return out


def synthetic_images(n: int, height: int, width: int, *, seed: int = 0) -> list[np.ndarray]:
    """``n`` reproducible image-like frames, uint8 ``[height, width, 3]`` (see the module docstring).

    >>> [f.shape for f in synthetic_images(2, 48, 64)]
    [(48, 64, 3), (48, 64, 3)]
    """
    check_input_size("synthetic image", (n, height, width, 3), np.dtype(np.float32))
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    side = float(min(height, width))
    frames = []
    for _ in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        t = u * np.float32(np.cos(angle)) + v * np.float32(np.sin(angle))
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
        img = c0 + (c1 - c0) * t[..., None]
        for _ in range(3):  # soft blobs
            cy, cx, s = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.05, 0.3) * side + 1
            g = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / np.float32(2 * s * s))
            img += rng.uniform(-90, 90, 3).astype(np.float32) * g[..., None]
        for _ in range(4):  # flat rectangles: hard edges
            y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
            h, w = int(rng.integers(1, max(2, height // 3))), int(rng.integers(1, max(2, width // 3)))
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 255, 3)
        for _ in range(int(rng.integers(1, 4))):  # text blocks: lines of glyph-like strokes on a plain patch
            _text_block(img, rng)
        img += rng.normal(0, 4, img.shape).astype(np.float32)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames


def _text_block(img: np.ndarray, rng: np.random.Generator) -> None:
    """Draw, in place, a plain patch with a few lines of blocky glyphs (2-4 strokes each) in a contrasting ink."""
    height, width = img.shape[:2]
    size = int(rng.integers(8, max(9, min(32, height // 4) + 1)))  # glyph height in pixels
    lines = int(rng.integers(1, 6))
    bh = min(height, lines * size * 3 // 2 + size)
    bw = min(width, int(rng.integers(size * 4, max(size * 4 + 1, width))))
    y0, x0 = int(rng.integers(0, height - bh + 1)), int(rng.integers(0, width - bw + 1))
    paper = rng.uniform(170, 255) if rng.random() < 0.7 else rng.uniform(0, 90)
    ink = rng.uniform(0, 70) if paper > 128 else rng.uniform(180, 255)
    img[y0:y0 + bh, x0:x0 + bw] = paper + rng.uniform(-15, 15, 3)
    gw, t = max(3, size * 3 // 5), max(1, size // 7)
    for line in range(lines):
        gy = y0 + size // 2 + line * size * 3 // 2
        gx = x0 + size // 2
        while gx + gw < x0 + bw - size // 2 and gy + size <= y0 + bh:
            if rng.random() < 0.15:  # a space between words
                gx += gw
                continue
            for _ in range(int(rng.integers(2, 5))):
                if rng.random() < 0.5:  # vertical stroke at the left, middle or right
                    x = gx + int(rng.choice([0, gw // 2, gw - t]))
                    a, b = sorted(int(v) for v in rng.integers(0, size + 1, 2))
                    img[gy + a:gy + max(b, a + size // 2), x:x + t] = ink
                else:  # horizontal stroke at the top, middle or bottom
                    y = gy + int(rng.choice([0, size // 2, size - t]))
                    img[y:y + t, gx:gx + gw] = ink
            gx += gw + max(1, size // 5)


def _image_layout(spec: TensorSpec, shape: Sequence[int]) -> str | None:
    """"NCHW" / "NHWC" for an image-like input of concrete ``shape``, else None."""
    if len(shape) != 4:
        return None
    first, last = shape[1] in (1, 3, 4), shape[3] in (1, 3, 4)
    if spec.layout in ("NCHW", "NHWC"):
        return spec.layout if (first if spec.layout == "NCHW" else last) else None
    return "NCHW" if first else "NHWC" if last else None


def _as_input(dtype: np.dtype, frame: np.ndarray, channels: int, layout: str, k: int) -> tuple[np.ndarray, str]:
    """One frame as a batch-1 tensor (``channels``, ``layout``, ``dtype``) and how its values were scaled."""
    px = frame.astype(np.float32)
    if channels == 1:
        px = px.mean(axis=2, keepdims=True)
    if dtype.kind == "f":
        what, scale = FLOAT_RANGES[k % len(FLOAT_RANGES)]
        x = scale(px)
        if channels == 4:  # an opaque alpha channel
            x = np.concatenate([x, scale(np.full(px.shape[:2] + (1,), 255.0, np.float32))], axis=2)
    else:
        if channels == 4:
            px = np.concatenate([px, np.full(px.shape[:2] + (1,), 255.0, np.float32)], axis=2)
        lowest = int(np.iinfo(dtype).min)
        x, what = px + np.float32(lowest), f"pixels in the {dtype} range"  # int8: -128..127
    x = x[None].transpose(0, 3, 1, 2) if layout == "NCHW" else x[None]
    return np.ascontiguousarray(np.rint(x) if dtype.kind in "iu" else x).astype(dtype), what


def image_like_feeds(specs: Sequence[TensorSpec], n: int = 8, *, dims: Mapping[str, Sequence[int]] | None = None,
                     seed: int = 0) -> tuple[list[dict[str, np.ndarray]], str]:
    """``n`` reproducible feeds that resemble real inputs, and a sentence saying what they are.

    See the module docstring for what each kind of input gets. Dynamic dimensions: ``dims``
    (``--shape``), else 1, except an image-like input's height and width (:data:`IMAGE_SIDE`).

    >>> spec = TensorSpec("x", (1, 3, None, None), np.dtype("float32"))
    >>> feeds, what = image_like_feeds([spec], 3)
    >>> feeds[0]["x"].shape, float(feeds[0]["x"].min()) >= 0.0
    ((1, 3, 224, 224), True)
    >>> what
    '3 synthetic image-like inputs (gradients, blobs, edges, text-like strokes and noise; x 1x3x224x224 float32 scaled to [0, 1], [-1, 1], ImageNet mean/std in turn)'
    """
    rng = np.random.default_rng(seed)
    shapes = {s.name: tuple(int(d) for d in (dims or {}).get(s.name) or concrete_dims(s, IMAGE_SIDE)) for s in specs}
    layouts = {s.name: _image_layout(s, shapes[s.name]) if s.dtype.kind in "fiu" else None for s in specs}
    frames: dict[str, list[np.ndarray]] = {}
    for i, s in enumerate(specs):
        layout, shape = layouts[s.name], shapes[s.name]
        if layout is not None:
            h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
            check_input_size(s.name, shape, np.dtype(np.float32))
            frames[s.name] = synthetic_images(n * shape[0], h, w, seed=seed + 1 + i)
    feeds: list[dict[str, np.ndarray]] = []
    scaled: dict[str, list[str]] = {}
    for k in range(n):
        feed = {}
        for s in specs:
            layout, shape = layouts[s.name], shapes[s.name]
            if layout is None:
                feed[s.name] = random_array(s, rng, shape)
                continue
            channels = shape[1] if layout == "NCHW" else shape[3]
            parts = [_as_input(s.dtype, frames[s.name][k * shape[0] + b], channels, layout, k)
                     for b in range(shape[0])]
            feed[s.name] = np.concatenate([x for x, _ in parts])
            how = scaled.setdefault(s.name, [])
            if parts[0][1] not in how:
                how.append(parts[0][1])
        feeds.append(feed)
    plural = "s" if n != 1 else ""
    if not scaled:
        return feeds, f"{n} random input{plural} (floats uniform in [-1, 1), integers in [0, 10); none is image-like)"
    dtypes = {s.name: s.dtype for s in specs}
    described = [f"{name} {'x'.join(map(str, shapes[name]))} {dtypes[name]} "
                 + (f"scaled to {', '.join(how)}" + (" in turn" if len(how) > 1 else "") if dtypes[name].kind == "f"
                    else how[0]) for name, how in scaled.items()]
    others = [s.name for s in specs if layouts[s.name] is None]
    tail = f"; {', '.join(others)} random" if others else ""
    return feeds, (f"{n} synthetic image-like input{plural} (gradients, blobs, edges, text-like strokes and noise; "
                   f"{'; '.join(described)}{tail})")
