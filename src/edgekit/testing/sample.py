"""The bundled sample model: a small MobileNet-like CNN in ONNX and TFLite, built offline.

``edgekit profile`` with no model measures this sample, so the main job runs on a fresh
machine without any download. Both files compute the same function from the same weights
(:func:`edgekit.testing.tflite_models.sample_cnn_weights`, layers in
:data:`~edgekit.testing.tflite_models.SAMPLE_CNN_LAYERS`):

* ONNX: input ``image`` float32 ``[1, 3, 96, 96]`` (NCHW) -> ``probs`` ``[1, 10]``
* TFLite: input ``image`` float32 ``[1, 96, 96, 3]`` (NHWC) -> ``probs`` ``[1, 10]``

They are written once into ``cache_dir("samples")`` (``$EDGEKIT_CACHE`` honoured) with an
atomic rename, under a name that carries a digest of the layers, the weights and the two
builders' code (:func:`sample_digest`), so concurrent first runs never see a partial file and
a changed sample never reuses a stale one.

Example::

    from edgekit.testing.sample import sample_model
    m = edgekit.load(sample_model("onnx"))
    m(np.zeros((1, 3, 96, 96), np.float32))["probs"].shape     # (1, 10)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_VERSION", "build_sample_onnx", "sample_digest", "sample_model"]

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
            from edgekit.testing.tflite_models import build_sample_cnn

            build_sample_cnn(tmp)
    return path


def sample_digest() -> str:
    """12 hex digits identifying the sample: layers, weights and both builders' source code."""
    import hashlib
    import inspect

    from edgekit.testing import tflite_models as t

    h = hashlib.sha256(f"v{SAMPLE_VERSION}{t.SAMPLE_CNN_LAYERS!r}".encode())
    for name, arr in sorted(t.sample_cnn_weights().items()):
        h.update(name.encode() + arr.tobytes())
    for fn in (t.build_sample_cnn, t.write_model, build_sample_onnx):
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

    from edgekit.testing.onnx_models import save_onnx
    from edgekit.testing.tflite_models import SAMPLE_CNN_LAYERS, sample_cnn_weights

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
    return save_onnx(graph, path)
