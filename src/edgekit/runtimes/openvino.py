"""OpenVINO adapter: OpenVINO devices are accelerators; IR, ONNX and TFLite are read directly.

Accelerators are ``Core().available_devices`` in lower case (``cpu``, ``gpu`` — and
``gpu.0``/``gpu.1`` when there are several —, ``npu``) plus ``auto`` (OpenVINO's AUTO
plugin picks among them). Precision is explicit: OpenVINO computes in bfloat16 by
default on CPUs that have it (outputs off by up to 15 on real models here), so this
adapter always passes ``INFERENCE_PRECISION_HINT`` (f32 unless ``precision="fp16"`` or
``"bf16"``) and reports what the compiled model read back. One ``Core`` serves the
whole process; each thread gets its own ``InferRequest``, so sessions are thread-safe.

Example::

    m = edgekit.load("det.xml", runtime="openvino", threads=2, hint="throughput", profile_ops=True)
    m(x); print(m.op_profile().ops[0])                     # OpTiming(name=..., type='Convolution', time_us=...)
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

import numpy as np

from edgekit.errors import (
    AcceleratorUnavailableError,
    CorruptModelError,
    InputError,
    InvalidOptionError,
    UnsupportedModelError,
)
from edgekit.models.formats import ModelFile
from edgekit.models.model_io import model_io
from edgekit.runtime import OpTiming, Runtime, Session
from edgekit.tensors import Dim, TensorSpec

__all__ = ["OpenVINO"]

#: edgekit precision -> INFERENCE_PRECISION_HINT value
_HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
_FROM_HINT = {"f32": "fp32", "float32": "fp32", "f16": "fp16", "float16": "fp16", "bf16": "bf16", "bfloat16": "bf16"}
_PERF_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}

_core: Any = None
_core_lock = threading.Lock()


def import_openvino() -> Any:
    """``import openvino`` without its telemetry; every place edgekit imports OpenVINO comes here.

    Importing ``openvino`` imports its model converter, which sends a usage event to Google
    Analytics from a forked process and writes a client id under ``~/intel`` (seen under strace
    on 2026.4). edgekit makes no network connection, so before OpenVINO is first imported the
    ``openvino_telemetry`` package is marked unimportable; OpenVINO then uses its own
    ``openvino.tools.ovc.telemetry_stub``, as it does wherever that package is not installed.
    A process that imported OpenVINO (or its telemetry) itself keeps what it chose.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


def core() -> Any:
    """The process's one ``openvino.Core`` (creating Cores is slow; they are safe to share)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = import_openvino().Core()
        return _core


def _device(accelerator: str) -> str:
    """edgekit accelerator name -> OpenVINO device name (``gpu.1`` -> ``GPU.1``)."""
    return accelerator.upper()


def _dtype(element_type: Any, where: str) -> np.dtype:
    try:
        return np.dtype(element_type.to_dtype())
    except Exception as exc:  # OV raises for types numpy lacks (e.g. u4, nf4)
        raise UnsupportedModelError(
            f"{where} has OpenVINO element type {element_type}, which has no numpy dtype. "
            "Convert that input/output to a numeric numpy type in the model."
        ) from exc


def _shape(partial_shape: Any, where: str) -> tuple[Dim, ...]:
    if partial_shape.rank.is_dynamic:
        raise UnsupportedModelError(
            f"{where} has a dynamic rank ({partial_shape}); edgekit needs a known rank. "
            "Fix the rank when exporting, or reshape the model (openvino.Model.reshape) and save it."
        )
    return tuple(None if d.is_dynamic else d.get_length() for d in partial_shape)


def _own_name(port: Any, declared: set[str]) -> str:
    """The model's own name for an OV port: a declared name if it carries one, else a stable one."""
    names = port.get_names()
    for n in sorted(names):
        if n in declared:
            return n
    if names:
        return port.get_any_name()
    node = port.get_node()
    if node.get_type_name() == "Result":  # IR outputs without tensor names: name of the producer
        return node.input_value(0).get_node().get_friendly_name()
    return node.get_friendly_name()


