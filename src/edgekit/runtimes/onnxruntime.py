"""ONNX Runtime adapter: execution providers are accelerators.

``cpu`` is always present; ``cuda``, ``tensorrt``, ``openvino``, ``coreml``, ``qnn``, ``dml``…
appear when the installed wheel (onnxruntime-gpu, onnxruntime-openvino, …) has them.
Intra-op threads do not spin by default: spinning doubled latency under any competing
load on our test machine. When ORT silently drops a requested provider (it logs and
falls back to CPU), this adapter raises instead. ``InferenceSession.run`` is thread-safe.

Example::

    m = edgekit.load("det.onnx", runtime="onnxruntime", accelerator="cuda", threads=4)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import AcceleratorUnavailableError, CorruptModelError, InvalidOptionError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.runtime import OpProfile, OpTiming, Runtime, Session
from edgekit.tensors import TensorSpec

__all__ = ["OnnxRuntime", "ort_trace_ops"]

#: edgekit accelerator name -> ONNX Runtime execution provider
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "vitisai": "VitisAIExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
}
_EP_TO_NAME = {v: k for k, v in PROVIDERS.items()}

#: providers that can compute in fp16, with the provider options that ask for it
_FP16_PROVIDER_OPTIONS: dict[str, dict[str, Any]] = {
    "tensorrt": {"trt_fp16_enable": True},
    "qnn": {"enable_htp_fp16_precision": "1"},
    "coreml": {},  # the Neural Engine and GPU compute in fp16 by themselves
    "nnapi": {},
    "dml": {},
}

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16, "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32, "tensor(uint32)": np.uint32, "tensor(int64)": np.int64, "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}

_OPTIMIZATION = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                 "all": "ORT_ENABLE_ALL"}


def _spec(arg: Any) -> TensorSpec:
    if arg.type not in _ORT_TYPES:
        raise UnsupportedModelError(f"tensor {arg.name!r} has type {arg.type}, which edgekit does not map to numpy.")
    shape = tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)
    return TensorSpec(arg.name, shape, np.dtype(_ORT_TYPES[arg.type]))


class _OrtSession(Session):
    thread_safe = True

    def __init__(self, sess: Any, accelerator: str, precision: str, options: dict[str, Any],
                 trace_dir: str | None = None) -> None:
        super().__init__([_spec(a) for a in sess.get_inputs()], [_spec(a) for a in sess.get_outputs()],
                         accelerator=accelerator, precision=precision, options=options)
        self._sess = sess
        self._out_names = [o.name for o in self.outputs]
        self.providers = tuple(sess.get_providers())
        self._trace_dir = trace_dir  # ORT's profiler writes its chrome trace here (profile_ops=True)
        self._trace: list[Any] | None = None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(self._out_names, feeds)

    def op_profile(self, skip: int = 0) -> OpProfile | None:
        """Per-node kernel times from ORT's chrome trace. ORT's profiler cannot resume: the first call ends it."""
        if self._trace_dir is None:
            return None
        if self._trace is None:
            import json
            import shutil

            path = self._sess.end_profiling()
            try:
                self._trace = json.loads(Path(path).read_text())
            finally:
                shutil.rmtree(self._trace_dir, ignore_errors=True)
        return ort_trace_ops(self._trace, skip)

    def close(self) -> None:
        self._sess = None  # ORT frees the session when the last reference goes
        if self._trace_dir is not None:
            import shutil

            shutil.rmtree(self._trace_dir, ignore_errors=True)


def ort_trace_ops(events: list[Any], skip: int = 0) -> OpProfile:
    """Operator times of an ONNX Runtime chrome trace, leaving out the first ``skip`` runs.

    Each ``cat == "Node"`` event named ``<node>_kernel_time`` is one operator execution (``dur``
    in µs, ``args.op_name`` its type, ``args.provider`` its execution provider).

    >>> ev = [{"cat": "Session", "name": "model_run", "ts": 0}, {"cat": "Session", "name": "model_run", "ts": 10},
    ...       {"cat": "Node", "name": "c_kernel_time", "ts": 12, "dur": 5, "args": {"op_name": "Conv"}}]
    >>> ort_trace_ops(ev, skip=1)
    OpProfile(runs=1, ops=(OpTiming(name='c', type='Conv', time_us=5.0, kernel=None),))
    """
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[skip] if len(runs) > skip else float("inf")
    totals: dict[str, OpTiming] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time") or e.get("ts", 0) < start:
            continue
        name = e["name"][: -len("_kernel_time")]
        args = e.get("args") or {}
        prev = totals.get(name)
        spent = float(e.get("dur", 0)) + (prev.time_us if prev else 0.0)
        totals[name] = OpTiming(name, str(args.get("op_name", "")), spent, args.get("provider"))
    return OpProfile(max(len(runs) - skip, 0), tuple(totals.values()))


class OnnxRuntime(Runtime):
    """ONNX Runtime (``onnxruntime`` and its GPU/OpenVINO/QNN wheels)."""

    name = "onnxruntime"
    capabilities = frozenset({"op_profile", "dynamic_shapes", "multi_output", "int8"})
    #: the first value of each is the default (edgekit.tuning varies one at a time). Not spinning: it wins in an
    #: idle benchmark and doubles latency under any competing load (see the option).
    tunables = {"optimization": ("all", "extended", "basic"), "execution_mode": ("sequential", "parallel")}
    options_help = {
        "spinning": "bool, let intra-op threads spin (default False)",
        "optimization": "graph optimisation level: disable|basic|extended|all (default all)",
        "execution_mode": "sequential|parallel: run independent branches of the graph in parallel (default sequential)",
        "provider_options": "dict passed to the execution provider",
        "custom_ops": "path (or list of paths) of custom-op libraries to register; never loaded unless given",
    }

    def accelerators(self) -> list[str]:
        import onnxruntime as ort

        return [_EP_TO_NAME[p] for p in ort.get_available_providers() if p in _EP_TO_NAME]

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        return ("fp32", "int8") + (("fp16",) if accelerator in _FP16_PROVIDER_OPTIONS else ())

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        import onnxruntime as ort

        acc, prec = accelerator, precision or "fp32"
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        spinning = bool(options.get("spinning", False))
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        level = options.get("optimization", "all")
        if level not in _OPTIMIZATION:
            raise InvalidOptionError(f"optimization={level!r} is not one of {list(_OPTIMIZATION)}.")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPTIMIZATION[level])
        so.log_severity_level = 3
        mode = options.get("execution_mode", "sequential")
        if mode not in ("sequential", "parallel"):
            raise InvalidOptionError(f"execution_mode={mode!r} is not one of ['sequential', 'parallel'].")
        so.execution_mode = getattr(ort.ExecutionMode, f"ORT_{mode.upper()}")
        trace_dir = None
        if profile_ops:
            import tempfile

            trace_dir = tempfile.mkdtemp(prefix="edgekit-ort-trace-")
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(trace_dir) / "ort")
        libs = options.get("custom_ops") or []
        for lib in [libs] if isinstance(libs, str) else libs:
            try:
                so.register_custom_ops_library(str(lib))
            except Exception as exc:
                raise InvalidOptionError(f"custom_ops: cannot load {lib!r} ({exc}); pass the path of a shared library "
                                         "built against this onnxruntime version.") from exc
        ep_options = dict(options.get("provider_options") or {})
        if prec == "fp16":
            for key, value in _FP16_PROVIDER_OPTIONS[acc].items():
                ep_options.setdefault(key, value)
        providers: list[Any] = [(PROVIDERS[acc], ep_options)] if acc != "cpu" else []
        providers.append("CPUExecutionProvider")
        try:
            sess = ort.InferenceSession(str(model.path), sess_options=so, providers=providers)
        except Exception as exc:
            raise _translate(exc, model) from exc
        if PROVIDERS[acc] not in sess.get_providers():
            raise AcceleratorUnavailableError(
                f"onnxruntime could not start the {PROVIDERS[acc]} for {model.path.name} (it would have silently "
                f"fallen back to {sess.get_providers()}). Check the provider's libraries (CUDA/cuDNN/TensorRT "
                "versions for GPU builds), or choose accelerator='cpu'."
            )
        used = {"threads": threads, "spinning": spinning, "optimization": level}
        if mode != "sequential":
            used["execution_mode"] = mode
        if ep_options:
            used["provider_options"] = ep_options
        return _OrtSession(sess, acc, prec, used, trace_dir)


def _translate(exc: Exception, model: ModelFile) -> Exception:
    msg = str(exc)
    m = re.search(r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'", msg)
    if m:
        op, ver, node = m.groups()
        return UnsupportedModelError(
            f"onnxruntime has no kernel for operator {op} (opset {ver}, node {node!r}) in {model.path.name}. "
            "Try another runtime (`edgekit check` lists who supports it), or re-export with a supported opset.",
            operators=(op,),
        )
    m = re.search(r"(?:Fatal error: |No Op registered for )(\S+?)(?:\(-?\d+\))? (?:is not a registered function/op|with domain_version)", msg)
    if m:
        op = m.group(1).rsplit(":", 1)[-1]
        return UnsupportedModelError(
            f"onnxruntime does not know operator {op!r} ({m.group(1)}) used in {model.path.name}: a custom op. "
            "Pass custom_ops='path/to/its_library.so' to load the library that implements it, "
            "or run the model on a runtime that has it (`edgekit check`).",
            operators=(op,),
        )
    if "INVALID_PROTOBUF" in msg or "Protobuf parsing failed" in msg:
        return CorruptModelError(f"onnxruntime cannot parse {model.path.name}: {msg}. Re-export the model.")
    return UnsupportedModelError(f"onnxruntime cannot load {model.path.name}: {msg}")
