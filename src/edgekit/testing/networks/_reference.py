"""Each network's published parameter count and multiply-accumulates, with the source."""

from __future__ import annotations

__all__ = ["REFERENCE"]

_TV = "https://pytorch.org/vision/stable/models.html (torchvision, num_params and GFLOPS, which are GMACs)"
_HAILO = ("https://github.com/hailo-ai/hailo_model_zoo/blob/c83fc030e862de8daf05b783f503712d168ef620/docs/"
          "public_models/HAILO8/HAILO8_{}.rst (Params (M) and OPS (G) = 2 x GMACs, read 2026-11-29)")
_HAILO_CLS, _HAILO_DET = _HAILO.format("classification"), _HAILO.format("object_detection")
_V5 = ("https://github.com/ultralytics/yolov5 README (checkpoints table, v7.0 release: YOLOv5{}: {} M parameters, "
       "{} GFLOPs = 2 x GMACs at 640x640{})")
_YOLOX = ("https://github.com/Megvii-BaseDetection/YOLOX README (standard models: YOLOX-{}: {} M parameters, {} FLOPs (G) "
          "= 2 x GMACs at 640x640, yolox/utils/model_utils.py doubling thop's MACs)")

#: name -> (published parameters, published GMACs, source), at the default input size
REFERENCE: dict[str, tuple[int, float, str]] = {
    "resnet18": (11_689_512, 1.81, _TV),
    "resnet34": (21_797_672, 3.66, _TV),
    "resnet50": (25_557_032, 4.09, _TV + "; ResNet v1.5: stride in the 3x3 convolution"),
    "resnet50_v1": (25_557_032, 3.8, "https://arxiv.org/abs/1512.03385 (Table 1: 3.8 x 10^9 multiply-adds); "
                    "parameters as torchvision's resnet50, which differs only in where the stride is. "
                    "ResNet v1 (TF-slim, Keras, Coral, Hailo): stride in the first 1x1 convolution"),
    "resnet101": (44_549_160, 7.80, _TV),
    "mobilenet_v1": (4_200_000, 0.569, "https://arxiv.org/abs/1704.04861 (Table 8: 4.2 M, 569 M mult-adds)"),
    "mobilenet_v2": (3_504_872, 0.30, _TV),
    "mobilenet_v3_large": (5_483_032, 0.22, _TV),
    "efficientnet_b0": (5_288_548, 0.39, _TV),
    "squeezenet1_1": (1_235_496, 0.35, _TV),
    "shufflenet_v2_x0_5": (1_366_792, 0.04, _TV),
    "shufflenet_v2_x1_0": (2_278_604, 0.14, _TV),
    "vgg16": (138_357_544, 15.47, _TV),
    "inception_v3": (23_900_000, 5.71, "https://github.com/quic/ai-hub-models/blob/main/qai_hub_models/models/"
                     "inception_v3/info.yaml (23.9 M without the training-only auxiliary head; torchvision's "
                     "27.2 M includes it) and " + _TV + " (5.71 GMACs at 299x299)"),
    "googlenet": (6_624_904, 1.50, _TV + "; Inception v1"),
    "yolov8n": (3_157_200, 4.35, "https://docs.ultralytics.com/models/yolov8/ (YOLOv8n: 3.2 M parameters, "
                "8.7 GFLOPs = 2 x GMACs at 640x640; 3,157,200 from the model summary)"),
    "vgg19": (143_667_240, 19.63, _TV),
    "inception_v4": (42_680_000, 12.28, "https://huggingface.co/timm/inception_v4.tf_in1k (timm's port of TF-slim's "
                     "inception_v4: Params (M) 42.7 (42,679,816 in timm), GMACs 12.3 at 299x299)"),
    "mobilenet_v2_1.4": (6_090_000, 0.59, _HAILO_CLS + ": mobilenet_v2_1.4, 6.09 M, 1.18 GOPs"),
    "efficientnet_lite0": (4_630_000, 0.39, _HAILO_CLS + ": efficientnet_lite0, 4.63 M, 0.78 GOPs"),
    "efficientnet_lite1": (5_390_000, 0.61, _HAILO_CLS + ": efficientnet_lite1, 5.39 M, 1.22 GOPs at 240x240"),
    "efficientnet_lite2": (6_060_000, 0.87, _HAILO_CLS + ": efficientnet_lite2, 6.06 M, 1.74 GOPs at 260x260"),
    "efficientnet_lite3": (8_160_000, 1.40, _HAILO_CLS + ": efficientnet_lite3, 8.16 M, 2.8 GOPs at 280x280"),
    "efficientnet_lite4": (12_950_000, 2.55, _HAILO_CLS + ": efficientnet_lite4, 12.95 M, 5.10 GOPs at 300x300"),
    "efficientnet_edgetpu_s": (5_410_000, 1.8, _HAILO_CLS + ": efficientnet_s (EfficientNet-EdgeTPU-S), 5.41 M "
                               "parameters; GMACs from https://huggingface.co/timm/efficientnet_es.ra_in1k (1.8 at "
                               "224x224; Hailo's 4.72 GOPs count more than the convolutions' MACs)"),
    "efficientnet_edgetpu_m": (6_870_000, 3.0, _HAILO_CLS + ": efficientnet_m (EfficientNet-EdgeTPU-M), 6.87 M "
                               "parameters; GMACs from https://huggingface.co/timm/efficientnet_em.ra2_in1k (3.0 at "
                               "240x240)"),
    "efficientnet_edgetpu_l": (10_550_000, 8.0, _HAILO_CLS + ": efficientnet_l (EfficientNet-EdgeTPU-L), 10.55 M "
                               "parameters; GMACs from https://huggingface.co/timm/tf_efficientnet_el.in1k (8.0 at "
                               "300x300)"),
    "ssd_mobilenet_v1": (6_790_000, 1.25, _HAILO_DET + ": ssd_mobilenet_v1, 6.79 M, 2.5 GOPs at 300x300"),
    "ssd_mobilenet_v2": (4_460_000, 0.76, _HAILO_DET + ": ssd_mobilenet_v2, 4.46 M, 1.52 GOPs at 300x300"),
    "yolov8s": (11_166_560, 14.3, "https://docs.ultralytics.com/models/yolov8/ (YOLOv8s: 11.2 M parameters, "
                "28.6 GFLOPs = 2 x GMACs at 640x640; 11,166,560 from the model summary)"),
    "resnet50_v2": (25_595_060, 4.09, "https://github.com/apache/mxnet/blob/master/docs/api/python/gluon/model_zoo.md "
                    "(Gluon model zoo: resnet50_v2, 25,595,060 parameters, counting each BatchNorm's running mean and "
                    "variance; the ONNX model zoo's resnet50-v2-7 is this network and publishes no counts). No "
                    "published GMACs for v2: its convolutions and classifier are torchvision's resnet50 (v1.5, "
                    "stride in the 3x3), so 4.09 GMACs from " + _TV),
    "yolov5n": (1_900_000, 2.25, _V5.format("n", "1.9", "4.5", "")),
    "yolov5s": (7_225_885, 8.25, _V5.format("s", "7.2", "16.5", "; 7,225,885 from the fused model summary in the "
                                            "repository's tutorial.ipynb")),
    "yolov5m": (21_200_000, 24.5, _V5.format("m", "21.2", "49.0", "")),
    "yolov5s_relu": (7_225_885, 8.25, "as yolov5s: rknn_model_zoo's yolov5s_relu.onnx (airockchip/yolov5) is YOLOv5s "
                     "with ReLU for SiLU, the same convolutions; " + _V5.format("s", "7.2", "16.5", "")),
    "yolov8m": (25_902_640, 39.45, "https://docs.ultralytics.com/models/yolov8/ (YOLOv8m: 25.9 M parameters, "
                "78.9 GFLOPs = 2 x GMACs at 640x640; 25,902,640 from the model summary in "
                "ultralytics/cfg/models/v8/yolov8.yaml)"),
    "yolox_s": (9_000_000, 13.4, _YOLOX.format("s", "9.0", "26.8")),
    "yolox_m": (25_300_000, 36.9, _YOLOX.format("m", "25.3", "73.8")),
    "yolov7_tiny": (6_219_709, 6.9, "https://arxiv.org/abs/2207.02696 (YOLOv7 paper, Table 2: YOLOv7-tiny-SiLU, the "
                    "same graph with SiLU, 6.2 M parameters, 13.8 GFLOPs = 2 x GMACs at 640x640; the repository README "
                    "lists neither); 6,219,709 from the fused model summary of yolov7-tiny.pt in "
                    "https://github.com/WongKinYiu/yolov7 tools/YOLOv7CoreML.ipynb"),
}
