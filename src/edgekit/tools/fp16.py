"""ONNX float32 -> float16, keeping float32 inputs and outputs, written with the ``onnx`` package only.

Why not ``onnxconverter-common``: it is one more dependency for ~150 lines of graph surgery,
and the rules below follow the ONNX schemas themselves instead of a hand-kept block list.

What happens:

- float32 initializers and ``Constant`` values become float16; ``Cast(to=float)`` becomes
  ``Cast(to=float16)``; ``ConstantOfShape`` values and ``dtype`` attributes follow;
- each float32 graph input gets a ``Cast`` to float16 after it, each float32 graph output a
  ``Cast`` back to float32 before it, so callers feed and receive float32 as before;
- constants are moved into initializers first; a node fed a constant beyond float16's range
  (a BatchNormalization variance of 1e8 in PP-OCRv4 det) runs in float32, on the exact values;
- where an operator's schema does not accept float16 at an input (``Resize`` scales, for
  example), that input is fed a float32 copy (constants) or a ``Cast``; where the type
  constraint is shared with its outputs, the whole node runs in float32 between casts. Operators
  without a schema (custom domains) also run in float32.

Models with control-flow subgraphs (If/Loop/Scan) or that are already quantized are refused.

Example::

    convert_float_to_float16("det.onnx", "det.fp16.onnx")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.errors import UnsupportedModelError

__all__ = ["constants_to_initializers", "convert_float_to_float16"]

_F32, _F16 = 1, 10
_FP16_MAX = 65504.0
_DTYPE_ATTRS = {"dtype", "to"}
_HAS_FLOAT = ("tensor(float)", "tensor(float16)")


def constants_to_initializers(proto: Any) -> Any:
    """Move ``Constant`` nodes (with a ``value``) of the main graph into initializers, in place.

    Exporters such as paddle2onnx keep every weight in a Constant node; ONNX Runtime's quantizer
    only quantizes initializers, and the fp16 conversion keeps float32 copies of initializers only.
    """
    graph = proto.graph
    keep = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" \
            and node.domain in ("", "ai.onnx") else None
        if value is None:
            keep.append(node)
            continue
        value.name = node.output[0]
        graph.initializer.append(value)
    del graph.node[:]
    graph.node.extend(keep)
    return proto


def _float_tensors(model: Any) -> set[str]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    g = inferred.graph
    names = {vi.name for vi in [*g.input, *g.value_info, *g.output]
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == _F32}
    names |= {i.name for i in g.initializer if i.data_type == _F32}
    for node in g.node:
        if node.op_type == "Constant":
            names |= {node.output[0] for a in node.attribute if a.name == "value" and a.t.data_type == _F32}
    return names


def _slot(schema: Any, params: list[Any], i: int) -> Any | None:
    if i < len(params):
        return params[i]
    if params and params[-1].option == schema.FormalParameterOption.Variadic:
        return params[-1]
    return None


def _allowed(schema: Any, param: Any) -> set[str]:
    for c in schema.type_constraints:
        if c.type_param_str == param.type_str:
            return set(c.allowed_type_strs)
    return {param.type_str}


def _needs_fp32(schema: Any, node: Any, floats: set[str]) -> tuple[bool, list[int]]:
    """``(whole node in fp32, input slots to feed fp32)`` from the operator's schema."""
    if schema is None:
        return True, []
    out_types = {p.type_str for p in schema.outputs}
    slots = []
    for i, name in enumerate(node.input):
        param = _slot(schema, list(schema.inputs), i)
        if not name or name not in floats or param is None:
            continue
        allowed = _allowed(schema, param)
        if "tensor(float16)" not in allowed:
            if param.type_str in out_types:
                return True, []
            slots.append(i)
    return False, slots


