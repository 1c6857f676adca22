"""What is inside a model file: format, version, inputs/outputs, operators, parameters, FLOPs, precision.

Reads the file itself, without a runtime where the format allows:

- ONNX: IR version, opsets, producer; operators of the main graph and of every subgraph (If/Loop
  bodies); parameters = elements of the initializers and ``Constant`` nodes; custom operators = those the ``onnx``
  package has no schema for (vendor domains such as ``com.microsoft`` included).
- TFLite: schema version; operators of every subgraph; parameters = elements of the tensors
  that carry constant data; custom operators by their custom code.
- OpenVINO IR: the ``.xml`` layers (``Parameter``, ``Result`` and ``Const`` are not operators);
  parameters = elements of ``Const`` layers; layers outside the ``opsetN`` sets are custom.
- MNN: the graph MNN's own ``expr.load_as_dict`` exposes (one entry per named tensor, so an
  operator with several outputs counts once per output); no FLOPs.

FLOPs and MACs come from :func:`edgekit.models.flops.count_flops` (ONNX, TFLite); precision
from :func:`edgekit.models.precision.model_precision`.

Example::

    s = inspect_model("det.onnx")
    s.format_version, s.operators["Conv"], s.parameters, s.flops, s.precision
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from edgekit.models.formats import ModelFile, open_model
from edgekit.tensors import TensorSpec, concrete_dims

__all__ = ["ModelSummary", "inspect_model"]


@dataclass
class ModelSummary:
    """The facts :func:`inspect_model` gathers; ``None`` where the format does not tell."""

    path: str
    format: str
    format_version: str
    size_bytes: int
    inputs: list[TensorSpec] | None
    outputs: list[TensorSpec] | None
    operators: dict[str, int]  # op type -> count, most frequent first
    parameters: int | None
    precision: str
    custom_ops: list[str] = field(default_factory=list)
    producer: str = ""
    opsets: dict[str, int] = field(default_factory=dict)
    flops: int | None = None
    macs: int | None = None
    flops_by_type: list[tuple[str, int, int]] = field(default_factory=list)
    uncounted: list[str] = field(default_factory=list)  # op types whose FLOPs are unknown
    #: input -> the shape FLOPs were counted at, for dynamic inputs no ``input_shapes`` fixed (ONNX)
    assumed_shapes: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def quantized(self) -> bool:
        """True for an int8-quantized model."""
        return self.precision == "int8"

    @property
    def node_count(self) -> int:
        return sum(self.operators.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tensors as ``{"name", "shape", "dtype"}``."""
        d = asdict(self)
        for key in ("inputs", "outputs"):
            specs = getattr(self, key)
            d[key] = None if specs is None else [_spec(s) for s in specs]
        d["quantized"] = self.quantized
        d["node_count"] = self.node_count
        return d


def _spec(s: TensorSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype)}
    if s.quantization:
        out["quantization"] = list(s.quantization)
    return out


def inspect_model(model: str | os.PathLike[str] | ModelFile, *, flops: bool = True,
                  input_shapes: Mapping[str, Sequence[int]] | None = None) -> ModelSummary:
    """Summarise a model file (see the module docstring for what each format gives).

    ``input_shapes`` fixes dynamic input dimensions for the FLOP count (ONNX); the others take the shape
    ``edgekit profile`` feeds (:func:`edgekit.tensors.concrete_dims`: an image input's height and width
    224, other dynamic dimensions 1), recorded in ``assumed_shapes`` and said in ``notes``.

    >>> inspect_model("conv_relu.onnx").operators   # doctest: +SKIP
    {'Conv': 1, 'Relu': 1}
    """
    from edgekit.models.precision import model_precision

    mf = open_model(model)
    reader = {"onnx": _onnx, "tflite": _tflite, "openvino": _ir, "mnn": _mnn}[mf.format]
    summary = reader(mf)
    summary.precision = model_precision(mf)
    if flops and mf.format in ("onnx", "tflite"):
        from edgekit.models.flops import count_flops

        shapes = dict(input_shapes or {})
        dynamic = [s for s in summary.inputs or [] if s.is_dynamic and s.name not in shapes]
        if mf.format == "onnx":  # the shapes `edgekit profile` feeds (one rule: tensors.concrete_dims)
            from edgekit.tools.verify import IMAGE_SIDE

            summary.assumed_shapes = {s.name: list(concrete_dims(s, IMAGE_SIDE)) for s in dynamic}
            shapes.update(summary.assumed_shapes)
        fc = count_flops(mf, shapes or None)
        summary.flops, summary.macs = fc.flops, fc.macs
        summary.flops_by_type = [t for t in fc.by_type() if t[1] or t[2]]
        summary.uncounted = list(fc.uncounted)
        if summary.assumed_shapes:
            given = ", ".join(f"{n}={'x'.join(map(str, d))}" for n, d in summary.assumed_shapes.items())
            summary.notes.append(f"FLOPs counted at {given} for the dynamic dimensions: the size `edgekit profile` "
                                 f"feeds (height and width {IMAGE_SIDE} for an image input, other dynamic "
                                 "dimensions 1); --shape counts another size.")
        elif dynamic:
            summary.notes.append("FLOPs counted at the tensor shapes stored in the file (TFLite keeps 1 for a "
                                 "dynamic dimension there).")
    elif flops:
        summary.notes.append(f"FLOPs are counted for ONNX and TFLite; inspect the model {mf.format} came from.")
    return summary


