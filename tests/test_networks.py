"""The network builders match their published parameter counts and MACs, and run in ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.models.flops import count_flops
from edgekit.testing.networks import NETWORKS, REFERENCE, build_network, count_params, network_model
from edgekit.testing.networks.detection import ssd_anchors, yolov8_anchors
from edgekit.testing.networks.yolo import yolo_levels


def test_at_least_thirty_networks_each_with_a_published_reference():
    assert len(NETWORKS) >= 30
    assert set(REFERENCE) == set(NETWORKS)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_counts_match_the_published_figures(name, tmp_path):
    """Parameters within 3 % (folded BatchNorm keeps one of its two per-channel parameters) and MACs
    within 3 % or 0.005 G (published GMACs are rounded to two decimals); counted from the graph alone."""
    path = build_network(name, tmp_path / f"{name}.onnx", weights=False)
    import onnx

    params = count_params(onnx.load(str(path)))
    fc = count_flops(path)
    ref_params, ref_gmacs, source = REFERENCE[name]
    assert abs(params / ref_params - 1) <= 0.03, (name, params, ref_params, source)
    assert abs(fc.macs / 1e9 - ref_gmacs) <= max(0.03 * ref_gmacs, 0.005), (name, fc.macs, ref_gmacs, source)
    assert set(fc.uncounted) <= {"Resize"}, fc.uncounted  # nearest upsampling in yolov8n has no MACs


# Only the small networks run (up to 12 M parameters): the large ones are seconds each to build with random
# weights on a 2-core runner (VGG-16/19 are 553/575 MB); their graphs are checked by the counts above.
SMALL = sorted(n for n in NETWORKS if REFERENCE[n][0] <= 12_000_000)


def _out_shape(name: str, size: int) -> list[tuple[int, ...]]:
    """Each graph output's shape: the raw YOLO heads have one per stride-8, 16 and 32 level."""
    if name.startswith("yolov8"):
        return [(1, 84, yolov8_anchors(size))]
    if name.startswith(("yolov5", "yolov7")):
        return yolo_levels(size, 255)
    if name.startswith("yolox"):
        return yolo_levels(size, 85)
    if name.startswith("ssd_"):
        return [(1, ssd_anchors(size), 95)]
    return [(1, 1000)]


@pytest.mark.parametrize("name", SMALL)
def test_runs_in_onnxruntime(name):
    import onnx
    import onnxruntime as ort

    model = network_model(name)
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    size = NETWORKS[name][1]
    outs = sess.run(None, {"input": np.random.default_rng(0).standard_normal((1, 3, size, size), np.float32)})
    assert [out.shape for out in outs] == _out_shape(name, size)
    assert all(np.isfinite(out).all() for out in outs)


def test_detectors_predict_their_published_box_counts():
    """SSD-MobileNet at 300x300 predicts 1917 boxes (19x19x3 + 10x10x6 + 5x5x6 + 3x3x6 + 2x2x6 + 1x1x6);
    YOLOv8 at 640x640 8400 anchor points."""
    assert ssd_anchors(300) == 1917 and yolov8_anchors(640) == 8400
    m = network_model("ssd_mobilenet_v1", 224, weights=False)
    assert [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim] == [1, ssd_anchors(224), 95]


def test_the_three_efficientnet_recipes_differ_as_published():
    """B0 has squeeze-and-excitation (Sigmoid gates), Lite ReLU6 and no SE, EdgeTPU ReLU with fused stages
    (no depthwise convolution at stride 4: its first three stages are full convolutions)."""
    def ops(name: str) -> set[str]:
        return {n.op_type for n in network_model(name, weights=False).graph.node}

    assert "Sigmoid" in ops("efficientnet_b0") and "Sigmoid" not in ops("efficientnet_lite0")
    assert "Clip" in ops("efficientnet_lite0") and ops("efficientnet_edgetpu_s").isdisjoint({"Clip", "Sigmoid"})
    dw = [n for n in network_model("efficientnet_edgetpu_s", weights=False).graph.node
          if n.op_type == "Conv" and next(a.i for a in n.attribute if a.name == "group") > 1]
    assert len(dw) == 5 + 4 + 2  # only the last three stages (5, 4 and 2 blocks) are depthwise


def test_other_input_sizes_build():
    assert network_model("inception_v3", 224).graph.input[0].type.tensor_type.shape.dim[2].dim_value == 224
    for vgg in ("vgg16", "vgg19"):
        with pytest.raises(ValueError, match="multiples of 224"):
            network_model(vgg, 300, weights=False)
    with pytest.raises(KeyError, match="unknown network 'resnet9'"):
        network_model("resnet9")