def _ports(ov_ports: list[Any], declared: list[TensorSpec] | None, what: str) -> list[tuple[int, TensorSpec]]:
    """``(OV port index, spec)`` pairs, in the model file's order when it declares one."""
    names = {s.name for s in declared or ()}
    found = []
    for i, p in enumerate(ov_ports):
        name = _own_name(p, names)
        where = f"{what} {name!r}"
        found.append((i, TensorSpec(name, _shape(p.get_partial_shape(), where), _dtype(p.get_element_type(), where))))
    if declared and {s.name for _, s in found} == names and len(found) == len(declared):
        by_name = {s.name: (i, s) for i, s in found}
        return [(by_name[s.name][0], _with_quant(by_name[s.name][1], s)) for s in declared]
    if declared and what == "input" and {s.name for _, s in found} < names:
        # OpenVINO pruned inputs the graph never reads (e.g. CastLike's `like`): keep accepting them
        # (index -1: not fed), so the model's own input list still works.
        by_name = {s.name: (i, s) for i, s in found}
        return [(by_name[s.name][0], _with_quant(by_name[s.name][1], s)) if s.name in by_name else (-1, s)
                for s in declared]
    if (declared and what == "input" and len(found) == len(declared)
            and all(f.dtype == d.dtype and len(f.shape) == len(d.shape) for (_, f), d in zip(found, declared))):
        # OpenVINO renamed an input after the tensor it flows into (x -> Dropout -> y makes both "y");
        # its Parameters keep the file's input order, so the file's names apply by position.
        return [(i, TensorSpec(d.name, f.shape, f.dtype, d.quantization, d.layout)) for (i, f), d in zip(found, declared)]
    return found


def _with_quant(spec: TensorSpec, declared: TensorSpec) -> TensorSpec:
    if declared.quantization is None and declared.layout is None:
        return spec
    return TensorSpec(spec.name, spec.shape, spec.dtype, declared.quantization, declared.layout)


class _OVSession(Session):
    thread_safe = True

    def __init__(self, compiled: Any, model: ModelFile, accelerator: str, precision: str,
                 options: dict[str, Any], declared: Any = False) -> None:
        declared = model_io(model) if declared is False else declared
        ins = _ports(list(compiled.inputs), declared[0] if declared else None, "input")
        outs = _ports(list(compiled.outputs), declared[1] if declared else None, "output")
        super().__init__([s for _, s in ins], [s for _, s in outs], accelerator=accelerator, precision=precision,
                         options=options)
        self._compiled = compiled
        # (OV port, input name) of the inputs OpenVINO kept; results read by port
        self._feed = [(compiled.inputs[i], s.name) for i, s in ins if i >= 0]
        self._fetch = [compiled.outputs[i] for i, _ in outs]
        self._local = threading.local()
        # Dynamic inputs: OpenVINO's CPU plugin does not check a fed shape against the graph; a shape its
        # own shape inference rejects (PP-OCR cls at 32x32: a 2x2 MaxPool on a 1x1 map) corrupted the heap
        # and crashed a later call. Each new shape set is checked once on the read model (12-20 ms).
        self._shape_model: Any = None
        self._feed_index = [i for i, _ in ins if i >= 0]
        self._shape_verdicts: dict[tuple[tuple[int, ...], ...], str] = {}
        self._shape_lock = threading.Lock()

    def _check_shapes(self, key: tuple[tuple[int, ...], ...]) -> None:
        """Raise InputError when OpenVINO's shape inference rejects input shapes ``key`` (cached)."""
        with self._shape_lock:
            verdict = self._shape_verdicts.get(key)
            if verdict is None:
                ov = import_openvino()
                try:
                    clone = self._shape_model.clone()
                    clone.reshape({i: ov.PartialShape(list(shape)) for i, shape in zip(self._feed_index, key)})
                    verdict = ""
                except Exception as exc:  # noqa: BLE001 - OV raises a generic error from shape inference
                    verdict = " ".join(str(exc).strip().splitlines()[:2])[:400] or type(exc).__name__
                if len(self._shape_verdicts) > 256:
                    self._shape_verdicts.clear()
                self._shape_verdicts[key] = verdict
        if verdict:
            shapes = ", ".join(f"{name}: {shape}" for (_, name), shape in zip(self._feed, key))
            raise InputError(
                f"input shape(s) {shapes} do not fit this model: OpenVINO's shape inference rejects them ({verdict}). "
                "Its CPU plugin would run them unchecked and corrupt memory. Feed shapes the model's layers accept "
                "(e.g. the size it was trained on).")

    def _request(self) -> Any:
        req = getattr(self._local, "request", None)
        if req is None:
            if self._compiled is None:
                raise RuntimeError("the OpenVINO session is closed")
            req = self._local.request = self._compiled.create_infer_request()
            self._local.shapes = [None] * len(self._feed)
        return req

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        req = self._request()
        shapes = self._local.shapes
        if self._shape_model is not None:  # dynamic inputs: a new shape set is checked once (see __init__)
            key = tuple(feeds[n].shape for _, n in self._feed)
            if list(key) != shapes:
                self._check_shapes(key)
        # Write straight into the request's own input tensors and copy the results out of its
        # output tensors (which the next infer overwrites): 20% less per-call time than
        # infer(dict).to_tuple() on a 0.12 ms model, the same on large ones.
        for k, (port, name) in enumerate(self._feed):
            x = feeds[name]
            tensor = req.get_tensor(port)
            if shapes[k] != x.shape:
                tensor.shape = x.shape
                shapes[k] = x.shape
            tensor.data[...] = x
        req.infer()
        if self._op_runs is not None:  # opened with profile_ops: keep this run's per-op counters
            self._record_ops(OpTiming(p.node_name, p.node_type, p.real_time.total_seconds() * 1e6, p.exec_type)
                             for p in req.get_profiling_info() if p.status.name == "EXECUTED")
        return [req.get_tensor(port).data.copy() for port in self._fetch]

    def close(self) -> None:
        self._compiled = self._shape_model = None
        self._local = threading.local()