def _histogram(types: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(types).items(), key=lambda kv: (-kv[1], kv[0])))


def _base(mf: ModelFile, version: str, ops: list[str], params: int | None, **kw: Any) -> ModelSummary:
    return ModelSummary(path=str(mf.path), format=mf.format, format_version=version, size_bytes=mf.size,
                        inputs=kw.pop("inputs", None), outputs=kw.pop("outputs", None),
                        operators=_histogram(ops), parameters=params, precision="fp32", **kw)


# -- ONNX ----------------------------------------------------------------------------------

def _onnx(mf: ModelFile) -> ModelSummary:
    import onnx

    from edgekit.models.model_io import onnx_io

    proto = onnx.load(str(mf.path), load_external_data=False)
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import}
    types: list[str] = []
    custom: set[str] = set()
    params = 0
    graphs = [proto.graph]
    while graphs:
        g = graphs.pop()
        params += sum(math.prod(i.dims) for i in g.initializer)
        for node in g.node:
            domain = node.domain if node.domain not in ("", "ai.onnx") else ""
            name = f"{domain}:{node.op_type}" if domain else node.op_type
            types.append(name)
            if node.op_type == "Constant" and not domain:
                params += sum(math.prod(a.t.dims) for a in node.attribute if a.name == "value")
            if not onnx.defs.has(node.op_type, domain):
                custom.add(name)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    graphs.append(a.g)
                graphs.extend(a.graphs)
    ins, outs = onnx_io(mf.path)
    producer = " ".join(x for x in (proto.producer_name, proto.producer_version) if x)
    version = f"ONNX IR {proto.ir_version}, opset " + ", ".join(
        f"{d} {v}" if d != "ai.onnx" else str(v) for d, v in sorted(opsets.items(), key=lambda kv: kv[0] != "ai.onnx"))
    notes = [f"{sum(1 for f in proto.functions)} model-local function(s)"] if proto.functions else []
    return _base(mf, version, types, params, inputs=ins, outputs=outs, custom_ops=sorted(custom),
                 producer=producer, opsets=opsets, notes=notes)


# -- TFLite --------------------------------------------------------------------------------

def _tflite(mf: ModelFile) -> ModelSummary:
    from edgekit.models import tflite_schema
    from edgekit.models.model_io import tflite_io

    info = tflite_schema.read_file(mf.path)
    types = [op.name for sg in info.subgraphs for op in sg.operators]
    params = sum(math.prod(t.shape) for sg in info.subgraphs for t in sg.tensors if t.nbytes > 0)
    custom = sorted({op.name for sg in info.subgraphs for op in sg.operators if op.custom})
    ins, outs = tflite_io(mf.path)
    notes = [f"{len(info.subgraphs)} subgraphs; operators of all are counted"] if len(info.subgraphs) > 1 else []
    return _base(mf, f"TFLite schema {info.version}", types, params, inputs=ins, outputs=outs,
                 custom_ops=custom, producer=info.description, notes=notes)


# -- OpenVINO IR ---------------------------------------------------------------------------

_IR_TYPES = {"f32": "float32", "f16": "float16", "f64": "float64", "i8": "int8", "u8": "uint8", "i16": "int16",
             "u16": "uint16", "i32": "int32", "u32": "uint32", "i64": "int64", "u64": "uint64", "boolean": "bool"}


