"""The sample CNN: one small MobileNet-like network that every format's builder writes.

Architecture (:data:`SAMPLE_CNN_LAYERS`) and weights (:func:`sample_cnn_weights`) live here so
the TFLite builder (NHWC input ``image`` [1,96,96,3]) and the ONNX twin (NCHW input
[1,3,96,96]) compute the same function; :func:`sample_cnn_reference` is that function in numpy.
Output ``probs`` [1,10] (softmax).

Example::

    w = sample_cnn_weights()                  # {'conv0.weight': (16,3,3,3) OIHW, 'conv0.bias': (16,), ...}
    probs = sample_cnn_reference(np.zeros((1, 3, 96, 96), np.float32))
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SAMPLE_CNN_LAYERS", "sample_cnn_reference", "sample_cnn_weights"]

#: The sample CNN, layer by layer, for every format's builder. Convolutions use TF "SAME"
#: padding: output = ceil(input / stride), and when the total padding is odd the extra row
#: and column go at the end (ONNX: ``auto_pad="SAME_UPPER"``). ``act`` is applied after the bias.
SAMPLE_CNN_LAYERS: list[dict[str, Any]] = [
    {"name": "conv0", "op": "conv", "in": 3, "out": 16, "kernel": 3, "stride": 2, "act": "relu6"},  # 96 -> 48
    {"name": "dw1", "op": "depthwise", "in": 16, "out": 16, "kernel": 3, "stride": 1, "act": "relu6"},
    {"name": "pw1", "op": "conv", "in": 16, "out": 32, "kernel": 1, "stride": 1, "act": "relu6"},
    {"name": "dw2", "op": "depthwise", "in": 32, "out": 32, "kernel": 3, "stride": 2, "act": "relu6"},  # -> 24
    {"name": "pw2", "op": "conv", "in": 32, "out": 64, "kernel": 1, "stride": 1, "act": "relu6"},
    {"name": "dw3", "op": "depthwise", "in": 64, "out": 64, "kernel": 3, "stride": 2, "act": "relu6"},  # -> 12
    {"name": "pw3", "op": "conv", "in": 64, "out": 64, "kernel": 1, "stride": 1, "act": "relu6"},
    {"name": "pool", "op": "global_avg_pool"},  # mean over H and W -> [1, 64]
    {"name": "fc", "op": "dense", "in": 64, "out": 10},
    {"name": "softmax", "op": "softmax"},
]


def sample_cnn_weights() -> dict[str, np.ndarray]:
    """Deterministic float32 weights of :data:`SAMPLE_CNN_LAYERS` (``np.random.default_rng(0)``).

    Keys ``<layer>.weight`` and ``<layer>.bias``. Layouts are ONNX's: ``conv`` weights OIHW
    ``[out, in, kh, kw]``; ``depthwise`` weights ``[C, 1, kh, kw]`` (a grouped Conv with
    ``group=C``); ``dense`` weights ``[out, in]`` (Gemm with ``transB=1``, TFLite's
    FULLY_CONNECTED as is). He-normal init keeps the ReLU6 activations in range.

    >>> sample_cnn_weights()["conv0.weight"].shape
    (16, 3, 3, 3)
    """
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    for layer in SAMPLE_CNN_LAYERS:
        kind, name = layer["op"], layer["name"]
        if kind in ("conv", "depthwise", "dense"):
            k = layer.get("kernel", 1)
            fan_in = (layer["in"] if kind != "depthwise" else 1) * k * k
            shape = {"conv": (layer["out"], layer["in"], k, k), "depthwise": (layer["out"], 1, k, k),
                     "dense": (layer["out"], layer["in"])}[kind]
            out[f"{name}.weight"] = (rng.normal(0, 1, shape) * np.sqrt(2 / fan_in)).astype(np.float32)
            out[f"{name}.bias"] = rng.normal(0, 0.05, (layer["out"],)).astype(np.float32)
    return out


def _same_pad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    size = x.shape[-1]
    total = max((-(-size // s) - 1) * s + k - size, 0)
    lo = total // 2
    return np.pad(x, ((0, 0), (0, 0), (lo, total - lo), (lo, total - lo)))


def sample_cnn_reference(image_nchw: np.ndarray) -> np.ndarray:
    """The sample CNN in numpy (float64 inside), NCHW input ``[N,3,96,96]`` -> probs ``[N,10]`` float32.

    >>> sample_cnn_reference(np.zeros((1, 3, 96, 96), np.float32)).shape
    (1, 10)
    """
    w, x = sample_cnn_weights(), image_nchw.astype(np.float64)
    for layer in SAMPLE_CNN_LAYERS:
        kind, name = layer["op"], layer["name"]
        if kind in ("conv", "depthwise"):
            k, s, wt = layer["kernel"], layer["stride"], w[f"{name}.weight"].astype(np.float64)
            xp, hw = _same_pad(x, k, s), -(-x.shape[-1] // s)
            acc = np.zeros((x.shape[0], layer["out"], hw, hw))
            for i in range(k):
                for j in range(k):
                    patch = xp[:, :, i : i + s * hw : s, j : j + s * hw : s]
                    if kind == "conv":
                        acc += np.einsum("nchw,oc->nohw", patch, wt[:, :, i, j])
                    else:
                        acc += patch * wt[None, :, 0, i, j, None, None]
            x = np.clip(acc + w[f"{name}.bias"][None, :, None, None], 0, 6)
        elif kind == "global_avg_pool":
            x = x.mean(axis=(2, 3))
        elif kind == "dense":
            x = x @ w[f"{name}.weight"].T.astype(np.float64) + w[f"{name}.bias"]
        elif kind == "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            x = e / e.sum(axis=-1, keepdims=True)
    return x.astype(np.float32)
