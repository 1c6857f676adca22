"""The bundled sample model: a small MobileNet-like CNN in ONNX and TFLite, built offline.

``edgekit profile`` with no model measures this sample, so the main job runs on a fresh
machine without any download. Both files compute the same function from the same weights
(:func:`sample_cnn_weights`, layers in :data:`SAMPLE_CNN_LAYERS`);
:func:`sample_cnn_reference` is that function in numpy:

* ONNX: input ``image`` float32 ``[1, 3, 96, 96]`` (NCHW) -> ``probs`` ``[1, 10]``
* TFLite: input ``image`` float32 ``[1, 96, 96, 3]`` (NHWC) -> ``probs`` ``[1, 10]``

They are written once into ``cache_dir("samples")`` (``$EDGEKIT_CACHE`` honoured) with an
atomic rename, under a name that carries a digest of the layers, the weights and the two
builders' code (:func:`sample_digest`), so concurrent first runs never see a partial file and
a changed sample never reuses a stale one.

Example::

    from edgekit.models.sample import sample_model
    m = edgekit.load(sample_model("onnx"))
    m(np.zeros((1, 3, 96, 96), np.float32))["probs"].shape     # (1, 10)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.models.build import OpDef, TensorDef, save_onnx, write_tflite

__all__ = [
    "SAMPLE_CNN_LAYERS", "SAMPLE_VERSION", "build_sample_cnn", "build_sample_onnx", "sample_cnn_reference",
    "sample_cnn_weights", "sample_digest", "sample_model",
]

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


SAMPLE_VERSION = 1
_SUFFIX = {"onnx": ".onnx", "tflite": ".tflite"}


def sample_model(fmt: str = "onnx") -> Path:
    """Path of the sample CNN in ``fmt`` (``"onnx"`` or ``"tflite"``), built into the cache on first use."""
    from edgekit.cache import atomic_path, cache_dir
    from edgekit.errors import InvalidOptionError

    if fmt not in _SUFFIX:
        raise InvalidOptionError(f"the sample model exists as {sorted(_SUFFIX)}, not {fmt!r}. Pass one of those.")
    path = cache_dir("samples") / f"sample_cnn-{sample_digest()}{_SUFFIX[fmt]}"
    if path.is_file():
        return path
    with atomic_path(path) as tmp:
        if fmt == "onnx":
            build_sample_onnx(tmp)
        else:
            build_sample_cnn(tmp)
    return path


def sample_digest() -> str:
    """12 hex digits identifying the sample: layers, weights and both builders' source code."""
    import hashlib
    import inspect

    h = hashlib.sha256(f"v{SAMPLE_VERSION}{SAMPLE_CNN_LAYERS!r}".encode())
    for name, arr in sorted(sample_cnn_weights().items()):
        h.update(name.encode() + arr.tobytes())
    for fn in (build_sample_cnn, write_tflite, build_sample_onnx):
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:12]


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TF "SAME" padding (extra row/column at the end), as explicit ONNX pads."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def build_sample_onnx(path: str | os.PathLike[str]) -> Path:
    """Write the ONNX twin of the TFLite sample CNN (NCHW input ``image`` [1,3,96,96]) to ``path``.

    Explicit pads rather than ``auto_pad`` (OpenCV DNN reads them more reliably); ReLU6 is
    ``Clip(0, 6)``; the global mean is ``GlobalAveragePool`` + ``Flatten``; the dense layer is
    ``Gemm(transB=1)``.
    """
    from onnx import TensorProto, helper, numpy_helper

    w = sample_cnn_weights()
    inits = [numpy_helper.from_array(np.float32(0), "relu6.min"), numpy_helper.from_array(np.float32(6), "relu6.max")]
    nodes = []
    cur, hw = "image", 96
    for layer in SAMPLE_CNN_LAYERS:
        name, kind = layer["name"], layer["op"]
        if kind in ("conv", "depthwise"):
            k, s = layer["kernel"], layer["stride"]
            lo, hi = _same_pads(hw, k, s)
            hw = -(-hw // s)
            inits += [numpy_helper.from_array(w[f"{name}.weight"], f"{name}.weight"),
                      numpy_helper.from_array(w[f"{name}.bias"], f"{name}.bias")]
            nodes.append(helper.make_node(
                "Conv", [cur, f"{name}.weight", f"{name}.bias"], [f"{name}.conv"], name=name, kernel_shape=[k, k],
                strides=[s, s], pads=[lo, lo, hi, hi], group=layer["out"] if kind == "depthwise" else 1))
            nodes.append(helper.make_node("Clip", [f"{name}.conv", "relu6.min", "relu6.max"], [name],
                                          name=f"{name}.relu6"))
            cur = name
        elif kind == "global_avg_pool":
            nodes.append(helper.make_node("GlobalAveragePool", [cur], [f"{name}.4d"], name=name))
            nodes.append(helper.make_node("Flatten", [f"{name}.4d"], [name], name=f"{name}.flatten", axis=1))
            cur = name
        elif kind == "dense":
            inits += [numpy_helper.from_array(w[f"{name}.weight"], f"{name}.weight"),
                      numpy_helper.from_array(w[f"{name}.bias"], f"{name}.bias")]
            nodes.append(helper.make_node("Gemm", [cur, f"{name}.weight", f"{name}.bias"], ["logits"], name=name,
                                          transB=1))
            cur = "logits"
        elif kind == "softmax":
            nodes.append(helper.make_node("Softmax", [cur], ["probs"], name=name, axis=-1))
            cur = "probs"
        else:
            raise ValueError(f"sample CNN layer kind {kind!r} has no ONNX mapping")
    graph = helper.make_graph(
        nodes, "edgekit_sample_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 96, 96])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], inits)
    return save_onnx(graph, Path(path))


def build_sample_cnn(path: str | Path) -> Path:
    """Write the MobileNet-like sample of this module: image[1,96,96,3] -> probs[1,10].

    >>> build_sample_cnn("cnn.tflite")  # doctest: +SKIP
    """
    w = sample_cnn_weights()
    tensors: list[TensorDef] = [TensorDef("image", [1, 96, 96, 3])]
    ops: list[OpDef] = []
    hw, cur = 96, 0

    def add(t: TensorDef) -> int:
        tensors.append(t)
        return len(tensors) - 1

    for layer in SAMPLE_CNN_LAYERS:
        name, kind = layer["name"], layer["op"]
        if kind in ("conv", "depthwise"):
            hw = -(-hw // layer["stride"])
            wt = w[f"{name}.weight"]
            if kind == "conv":  # OIHW -> OHWI
                filt = add(TensorDef(f"{name}.weight", wt.shape[:1] + wt.shape[2:] + wt.shape[1:2],
                                     data=wt.transpose(0, 2, 3, 1)))
            else:  # [C,1,kh,kw] -> [1,kh,kw,C]
                filt = add(TensorDef(f"{name}.weight", (1, *wt.shape[2:], wt.shape[0]), data=wt.transpose(1, 2, 3, 0)))
            bias = add(TensorDef(f"{name}.bias", [wt.shape[0]], data=w[f"{name}.bias"]))
            out = add(TensorDef(name, [1, hw, hw, wt.shape[0]]))
            opts: dict[str, Any] = {"padding": "SAME", "stride_w": layer["stride"], "stride_h": layer["stride"],
                                    "fused_activation_function": layer["act"].upper()}
            if kind == "depthwise":
                opts["depth_multiplier"] = 1
            ops.append(OpDef("CONV_2D" if kind == "conv" else "DEPTHWISE_CONV_2D", [cur, filt, bias], [out], opts))
        elif kind == "global_avg_pool":
            axes = add(TensorDef(f"{name}.axes", [2], "int32", data=np.array([1, 2], np.int32)))
            channels = tensors[cur].shape[-1]
            out = add(TensorDef(name, [1, channels]))
            ops.append(OpDef("MEAN", [cur, axes], [out], {"keep_dims": False}))
        elif kind == "dense":
            wt = w[f"{name}.weight"]  # [out, in], as TFLite's FULLY_CONNECTED wants
            filt = add(TensorDef(f"{name}.weight", wt.shape, data=wt))
            bias = add(TensorDef(f"{name}.bias", [wt.shape[0]], data=w[f"{name}.bias"]))
            out = add(TensorDef("logits" if layer is not SAMPLE_CNN_LAYERS[-1] else "probs", [1, wt.shape[0]]))
            ops.append(OpDef("FULLY_CONNECTED", [cur, filt, bias], [out]))
        elif kind == "softmax":
            out = add(TensorDef("probs", list(tensors[cur].shape)))
            ops.append(OpDef("SOFTMAX", [cur], [out], {"beta": 1.0}))
        else:
            raise ValueError(f"sample CNN layer kind {kind!r} has no TFLite mapping")
        cur = out
    return write_tflite(tensors, ops, [0], [cur], path, signature="serving_default",
                       description="edgekit sample CNN (MobileNet-like)")