class OpenVINO(Runtime):
    """Intel OpenVINO (``openvino``): CPU, GPU, NPU and AUTO devices."""

    name = "openvino"
    capabilities = frozenset({"op_profile", "dynamic_shapes", "multi_output", "int8"})
    #: the first value of each is what the adapter uses when the option is not given (edgekit.tuning varies one at a time)
    tunables = {"hint": ("latency", "throughput"), "streams": (1, 2)}
    options_help = {
        "hint": "performance hint: latency|throughput|cumulative_throughput (default latency)",
        "config": "dict of OpenVINO properties passed to compile_model (overrides edgekit's)",
        "cache_dir": "folder for OpenVINO's compiled-model cache (faster second load, GPU/NPU above all)",
        "streams": "int >= 1, OpenVINO NUM_STREAMS: parallel inference streams (default: what the hint picks, 1 for latency on one socket)",
    }

    def accelerators(self) -> list[str]:
        self.require()
        devices = [d.lower() for d in core().available_devices]
        present = []
        for d in devices:
            family = d.split(".")[0]
            if family not in present:
                present.append(family)
            if "." in d:
                present.append(d)
        return present + ["auto"]

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        return ("fp32", "fp16", "bf16")

    def import_library(self) -> Any:
        self.require()
        return import_openvino()

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        acc, prec = accelerator, precision or "fp32"
        hint = str(options.get("hint", "latency")).lower()
        if hint not in _PERF_HINTS:
            raise InvalidOptionError(f"openvino: hint={hint!r} is not one of {list(_PERF_HINTS)}; pass hint='latency'.")
        extra = options.get("config") or {}
        if not isinstance(extra, dict):
            raise InvalidOptionError(f"openvino: config= must be a dict of OpenVINO properties, got {type(extra).__name__}.")
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _HINTS[prec], "PERFORMANCE_HINT": _PERF_HINTS[hint]}
        config["INFERENCE_NUM_THREADS"] = threads
        streams = options.get("streams")
        if streams is not None:
            if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
                raise InvalidOptionError(f"openvino: streams={streams!r} must be a whole number >= 1 (NUM_STREAMS); "
                                         "pass e.g. streams=1, or leave it out to let the hint decide.")
            config["NUM_STREAMS"] = streams
        if profile_ops:
            config["PERF_COUNT"] = True
        if options.get("cache_dir"):
            config["CACHE_DIR"] = str(options["cache_dir"])
        if acc == "auto":  # AUTO takes no precision/threads itself; it forwards them to the CPU
            cpu_keys = ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS")
            config["DEVICE_PROPERTIES"] = {"CPU": {k: config.pop(k) for k in cpu_keys if k in config}}
        config.update(extra)
        ov_core = core()
        try:
            weights = str(model.weights) if model.weights else None
            ov_model = ov_core.read_model(str(model.path), weights) if weights else ov_core.read_model(str(model.path))
        except Exception as exc:
            raise _translate(exc, model, acc) from exc
        declared = model_io(model)
        if declared is not None:
            _check_inferred_outputs(ov_model, declared[1], model)
        try:
            compiled = ov_core.compile_model(ov_model, _device(acc), config)
        except Exception as exc:
            raise _translate(exc, model, acc) from exc
        read_back = _read_precision(compiled, prec)
        used_prec = read_back or prec
        used: dict[str, Any] = {"threads": threads, "hint": hint}
        if streams is not None:
            used["streams"] = streams
        if read_back is None:
            used["precision_verified"] = False  # the device does not report it (AUTO): asked for, not read back
        elif used_prec != prec:
            used["precision_requested"] = prec  # e.g. fp16 asked on a CPU without it: OpenVINO uses bf16
        if acc == "auto":
            try:
                used["execution_devices"] = [d.lower() for d in compiled.get_property("EXECUTION_DEVICES")]
            except Exception:  # noqa: BLE001 - informative only
                pass
        for key in ("cache_dir", "config"):
            if options.get(key):
                used[key] = options[key]
        session = _OVSession(compiled, model, acc, used_prec, used, declared)
        if profile_ops:
            session._start_op_recording()
        if any(s.is_dynamic for s in session.inputs):
            session._shape_model = ov_model
        return session


