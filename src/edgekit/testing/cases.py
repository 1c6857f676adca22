"""The conformance cases: small models with fixed weights and a numpy reference for each.

Every case exists in ONNX (NCHW) and TFLite (NHWC) form; the builders live in
:mod:`edgekit.testing.onnx_models` and :mod:`edgekit.testing.tflite_models` and take
their weights from :func:`Case.weights`, so both formats compute the same function.
``Case.requires`` names the optional runtime capabilities a case needs (keys of
:data:`edgekit.runtime.CAPABILITIES`); the conformance suite skips a case on a runtime that
does not declare them.

Example::

    case = CASES["matmul_add_softmax"]
    feeds = case.inputs("onnx", batch=2)
    expected = case.reference("onnx", feeds)      # {'probs': array(...)}
    CASES["int8_fc"].requires                     # ('int8',)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.runtime import CAPABILITIES

__all__ = ["CASES", "Case", "quantize", "dequantize"]

Arrays = dict[str, np.ndarray]


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: type = np.int8) -> np.ndarray:
    """Affine quantization, round half to even, saturating (as ONNX QuantizeLinear and TFLite)."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Inverse of :func:`quantize`, in float32."""
    return ((q.astype(np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, name)))


def _conv_same_nchw(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    out = np.zeros((n, o, h, wd), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + h, j : j + wd]  # n c h w
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return (out + b[None, :, None, None]).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


# --- weights -------------------------------------------------------------------------------

def _w_conv_relu() -> Arrays:
    r = _rng("conv_relu")
    return {"w": r.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32),  # OIHW
            "b": r.normal(0, 0.1, (4,)).astype(np.float32)}


def _w_matmul() -> Arrays:
    r = _rng("matmul_add_softmax")
    return {"w": r.normal(0, 0.5, (16, 10)).astype(np.float32), "b": r.normal(0, 0.1, (10,)).astype(np.float32)}


def _w_dynamic() -> Arrays:
    r = _rng("dynamic_batch")
    return {"w": r.normal(0, 0.5, (6, 3)).astype(np.float32), "b": r.normal(0, 0.1, (3,)).astype(np.float32)}


#: quantization of the int8 case: input, weights (symmetric per-tensor), output
INT8: dict[str, Any] = {"x_scale": 0.05, "x_zp": 3, "w_scale": 0.02, "y_scale": 0.1, "y_zp": -5}


def _w_int8() -> Arrays:
    r = _rng("int8_fc")
    return {"w_q": r.integers(-100, 101, (8, 4)).astype(np.int8),  # [in, out]
            "b_q": r.integers(-200, 201, (4,)).astype(np.int32)}  # scale x_scale*w_scale, zp 0


# --- references (on the ONNX layout; TFLite layouts are transposed around them) ---------------

def _ref_conv_relu(f: Arrays) -> Arrays:
    w = _w_conv_relu()
    return {"y": np.maximum(_conv_same_nchw(f["x"], w["w"], w["b"]), 0)}


def _ref_matmul(f: Arrays) -> Arrays:
    w = _w_matmul()
    return {"probs": _softmax(f["x"] @ w["w"] + w["b"])}


def _ref_two_io(f: Arrays) -> Arrays:
    # Output order is deliberately not alphabetical: runtimes must keep the model's order.
    return {"z_sum": f["a"] + f["b"], "a_prod": f["a"] * f["b"]}


def _ref_dynamic(f: Arrays) -> Arrays:
    w = _w_dynamic()
    return {"y": np.maximum(f["x"] @ w["w"] + w["b"], 0).astype(np.float32)}


def _ref_int8(f: Arrays) -> Arrays:
    q, w = INT8, _w_int8()
    x = dequantize(f["x"], q["x_scale"], q["x_zp"]).astype(np.float64)
    acc = x @ (w["w_q"].astype(np.float64) * q["w_scale"]) + w["b_q"] * (q["x_scale"] * q["w_scale"])
    return {"y": quantize(acc, q["y_scale"], q["y_zp"])}


@dataclass(frozen=True)
class Case:
    """One conformance model: inputs per format, a numpy reference and a tolerance."""

    name: str
    description: str
    onnx_inputs: dict[str, tuple[tuple[int, ...], str]]  # name -> (shape with batch first, dtype)
    _reference: Callable[[Arrays], Arrays]
    weights: Callable[[], Arrays]
    atol: float = 1e-4
    rtol: float = 1e-4
    nhwc_inputs: tuple[str, ...] = ()  # inputs that are NCHW in ONNX and NHWC in TFLite
    dynamic_batch: bool = False
    quantized: bool = False
    requires: tuple[str, ...] = ()  # capabilities a runtime must declare to be tested on this case

    def __post_init__(self) -> None:
        unknown = [c for c in self.requires if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"case {self.name!r} requires unknown capabilities {unknown}; "
                             f"known: {sorted(CAPABILITIES)}.")

    def inputs(self, fmt: str, batch: int = 1, seed: int = 0) -> Arrays:
        """Random inputs for ``fmt`` (``onnx`` layout for every format but ``tflite``)."""
        rng = np.random.default_rng(seed)
        out = {}
        for name, (shape, dtype) in self.onnx_inputs.items():
            shape = (batch, *shape[1:]) if self.dynamic_batch else shape
            if np.dtype(dtype).kind == "i":
                arr = rng.integers(-128, 128, shape).astype(dtype)
            else:
                arr = rng.normal(0, 1, shape).astype(dtype)
            if fmt == "tflite" and name in self.nhwc_inputs:
                arr = np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
            out[name] = arr
        return out

    def reference(self, fmt: str, feeds: Arrays) -> Arrays:
        """Expected outputs, in model order, in ``fmt``'s layout."""
        if fmt == "tflite":
            feeds = {k: (v.transpose(0, 3, 1, 2) if k in self.nhwc_inputs else v) for k, v in feeds.items()}
        out = self._reference(feeds)
        if fmt == "tflite" and self.nhwc_inputs:
            out = {k: np.ascontiguousarray(v.transpose(0, 2, 3, 1)) if v.ndim == 4 else v for k, v in out.items()}
        return out


CASES: dict[str, Case] = {c.name: c for c in [
    Case("conv_relu", "3x3 convolution (3->4 channels, same padding, bias) + ReLU on 8x8",
         {"x": ((1, 3, 8, 8), "float32")}, _ref_conv_relu, _w_conv_relu, nhwc_inputs=("x",)),
    Case("matmul_add_softmax", "x[2,16] @ W[16,10] + b, softmax", {"x": ((2, 16), "float32")},
         _ref_matmul, _w_matmul, atol=1e-5),
    Case("two_in_two_out", "z_sum = a + b, a_prod = a * b (outputs in that order)",
         {"a": ((1, 4), "float32"), "b": ((1, 4), "float32")}, _ref_two_io, dict, atol=1e-6,
         requires=("multi_output",)),
    Case("dynamic_batch", "x[N,6] @ W[6,3] + b, ReLU; N is dynamic", {"x": ((1, 6), "float32")},
         _ref_dynamic, _w_dynamic, dynamic_batch=True, requires=("dynamic_shapes",)),
    Case("int8_fc", "int8 fully connected: x int8[1,8] (scale 0.05, zp 3) -> y int8[1,4] (scale 0.1, zp -5)",
         {"x": ((1, 8), "int8")}, _ref_int8, _w_int8, atol=1, rtol=0, quantized=True, requires=("int8",)),
]}
