"""Inputs and outputs as the model file declares them, for adapters whose runtime hides them.

OpenCV's ``cv2.dnn`` exposes no input specs and renames outputs to layer names, and
OpenVINO may give a tensor several names or none; both adapters read the model's own
names, shapes and dtypes here, with the ``onnx`` and ``tflite`` packages (core
dependencies of edgekit, imported inside the functions).

Example::

    inputs, outputs = model_io(open_model("det.tflite"))
    [s.name for s in outputs]          # the TFLite tensor names, in model order
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import CorruptModelError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.tensors import Dim, TensorSpec

__all__ = ["model_io", "onnx_io", "tflite_io"]

#: TFLite TensorType code -> numpy dtype (codes from the TFLite schema's TensorType enum)
_TFLITE_DTYPES: dict[int, type] = {
    0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
    8: np.complex64, 9: np.int8, 10: np.float64, 11: np.complex128, 12: np.uint64, 15: np.uint32, 16: np.uint16,
}


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
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim
        )
        return TensorSpec(vi.name, dims, dtype)

    inputs = [spec(vi) for vi in graph.input if vi.name not in inits]
    return inputs, [spec(vi) for vi in graph.output]


def tflite_io(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of the first subgraph of a TFLite model (4-D tensors marked NHWC)."""
    import tflite

    buf = path.read_bytes()
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() < 1:
            raise CorruptModelError(f"{path}: the TFLite model has no subgraph. Re-export it.")
        graph = model.Subgraphs(0)

        def spec(index: int) -> TensorSpec:
            t = graph.Tensors(index)
            name = t.Name().decode("utf-8", "replace")
            if t.Type() not in _TFLITE_DTYPES:
                raise UnsupportedModelError(
                    f"{path.name}: tensor {name!r} has TFLite type code {t.Type()}, which edgekit does not map to numpy."
                )
            if t.ShapeSignatureLength() > 0:
                dims: tuple[Dim, ...] = tuple(None if d < 0 else int(d) for d in t.ShapeSignatureAsNumpy())
            else:
                dims = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() > 0 else ()
            quant = None
            q = t.Quantization()
            if q is not None and q.ScaleLength() == 1:
                zp = int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0
                quant = (float(q.Scale(0)), zp)
            return TensorSpec(name, dims, np.dtype(_TFLITE_DTYPES[t.Type()]), quant,
                              layout="NHWC" if len(dims) == 4 else None)

        inputs = [spec(int(graph.Inputs(i))) for i in range(graph.InputsLength())]
        outputs = [spec(int(graph.Outputs(i))) for i in range(graph.OutputsLength())]
    except (IndexError, ValueError, TypeError, UnicodeError) as exc:  # flatbuffers raises these on bad offsets
        raise CorruptModelError(f"{path}: cannot read the TFLite tensors ({exc}). Re-export or re-download it.") from exc
    return inputs, outputs
