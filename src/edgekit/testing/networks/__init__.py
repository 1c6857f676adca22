"""Structurally faithful ONNX builds of classic vision networks, with random weights.

Published latency figures (Qualcomm AI Hub, Coral, Hailo, Rockchip) are for trained networks whose
weights cannot be fetched offline; the latency of a network depends on its topology and shapes, not
on its weight values. These builders reproduce the published topologies (layer counts, channels,
strides, kernel sizes, activations, squeeze-excitation, channel shuffle, detection heads; BatchNorm
folded into the convolutions as a converter does, and kept as a BatchNormalization op where no convolution
can absorb it, as in pre-activation ResNet v2) with He-initialised random weights, opset 13.

:data:`REFERENCE` holds each network's published parameter count and multiply-accumulates, which
``tests/test_networks.py`` checks the builds against (within 3 %; folding BatchNorm removes one of
its two per-channel parameters, so a build counts up to 1 % fewer parameters than torchvision).

``weights=False`` builds the same graph with empty initialisers (shapes only): enough to count
parameters and MACs in milliseconds, but not runnable. Built with weights, VGG-16 is 553 MB.

The builders live in :mod:`.classic` (MobileNet, ResNet v1/v1.5/v2, SqueezeNet, ShuffleNet, VGG),
:mod:`.efficientnet` (B0, Lite, EdgeTPU), :mod:`.inception`, :mod:`.detection` (YOLOv8, SSD) and
:mod:`.yolo` (YOLOv5, YOLOX, YOLOv7-tiny, ending at their raw per-level heads as rknn_model_zoo exports
them: three graph outputs).

Example::

    path = build_network("mobilenet_v2", Path("/tmp/mnv2.onnx"))       # 3.5 M parameters, 0.3 GMACs
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.testing.networks import classic, detection, efficientnet, inception, yolo
from edgekit.testing.networks._builder import Builder
from edgekit.testing.networks._reference import REFERENCE

__all__ = ["NETWORKS", "REFERENCE", "build_network", "count_params", "graph_builder", "network_model"]


def _plain(fn: Callable[[Builder, int], object], seed: int) -> Callable[[int, bool], object]:
    return lambda size, weights: fn(Builder(seed, weights), size)


def _effnet(recipe: str, width: float, depth: float, name: str, seed: int) -> Callable[[int, bool], object]:
    return _plain(efficientnet.efficientnet(recipe, width, depth, name), seed)


#: name -> (builder taking the input size and whether to materialise weights, default input size)
NETWORKS: dict[str, tuple[Callable[[int, bool], object], int]] = {
    "mobilenet_v1": (_plain(classic.mobilenet_v1, 1), 224),
    "mobilenet_v2": (_plain(classic.mobilenet_v2(1.0, "mobilenet_v2"), 2), 224),
    "resnet50": (_plain(classic.resnet([3, 4, 6, 3], True, "resnet50"), 3), 224),
    "resnet18": (_plain(classic.resnet([2, 2, 2, 2], False, "resnet18"), 4), 224),
    "resnet34": (_plain(classic.resnet([3, 4, 6, 3], False, "resnet34"), 5), 224),
    "resnet50_v1": (_plain(classic.resnet([3, 4, 6, 3], True, "resnet50_v1", stride_in_1x1=True), 6), 224),
    "resnet101": (_plain(classic.resnet([3, 4, 23, 3], True, "resnet101"), 7), 224),
    "mobilenet_v3_large": (_plain(classic.mobilenet_v3_large, 8), 224),
    "efficientnet_b0": (_effnet("b0", 1.0, 1.0, "efficientnet_b0", 9), 224),
    "squeezenet1_1": (_plain(classic.squeezenet1_1, 10), 224),
    "shufflenet_v2_x0_5": (_plain(classic.shufflenet_v2([48, 96, 192, 1024], "shufflenet_v2_x0_5"), 11), 224),
    "shufflenet_v2_x1_0": (_plain(classic.shufflenet_v2([116, 232, 464, 1024], "shufflenet_v2_x1_0"), 12), 224),
    "vgg16": (_plain(classic.vgg("vgg16"), 13), 224),
    "inception_v3": (_plain(inception.inception_v3, 14), 299),
    "googlenet": (_plain(inception.googlenet, 16), 224),
    "yolov8n": (_plain(detection.yolov8(0.25, "yolov8n"), 15), 640),
    "vgg19": (_plain(classic.vgg("vgg19"), 17), 224),
    "inception_v4": (_plain(inception.inception_v4, 18), 299),
    "mobilenet_v2_1.4": (_plain(classic.mobilenet_v2(1.4, "mobilenet_v2_1.4"), 19), 224),
    "efficientnet_lite0": (_effnet("lite", 1.0, 1.0, "efficientnet_lite0", 20), 224),
    "efficientnet_lite1": (_effnet("lite", 1.0, 1.1, "efficientnet_lite1", 21), 240),
    "efficientnet_lite2": (_effnet("lite", 1.1, 1.2, "efficientnet_lite2", 22), 260),
    "efficientnet_lite3": (_effnet("lite", 1.2, 1.4, "efficientnet_lite3", 23), 280),
    "efficientnet_lite4": (_effnet("lite", 1.4, 1.8, "efficientnet_lite4", 24), 300),
    "efficientnet_edgetpu_s": (_effnet("edgetpu", 1.0, 1.0, "efficientnet_edgetpu_s", 25), 224),
    "efficientnet_edgetpu_m": (_effnet("edgetpu", 1.0, 1.1, "efficientnet_edgetpu_m", 26), 240),
    "efficientnet_edgetpu_l": (_effnet("edgetpu", 1.2, 1.4, "efficientnet_edgetpu_l", 27), 300),
    "ssd_mobilenet_v1": (_plain(detection.ssd_mobilenet(1, "ssd_mobilenet_v1"), 28), 300),
    "ssd_mobilenet_v2": (_plain(detection.ssd_mobilenet(2, "ssd_mobilenet_v2"), 29), 300),
    "yolov8s": (_plain(detection.yolov8(0.5, "yolov8s"), 30), 640),
    "resnet50_v2": (_plain(classic.resnet50_v2, 31), 224),
    "yolov5n": (_plain(yolo.yolov5(0.25, 0.33, "yolov5n"), 32), 640),
    "yolov5s": (_plain(yolo.yolov5(0.50, 0.33, "yolov5s"), 33), 640),
    "yolov5m": (_plain(yolo.yolov5(0.75, 0.67, "yolov5m"), 34), 640),
    "yolov5s_relu": (_plain(yolo.yolov5(0.50, 0.33, "yolov5s_relu", act="relu"), 35), 640),
    "yolov8m": (_plain(detection.yolov8(0.75, "yolov8m", depth=0.67, max_channels=768), 36), 640),
    "yolox_s": (_plain(yolo.yolox(0.50, 0.33, "yolox_s"), 37), 640),
    "yolox_m": (_plain(yolo.yolox(0.75, 0.67, "yolox_m"), 38), 640),
    "yolov7_tiny": (_plain(yolo.yolov7_tiny, 39), 640),
}


def network_model(name: str, size: int | None = None, *, weights: bool = True):  # -> onnx.ModelProto
    """The ONNX model of network ``name`` (see :data:`NETWORKS`) for a ``size`` x ``size`` input.

    ``weights=False`` leaves the initialisers empty: count it, do not run it.

    >>> m = network_model("squeezenet1_1", weights=False)
    >>> count_params(m)
    1235496
    """
    if name not in NETWORKS:
        raise KeyError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}.")
    build, default = NETWORKS[name]
    return build(size or default, weights)


def build_network(name: str, path: Path, size: int | None = None, *, weights: bool = True) -> Path:
    """Write network ``name`` (see :data:`NETWORKS`) with a ``size`` x ``size`` input to ``path``."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(network_model(name, size, weights=weights), str(path))
    return path


def graph_builder(folder: Path) -> Callable[[str, int], Path]:
    """``build(network, size)``: the path of the network's graph in ``folder``, built without weights once (latency
    depends on topology and shapes, not on weight values: what calibration and its figures need).

    >>> import tempfile
    >>> build = graph_builder(Path(tempfile.mkdtemp()))
    >>> build("squeezenet1_1", 224) == build("squeezenet1_1", 224)
    True
    """
    def build(name: str, size: int) -> Path:
        path = folder / f"{name}_{size}.onnx"
        return path if path.exists() else build_network(name, path, size, weights=False)

    return build


def count_params(model: Any) -> int:
    """Learned parameters of a built network: its initialisers less the ``const_`` ones (shapes, anchors,
    BatchNorm statistics)."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if not t.name.startswith("const_"))