def _ir_dims(port: Any) -> tuple[int | None, ...]:
    return tuple(None if int(d.text) < 0 else int(d.text) for d in port.findall("dim"))


def _ir(mf: ModelFile) -> ModelSummary:
    import xml.etree.ElementTree as ET

    import numpy as np

    root = ET.parse(mf.path).getroot()
    layers = list(root.iter("layer"))
    types: list[str] = []
    custom: set[str] = set()
    params = 0
    for layer in layers:
        kind = layer.get("type", "?")
        if kind == "Const":
            data = layer.find("data")
            shape = (data.get("shape", "") if data is not None else "").replace(" ", "")
            params += math.prod(int(d) for d in shape.split(",")) if shape else 1
            continue
        if kind in ("Parameter", "Result"):
            continue
        types.append(kind)
        if not (layer.get("version") or "opset").startswith("opset"):
            custom.add(f"{layer.get('version')}:{kind}")
    top = root.find("layers")
    ports = {(e.get("to-layer"), e.get("to-port")): (e.get("from-layer"), e.get("from-port"))
             for e in root.find("edges") or []}
    by_id = {lay.get("id"): lay for lay in (top if top is not None else [])}

    def out_names(layer_id: str, port_id: str) -> str | None:
        port = by_id[layer_id].find(f"output/port[@id='{port_id}']")
        names = port.get("names") if port is not None else None
        return names.split(",")[0].strip() if names else None

    ins, outs = [], []
    for lay in by_id.values():
        data = lay.find("data")
        dtype = np.dtype(_IR_TYPES.get(data.get("element_type", "f32") if data is not None else "f32", "float32"))
        if lay.get("type") == "Parameter":
            port = lay.find("output/port")
            name = str((port.get("names") if port is not None else None) or lay.get("name") or "")
            name = name.split(",")[0].strip()
            ins.append(TensorSpec(name, _ir_dims(port) if port is not None else (), dtype))
        elif lay.get("type") == "Result":
            port = lay.find("input/port")
            src = ports.get((lay.get("id"), port.get("id") if port is not None else "0"))
            src_id, src_port = src if src else (None, None)
            name = str(lay.get("output_names") or (out_names(src_id, src_port) if src_id and src_port else None)
                       or lay.get("name") or "")
            prec = (port.get("precision") or "FP32").lower() if port is not None else "fp32"
            dt = {"fp32": "float32", "fp16": "float16", "i64": "int64", "i32": "int32", "u8": "uint8",
                  "i8": "int8", "boolean": "bool"}.get(prec, "float32")
            dims = _ir_dims(port) if port is not None else ()
            outs.append(TensorSpec(name.split(",")[0].strip(), dims, np.dtype(dt)))
    rt = root.find("rt_info/Runtime_version")
    producer = f"OpenVINO {rt.get('value')}" if rt is not None else ""
    return _base(mf, f"OpenVINO IR v{root.get('version', '?')}", types, params, inputs=ins, outputs=outs,
                 custom_ops=sorted(custom), producer=producer)


# -- MNN -----------------------------------------------------------------------------------

def _mnn(mf: ModelFile) -> ModelSummary:
    try:
        from edgekit.runtimes._capture import captured_output

        with captured_output():
            import MNN

            variables = MNN.expr.load_as_dict(str(mf.path))
            types = [str(v.op_type) for v in variables.values()]
    except ImportError:
        return _base(mf, "MNN", [], None, notes=["graph not exposed: MNN is not installed "
                                                 "(pip install 'edgekit[mnn]' to list its operators)"])
    except Exception as exc:  # noqa: BLE001 - the expr API refuses some graphs; the rest still helps
        return _base(mf, "MNN", [], None, notes=[f"graph not exposed: MNN's expr API could not read it ({exc})"])
    from edgekit.predictor import load

    with load(mf, runtime="mnn", threads=1) as m:  # the adapter knows the I/O names and order
        ins, outs = m.inputs, m.outputs
    ops = [t for t in types if t not in ("Const", "Input")]
    notes = ["operators as MNN's expr API exposes them (one per named tensor); parameters are not counted "
             "(MNN keeps weights inside its operators)"]
    return _base(mf, "MNN", ops, None, inputs=ins, outputs=outs, notes=notes)