def _check_inferred_outputs(ov_model: Any, declared: list[TensorSpec], model: ModelFile) -> None:
    """Refuse a model whose outputs OpenVINO infers with other static sizes than the file declares.

    Found by fuzzing: a Conv turned into a Resize whose scales were the Conv's bias declared
    output [1,4,8,8]; OpenVINO inferred [0,0,?,1], ran it, and corrupted its heap (a later call crashed).
    """
    by_name = {s.name: s for s in declared}
    for port in ov_model.outputs:
        spec = next((by_name[n] for n in port.get_names() if n in by_name), None)
        shape = port.get_partial_shape()
        if spec is None or shape.rank.is_dynamic or len(spec.shape) != shape.rank.get_length():
            continue
        for want, got in zip(spec.shape, shape):
            if isinstance(want, int) and want >= 0 and got.is_static and got.get_length() != want:
                raise UnsupportedModelError(
                    f"openvino infers output {spec.name!r} of {model.path.name} as {shape}, but the model declares "
                    f"{list(spec.shape)}: its operators do not compute what it says (damaged constants or "
                    "attributes). Re-export the model; OpenVINO would run it and corrupt memory.")


def _read_precision(compiled: Any, asked: str) -> str | None:
    """The precision the compiled model reports, or ``None`` where the device cannot say (AUTO)."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except Exception:  # noqa: BLE001 - AUTO and some plugins do not expose it
        return None
    text = str(getattr(value, "get_type_name", lambda: value)()).lower()
    return _FROM_HINT.get(text, asked)


def _ops(text: str) -> tuple[str, ...]:
    """Operator names from an OpenVINO conversion report, without opset suffixes (``Foo-13``)."""
    ops = [re.sub(r"-\d+$", "", o.strip()) for o in text.split(",") if o.strip()]
    return tuple(dict.fromkeys(ops))


def _translate(exc: Exception, model: ModelFile, accelerator: str) -> Exception:
    msg = str(exc)
    name = model.path.name
    ops: tuple[str, ...] = ()
    for pattern in (r"No conversion rule found for operations: ([^\n]+)", r"Conversion is failed for: ([^\n]+)"):
        for m in re.finditer(pattern, msg):
            ops += _ops(m.group(1))
    ops += tuple(m.group(1) for m in re.finditer(r"Cannot create (\w+) layer", msg))
    ops += tuple(m.group(1) for m in re.finditer(r"No translator found for (\S+) node", msg))
    ops += tuple(m.group(1) for m in re.finditer(r"Unsupported operation of type: (\w+)", msg))
    if ops:
        ops = tuple(dict.fromkeys(ops))
        why = re.search(r"with a message:\n(.+)", msg)  # a failed conversion says why on the next line
        return UnsupportedModelError(
            f"openvino cannot convert or run operator(s) {', '.join(ops)} in {name}"
            + (f" ({why.group(1).strip()[:200]})" if why else "") + ". Try another runtime "
            "(`edgekit check` lists who supports them), or re-export the model without them.",
            operators=ops,
        )
    if "Cannot load library" in msg or "Device with \"" in msg or "not registered in the OpenVINO Runtime" in msg \
            or "Failed to create plugin" in msg or "VCL compiler" in msg:
        try:
            present = [d.lower() for d in core().available_devices]
        except Exception:  # noqa: BLE001
            present = []
        first = next((ln for ln in msg.splitlines() if "Cannot load library" in ln or "Device" in ln), msg.strip())
        return AcceleratorUnavailableError(
            f"openvino cannot use device {_device(accelerator)!r} for {name}: {first.strip()}. "
            f"Devices OpenVINO sees here: {present} (plus 'auto'). Install the device's driver "
            "(OpenCL/Level Zero for GPU, the NPU driver) or choose accelerator='cpu'."
        )
    if re.search(r"(?i)(parse|protobuf|flatbuffer|corrupt|xml|unexpected end)", msg) and "FrontEnd" not in msg:
        return CorruptModelError(f"openvino cannot parse {name}: {msg.strip()}. Re-export or re-download the model.")
    return UnsupportedModelError(f"openvino cannot load {name} on {accelerator}: {msg.strip()}")
