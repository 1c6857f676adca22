"""The numeric precision a model file was saved in: ``"int8"``, ``"fp16"`` or ``"fp32"``.

Placement needs it before opening anything: an int8-only accelerator (Edge TPU, Hailo,
RKNN's int8 path) cannot run a float model, and a runtime never quantizes on load.

- ONNX: ``int8`` when the graph has quantization operators (QuantizeLinear, DequantizeLinear,
  QLinear*, *Integer, DynamicQuantize*) or 8-bit integer initializers feeding them;
  else ``fp16`` when float16 initializers outweigh float32 ones; else ``fp32``.
- TFLite: ``int8`` when a constant int8/uint8 tensor carries quantization parameters
  (full-integer and weight-only quantized models alike); ``fp16`` when float16 constants
  outweigh float32 ones; else ``fp32``.
- OpenVINO IR: ``int8`` with FakeQuantize layers or i8/u8 constants; ``fp16`` when f16
  constants outweigh f32; else ``fp32``.
- MNN: the format does not say in a way we read without MNN; ``fp32`` is assumed.

Example::

    model_precision(open_model("det_int8.onnx"))     # 'int8'
    model_precision(open_model("face.tflite"))       # 'fp32'
"""

from __future__ import annotations

from typing import Literal

from edgekit.models.formats import ModelFile

__all__ = ["Precision", "model_precision"]

Precision = Literal["fp32", "fp16", "int8"]

_ONNX_QUANT_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
    "ConvInteger", "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSoftmax", "QGemm",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulNBits", "DequantizeBFP",
}


def model_precision(mf: ModelFile) -> Precision:
    """``"int8"``, ``"fp16"`` or ``"fp32"`` for an opened model file (see the module docstring).

    >>> model_precision(open_model("int8_fc.onnx"))   # doctest: +SKIP
    'int8'
    """
    if mf.format == "onnx":
        return _onnx(mf)
    if mf.format == "tflite":
        return _tflite(mf)
    if mf.format == "openvino":
        return _ir(mf)
    return "fp32"


def _by_weight(fp16_bytes: int, fp32_bytes: int) -> Precision:
    return "fp16" if fp16_bytes > fp32_bytes else "fp32"


def _onnx(mf: ModelFile) -> Precision:
    import onnx
    from onnx import TensorProto

    proto = onnx.load(str(mf.path), load_external_data=False)
    graphs = [proto.graph]
    ops: set[str] = set()
    sizes = {"int8": 0, "fp16": 0, "fp32": 0}
    while graphs:
        g = graphs.pop()
        for node in g.node:
            ops.add(node.op_type)
            graphs.extend(a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH)
            graphs.extend(a.graphs[i] for a in node.attribute for i in range(len(a.graphs)))
        for init in g.initializer:
            n = 1
            for d in init.dims:
                n *= d
            if init.data_type in (TensorProto.INT8, TensorProto.UINT8):
                sizes["int8"] += n
            elif init.data_type == TensorProto.FLOAT16:
                sizes["fp16"] += 2 * n
            elif init.data_type == TensorProto.FLOAT:
                sizes["fp32"] += 4 * n
    if ops & _ONNX_QUANT_OPS:
        return "int8"
    return _by_weight(sizes["fp16"], sizes["fp32"])


def _tflite(mf: ModelFile) -> Precision:
    from edgekit.models import tflite_schema

    info = tflite_schema.read_file(mf.path)
    fp16 = fp32 = 0
    for sg in info.subgraphs:
        for t in sg.tensors:
            if t.dtype in ("int8", "uint8") and t.quantization is not None and t.nbytes > 0:
                return "int8"
            if t.dtype == "float16":
                fp16 += t.nbytes
            elif t.dtype == "float32":
                fp32 += t.nbytes
    return _by_weight(fp16, fp32)


def _ir(mf: ModelFile) -> Precision:
    import xml.etree.ElementTree as ET

    root = ET.parse(mf.path).getroot()
    fp16 = fp32 = 0
    for layer in root.iter("layer"):
        if layer.get("type") == "FakeQuantize":
            return "int8"
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        if data is None:
            continue
        etype, size = data.get("element_type", ""), int(data.get("size", "0") or 0)
        if etype in ("i8", "u8"):
            return "int8"
        if etype == "f16":
            fp16 += size
        elif etype == "f32":
            fp32 += size
    return _by_weight(fp16, fp32)
