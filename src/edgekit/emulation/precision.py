"""Model rewrites that give the emulated run the device's numerics.

- fp16 / bf16 accelerators: :func:`round_through` inserts ``Cast(to fp16) -> Cast(to fp32)`` after
  every float output of the nodes placed on the accelerator, on graph inputs they read, and
  rounds the float initializers they read, in a copy of the ONNX model. ONNX Runtime's CPU
  kernels then compute in fp32 between roundings, as an fp16 unit with fp32 accumulation does;
  nodes left on the CPU keep fp32. For TFLite, :func:`round_tflite_weights` rounds the weights
  only (activations stay fp32: inserting casts into a flatbuffer is not done).
- int8-only accelerators: :func:`quantize_onnx` quantizes a float ONNX model with calibration
  data (static QDQ, int8 activations and per-channel int8 weights, ONNX Runtime's quantizer:
  ``edgekit.tools.quantize`` did not exist when this was written).
- static shapes: :func:`fix_input_shapes`.

Example::

    model = onnx.load("det.onnx")
    rounded = round_through(model, {"conv1", "relu1"}, "fp16")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError, InvalidOptionError, UnsupportedModelError, option
from edgekit.tensors import TensorSpec, bind_inputs

__all__ = ["dynamic_inputs", "fix_input_shapes", "quantize_onnx", "round_through", "round_tflite_weights"]

_CAST_TO = {"fp16": 10, "bf16": 16}  # onnx.TensorProto.FLOAT16 / BFLOAT16
_FLOAT = 1  # onnx.TensorProto.FLOAT


def dynamic_inputs(model: Any) -> list[str]:
    """Names of graph inputs with a dimension that is not a fixed positive integer."""
    inits = {i.name for i in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            out.append(vi.name)
    return out


def fix_input_shapes(model: Any, input_shapes: Mapping[str, Sequence[int]]) -> Any:
    """A copy of ``model`` whose inputs named in ``input_shapes`` have those fixed dimensions."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    known = {vi.name: vi for vi in fixed.graph.input}
    for name, shape in input_shapes.items():
        given = option("input_shapes", {name: tuple(shape)}, cli_value=f"{name}={'x'.join(map(str, shape))}")
        if name not in known:
            raise InvalidOptionError(f"{given} names {name!r}, which is not an input of the model; its inputs "
                                     f"are {dynamic_inputs(model) or list(known)}.")
        dims = known[name].type.tensor_type.shape.dim
        if len(shape) != len(dims):
            raise InvalidOptionError(f"{given} has rank {len(shape)}; the input has rank {len(dims)}: give one "
                                     "size per dimension.")
        for d, value in zip(dims, shape):
            if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != int(value):
                raise InvalidOptionError(f"{given} contradicts the model's fixed dimension {d.dim_value}; keep the "
                                         "fixed dimensions as they are.")
            d.Clear()
            d.dim_value = int(value)
    return fixed