def convert_float_to_float16(model: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write the float16 version of ``model`` (float32 I/O kept) to ``output``; see the module docstring."""
    import numpy as np
    import onnx
    from onnx import defs, helper, numpy_helper

    src = Path(model)
    proto = constants_to_initializers(onnx.load(str(src)))
    g = proto.graph
    for node in g.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise UnsupportedModelError(f"{src.name}: fp16 conversion of models with control-flow subgraphs "
                                        f"({node.op_type}) is not supported; convert to OpenVINO IR with "
                                        "--precision fp16 instead.")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"):
            raise UnsupportedModelError(f"{src.name} is quantized ({node.op_type}); convert the float model.")
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    floats = _float_tensors(proto)
    inits = {i.name: i for i in g.initializer}
    # constants beyond float16's range (a BatchNormalization variance of 1e8 here): their consumers stay float32
    huge = {n for n, i in inits.items() if i.data_type == _F32 and i.dims and
            float(np.abs(numpy_helper.to_array(i)).max(initial=0)) > _FP16_MAX}
    extra_inits: list[Any] = []
    nodes: list[Any] = []
    io_in = {vi.name for vi in g.input if vi.name in floats and vi.name not in inits}
    io_out = {vi.name for vi in g.output if vi.name in floats}
    ren = {n: f"{n}__fp16" for n in io_in | io_out}
    for name in sorted(io_in):
        nodes.append(helper.make_node("Cast", [name], [ren[name]], to=_F16, name=f"{name}__to_fp16"))
    counter = [0]

    def fresh(base: str) -> str:
        counter[0] += 1
        return f"{base}__fp32_{counter[0]}"

    for node in g.node:
        node.input[:] = [ren.get(x, x) for x in node.input]
        node.output[:] = [ren.get(x, x) if x in io_out else x for x in node.output]
        for a in node.attribute:
            if a.name in _DTYPE_ATTRS and a.type == onnx.AttributeProto.INT and a.i == _F32:
                a.i = _F16
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == _F32:
                arr = np.clip(numpy_helper.to_array(a.t), -_FP16_MAX, _FP16_MAX).astype(np.float16)
                a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
        try:
            schema = defs.get_schema(node.op_type, opset, node.domain or "")
        except Exception:  # noqa: BLE001 - onnx raises SchemaError for unknown ops
            schema = None
        whole, slots = _needs_fp32(schema, node, floats | {ren[n] for n in io_in})
        if whole or any(x in huge for x in node.input):
            whole = True
            slots = [i for i, x in enumerate(node.input) if x and (x in floats or x in ren.values())]
        for i in slots:
            x = node.input[i]
            base = x.removesuffix("__fp16")
            if base in inits:  # a constant: a float32 copy keeps its exact values
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[base])
                copy.name = fresh(base)
                extra_inits.append(copy)
                node.input[i] = copy.name
            else:
                y = fresh(base)
                nodes.append(helper.make_node("Cast", [x], [y], to=_F32, name=f"{y}__cast"))
                node.input[i] = y
        post = []
        if whole:
            for j, y in enumerate(node.output):
                if y and (y in floats or y in ren.values()):
                    tmp = fresh(y)
                    node.output[j] = tmp
                    post.append(helper.make_node("Cast", [tmp], [y], to=_F16, name=f"{tmp}__cast"))
        nodes.append(node)
        nodes.extend(post)
    for name in sorted(io_out):
        nodes.append(helper.make_node("Cast", [ren[name]], [name], to=_F32, name=f"{name}__to_fp32"))
    for init in g.initializer:
        if init.data_type == _F32:
            arr = np.clip(numpy_helper.to_array(init), -_FP16_MAX, _FP16_MAX).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    g.initializer.extend(extra_inits)
    used = {x for n in nodes for x in n.input} | {o.name for o in g.output}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    try:
        onnx.checker.check_model(proto)
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    except Exception as exc:
        raise UnsupportedModelError(f"{src.name}: the float16 graph does not validate ({exc}); convert it to "
                                    "OpenVINO IR with --precision fp16 instead.") from exc
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return out


def emulate_float16(model: Any) -> Any:
    """A float32 copy of a float16 ONNX model that rounds to float16 wherever the model stores float16.

    Why: ONNX Runtime's CPU has few float16 kernels; its cast insertion runs the other operators in
    float32 and drops the casts between them as "precision free", so a float16 model there keeps its
    activations in float32 (a Conv->Sigmoid test model: max |diff| 0 against float32, 0.07 with the
    rounding). Here float16 initializers and tensor attributes become float32 (same values),
    ``Cast(to=float16)`` is followed by a cast back, and every other float16 output is computed in
    float32 and then rounded through float16: what a unit computing float16 with float32 accumulation
    gives. The graph's float32 inputs and outputs stay as they are.

    >>> import onnx                                                          # doctest: +SKIP
    >>> onnx.save(emulate_float16(onnx.load("det.fp16.onnx")), "det.fp16-emulated.onnx")  # doctest: +SKIP
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    except Exception as exc:  # without element types the float16 tensors cannot be found
        raise UnsupportedModelError(f"cannot infer the element types of the float16 model ({exc}).") from exc
    g = m.graph
    halves = {vi.name for vi in [*g.value_info, *g.output] if vi.type.tensor_type.elem_type == _F16}

    def widen(t: Any) -> None:
        if t.data_type == _F16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))

    for init in g.initializer:
        widen(init)
    nodes: list[Any] = []
    for node in g.node:
        rounded: list[tuple[str, str]] = []
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                widen(a.t)
            elif a.name == "dtype" and a.type == onnx.AttributeProto.INT and a.i == _F16:
                a.i = _F32
        for j, y in enumerate(node.output):
            if y in halves:
                raw = f"{y}__fp32"
                node.output[j] = raw
                rounded.append((raw, y))
        nodes.append(node)
        for raw, y in rounded:  # Cast(to=float16) included: its output is rounded here, then widened back
            nodes.append(helper.make_node("Cast", [raw], [f"{y}__fp16"], to=_F16, name=f"{y}__round"))
            nodes.append(helper.make_node("Cast", [f"{y}__fp16"], [y], to=_F32, name=f"{y}__widen"))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return m
