"""Inputs and outputs as the model file declares them, for adapters whose runtime hides them.

OpenCV's ``cv2.dnn`` exposes no input specs and renames outputs to layer names, and
OpenVINO may give a tensor several names or none; both adapters read the model's own
names, shapes and dtypes here, with the ``onnx`` package (a core
dependency of edgekit, imported inside the function) and edgekit's bounds-checked
TFLite reader.

Example::

    inputs, outputs = model_io(open_model("det.tflite"))
    [s.name for s in outputs]          # the TFLite tensor names, in model order
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import CorruptModelError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.tensors import Dim, TensorSpec

__all__ = ["NUMPY_ELEM_TYPES", "element_type", "model_io", "onnx_io", "tflite_io"]

#: ONNX element types that have a numpy dtype
NUMPY_ELEM_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13})


def model_io(model: ModelFile) -> tuple[list[TensorSpec], list[TensorSpec]] | None:
    """``(inputs, outputs)`` read from an ONNX or TFLite file; ``None`` for other formats."""
    if model.format == "onnx":
        return onnx_io(model.path)
    if model.format == "tflite":
        return tflite_io(model.path)
    return None


def onnx_io(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Graph inputs (initializers excluded) and outputs of an ONNX model, in graph order."""
    import onnx
    from onnx import helper

    proto = onnx.load(str(path), load_external_data=False)
    graph = proto.graph
    inits = {i.name for i in graph.initializer}

    def spec(vi: onnx.ValueInfoProto) -> TensorSpec:
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedModelError(
                f"{path.name}: graph input/output {vi.name!r} is not a tensor (sequence/map/optional); "
                "edgekit passes numpy arrays only. Re-export the model with tensor inputs and outputs."
            )
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, TypeError, ValueError) as exc:
            raise UnsupportedModelError(
                f"{path.name}: tensor {vi.name!r} has ONNX element type {tt.elem_type}, which edgekit does not map "
                "to numpy. Cast it to a numeric type in the model."
            ) from exc
        dims: tuple[Dim, ...] = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else (d.dim_param or None) for d in tt.shape.dim
        )
        return TensorSpec(vi.name, dims, dtype)

    inputs = [spec(vi) for vi in graph.input if vi.name not in inits]
    return inputs, [spec(vi) for vi in graph.output]


def tflite_io(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of the first subgraph of a TFLite model (4-D tensors marked NHWC).

    Read with :mod:`edgekit.models.tflite_schema`, whose reader checks every offset.
    """
    from edgekit.models import tflite_schema

    info = tflite_schema.read_file(path)
    if not info.subgraphs:
        raise CorruptModelError(f"{path}: the TFLite model has no subgraph. Re-export it.")
    graph = info.subgraphs[0]

    def spec(t: tflite_schema.TensorInfo) -> TensorSpec:
        try:
            dtype = np.dtype(t.dtype)
        except (TypeError, ValueError) as exc:
            raise UnsupportedModelError(
                f"{path.name}: tensor {t.name!r} has TFLite type {t.dtype}, which has no numpy dtype; "
                "edgekit passes numpy arrays only."
            ) from exc
        dims = t.shape_signature if t.shape_signature else t.shape
        shape: tuple[Dim, ...] = tuple(None if d < 0 else int(d) for d in dims)
        quant = None
        if t.quantization is not None and len(t.quantization[0]) == 1:  # per-tensor
            zps = t.quantization[1]
            quant = (float(t.quantization[0][0]), int(zps[0]) if zps else 0)
        return TensorSpec(t.name, shape, dtype, quant, layout="NHWC" if len(shape) == 4 else None)

    return [spec(t) for t in graph.inputs], [spec(t) for t in graph.outputs]


def element_type(vi: Any) -> str:
    """The numpy-style name of a graph tensor's element type (``"float32"``), or the ONNX name in lower case."""
    from onnx import TensorProto, helper

    elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
    if elem in NUMPY_ELEM_TYPES:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name
    return TensorProto.DataType.Name(elem).lower() if elem else ""