def round_through(model: Any, nodes: set[str], precision: str) -> Any:
    """A copy of ``model`` where the float tensors the named ``nodes`` read and write pass through ``precision``."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    to = _CAST_TO[precision]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    try:
        m = shape_inference.infer_shapes(m, strict_mode=False)  # element types of intermediate tensors
    except Exception:  # noqa: BLE001 - types refine the result; without them ops match by name
        pass
    g = m.graph
    float_vals = {vi.name for vi in list(g.input) + list(g.value_info) + list(g.output)
                  if vi.type.tensor_type.elem_type == _FLOAT}
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    on = [n for i, n in enumerate(g.node) if (n.name or f"{n.op_type}_{i}") in nodes]  # names as graph.py gives them
    new_nodes: dict[int, list[Any]] = {}  # insert after node position
    head: list[Any] = []
    rounded_inits: dict[str, str] = {}

    def pair(src: str, dst: str, tag: str) -> list[Any]:
        mid = f"{dst}__{precision}"
        return [helper.make_node("Cast", [src], [mid], to=to, name=f"{tag}__to_{precision}"),
                helper.make_node("Cast", [mid], [dst], to=_FLOAT, name=f"{tag}__from_{precision}")]

    graph_inputs = {vi.name for vi in g.input if vi.name not in inits}
    rounded_inputs: dict[str, str] = {}
    for n in on:  # initializers and graph inputs read by accelerator nodes
        for k, t in enumerate(n.input):
            if t in inits and inits[t].data_type == _FLOAT:
                if t not in rounded_inits:
                    arr = numpy_helper.to_array(inits[t])
                    if precision == "fp16":
                        r = arr.astype(np.float16).astype(np.float32)
                    else:  # bf16: round to nearest even on the top 16 bits
                        u = arr.astype(np.float32).view(np.uint32)
                        r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).view(np.float32)
                    if all(c.name in nodes for c in consumers.get(t, [])):
                        inits[t].CopyFrom(numpy_helper.from_array(r.astype(np.float32), t))
                        rounded_inits[t] = t
                    else:
                        name = f"{t}__{precision}_rounded"
                        g.initializer.append(numpy_helper.from_array(r.astype(np.float32), name))
                        rounded_inits[t] = name
                n.input[k] = rounded_inits[t]
            elif t in graph_inputs and t in float_vals:
                if t not in rounded_inputs:
                    rounded_inputs[t] = f"{t}__rounded"
                    head.extend(pair(t, rounded_inputs[t], f"{t}_input"))
                n.input[k] = rounded_inputs[t]
    positions = {id(n): i for i, n in enumerate(g.node)}
    for n in on:
        for k, t in enumerate(n.output):
            if t and t in float_vals:
                raw = f"{t}__raw"
                n.output[k] = raw
                new_nodes.setdefault(positions[id(n)], []).extend(pair(raw, t, n.name or t))
    ordered = list(head)
    for i, n in enumerate(g.node):
        ordered.append(n)
        ordered.extend(new_nodes.get(i, []))
    del g.node[:]
    g.node.extend(ordered)
    return m


def quantize_onnx(src: Path, dst: Path, calibration: Iterable[Any], inputs: list[TensorSpec]) -> None:
    """Static QDQ quantization of ``src`` into ``dst`` (int8 activations, per-channel int8 weights).

    ``calibration``: an iterable of samples, each a dict by input name, a list/tuple in input order,
    or one array for a single-input model (the forms ``Predictor.run`` accepts).
    """
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError as exc:
        raise UnsupportedModelError("quantizing for an int8-only accelerator needs onnxruntime.quantization: "
                                    "pip install 'edgekit[onnxruntime]'.") from exc
    try:
        samples = [bind_inputs(inputs, s) for s in calibration]
    except InputError as exc:
        raise InvalidOptionError(f"calibration: a sample does not match the model's inputs ({exc}). Pass an iterable "
                                 "of samples, each a dict by input name, a list in input order, or one array.") from exc
    if not samples:
        raise InvalidOptionError("calibration= is empty: give at least one representative input sample.")

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter(samples)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    import onnx

    opset = max((o.version for o in onnx.load(str(src), load_external_data=False).opset_import
                 if o.domain in ("", "ai.onnx")), default=13)
    try:
        quantize_static(str(src), str(dst), _Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=opset >= 13)
    except Exception as exc:
        raise UnsupportedModelError(f"ONNX Runtime's quantizer failed on {src.name}: {type(exc).__name__}: {exc}. "
                                    "Quantize the model yourself (e.g. `edgekit quantize`) and load the int8 model."
                                    ) from exc


def round_tflite_weights(src: Path, dst: Path, tensors: set[str], precision: str) -> int:
    """Copy ``src`` to ``dst`` with the float32 constant tensors named in ``tensors`` rounded; returns how many.

    The tensors are found with edgekit's bounds-checked reader; their bytes are rewritten in a
    copy of the file (a broken file raises :class:`~edgekit.errors.CorruptModelError`).

    >>> round_tflite_weights(Path("m.tflite"), Path("m16.tflite"), {"conv1/w"}, "fp16")   # doctest: +SKIP
    1
    """
    from edgekit.models import tflite_schema

    info = tflite_schema.read_file(src)
    buf = bytearray(info.data)
    done = 0
    for t in info.subgraphs[0].tensors:
        if t.name not in tensors or t.dtype != "float32":
            continue
        start, length = info.buffers[t.buffer]
        if not length:
            continue
        arr = np.frombuffer(bytes(buf[start:start + length]), np.float32)
        if precision == "fp16":
            r = arr.astype(np.float16).astype(np.float32)
        else:
            u = arr.view(np.uint32)
            r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).view(np.float32)
        buf[start:start + length] = r.astype("<f4").tobytes()
        done += 1
    dst.write_bytes(bytes(buf))
    return done
