"""OpenCV DNN adapter (``cv2.dnn``): reads ONNX and TFLite, hides the quirks measured on OpenCV 5.0.

* TFLite: ``cv2.dnn`` wants 4-D inputs NCHW and returns 4-D outputs NCHW; this adapter
  transposes, so inputs and outputs keep the TFLite model's own NHWC layout (as LiteRT).
* TFLite: the new DNN engine returns only the first output of a multi-output model, and
  crashed reading our conformance models; TFLite is read with the classic engine.
* Names, shapes and dtypes of inputs and outputs come from the model file (``cv2.dnn``
  reports layer names, in an order of its own); outputs are returned in model order.
* ``cv2.setNumThreads`` is **process-global**: opening a model with ``threads=n`` sets it
  for every ``cv2`` call in the process (other nets, image processing) until changed.
* A ``cv2.dnn.Net`` is not thread-safe (``thread_safe=False``: the Predictor locks).
* ``opencl``: OpenCV's own default finds GPUs only. Unless ``OPENCV_OPENCL_DEVICE`` is set, edgekit
  sets it to ``"::"`` (a GPU first, else any OpenCL device, e.g. PoCL's CPU device) before OpenCV
  opens its OpenCL context. Only the classic engine honours targets. OpenCV DNN runs OpenCL on
  GPUs only and otherwise switches to the CPU with a log line: on a non-GPU device edgekit sets
  ``OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1`` (recorded as option ``env``). After the first run
  the layers' effective targets are read back (``net.dump()``): a session that ran on the CPU
  reports accelerator ``cpu`` and says why (option ``fallback``), or raises
  AcceleratorUnavailableError with ``allow_fallback=False``. fp16 is offered only on a device with
  ``cl_khr_fp16`` (OpenCV would compute fp32 silently elsewhere). A CPU OpenCL device is named
  as such: "opencl: PoCL CPU device (software — functional check only, not a GPU)".
* OpenCV segfaults on some real models, and on 1.3% of mutated ONNX files (fuzzing): each new
  model file is first loaded and run once in a probe process (:mod:`edgekit.runtimes._probe`,
  ``probe=False`` to skip), so a crash there is a typed error here.

Example::

    m = edgekit.load("face.tflite", runtime="opencv", threads=2)
    out = m(x_nhwc)                          # NHWC in, NHWC out, like LiteRT
    m = edgekit.load("det.onnx", runtime="opencv", profile_ops=True); m(x)
    m.op_profile()                           # per-layer times of the runs so far
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any

import numpy as np

from edgekit.errors import (
    AcceleratorUnavailableError,
    CorruptModelError,
    InvalidOptionError,
    UnsupportedModelError,
)
from edgekit.models.formats import ModelFile
from edgekit.models.model_io import model_io
from edgekit.runtime import OpTiming, Runtime, Session
from edgekit.tensors import TensorSpec

__all__ = ["OpenCV"]

_ENGINES = ("auto", "new", "classic")
_OPENCL: dict[str, Any] = {}  # OpenCV's OpenCL device, looked up once per process
_SOFTWARE = re.compile(r"llvmpipe|lavapipe|swiftshader", re.IGNORECASE)
_TARGET_NAMES = {"cpu": ("CPU",), "opencl": ("OCL", "OCL_FP16"), "cuda": ("CUDA", "CUDA_FP16")}
logger = logging.getLogger(__name__)


def opencl_device() -> dict[str, Any] | None:
    """OpenCV's OpenCL device — ``name``, ``gpu``, ``software``, ``fp16``, ``description`` — or None without one.

    Sets ``OPENCV_OPENCL_DEVICE="::"`` (GPU first, else any device) when the user has not set it;
    see the module docstring.
    """
    if "device" not in _OPENCL:
        import cv2

        os.environ.setdefault("OPENCV_OPENCL_DEVICE", "::")  # OpenCV's default: GPUs only
        info = None
        try:
            dev = cv2.ocl.Device.getDefault() if cv2.ocl.haveOpenCL() else None
            if dev is not None and dev.available() and dev.name():
                name, kind = dev.name(), dev.type()
                gpu = bool(kind & cv2.ocl.Device_TYPE_GPU)
                software = not gpu or bool(_SOFTWARE.search(name))
                if "pocl" in dev.version().lower() and not gpu:
                    text = "opencl: PoCL CPU device (software — functional check only, not a GPU)"
                elif kind & cv2.ocl.Device_TYPE_CPU:
                    text = f"opencl: {name} (a CPU device — functional check only, not a GPU)"
                elif software:
                    text = f"opencl: {name} (software — functional check only, not a GPU)"
                else:
                    text = f"opencl: {name} ({dev.vendorName()})"
                info = {"name": name, "gpu": gpu, "software": software, "description": text,
                        "fp16": "cl_khr_fp16" in dev.extensions().split()}
        except cv2.error:
            info = None
        _OPENCL["device"] = info
    return _OPENCL["device"]


def _effective_targets(net: Any) -> set[str]:
    """The targets OpenCV's layers actually ran on after a forward ("CPU", "OCL", "OCL_FP16", "CUDA", ...)."""
    return set(re.findall(r"\\l[A-Z]+/([A-Z0-9_]+)\\n", net.dump()))


def _to_nhwc_if_needed(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A 4-D TFLite output came back NCHW: transpose it to the model's declared NHWC shape."""
    if arr.ndim != 4 or len(spec.shape) != 4:
        return arr
    nhwc = arr.transpose(0, 2, 3, 1)
    if spec.accepts(tuple(nhwc.shape)):
        return np.ascontiguousarray(nhwc)
    return arr  # already in the declared layout (e.g. a reshape the importer left alone)


class _CvSession(Session):
    thread_safe = False

    def __init__(self, net: Any, model: ModelFile, inputs: list[TensorSpec], outputs: list[TensorSpec],
                 layer_outputs: list[str], accelerator: str, precision: str, options: dict[str, Any]) -> None:
        super().__init__(inputs, outputs, accelerator=accelerator, precision=precision, options=options)
        self._net = net
        self._tflite = model.format == "tflite"
        self._name = model.path.name
        self._layer_outputs = layer_outputs
        self._verified = accelerator == "cpu"  # a GPU target is checked after the first run: OpenCV may fall back
        self._strict = options.get("allow_fallback") is False
        self.options.pop("allow_fallback", None)

    def _verify_target(self) -> None:
        """After the first run: did the layers run on the target asked for? Report the CPU (or raise) if not."""
        self._verified = True
        ran = _effective_targets(self._net)
        wanted = _TARGET_NAMES.get(self.accelerator, ())
        if not ran or ran & set(wanted):
            if self.precision == "fp16" and not any(t.endswith("FP16") for t in ran):
                self.options["precision_requested"], self.precision = "fp16", "fp32"
            return
        why = (f"OpenCV ran {self._name} on {'/'.join(sorted(ran))}, not on the {self.accelerator} target asked for "
               "(OpenCV switched to the CPU: its OpenCL target is tested on GPUs only, or the device failed)")
        if self._strict:
            raise AcceleratorUnavailableError(
                f"opencv: {why}. Expected the layers on {self.accelerator} (allow_fallback=False); without it the "
                "session reports accelerator 'cpu' instead, or choose accelerator='cpu'.")
        logger.warning("edgekit: opencv: %s; the session reports accelerator 'cpu'.", why)
        self.options["fallback"] = why
        self.options.pop("software_device", None)
        self.accelerator, self.precision = "cpu", "fp32"

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for spec in self.inputs:
            blob = feeds[spec.name]
            if self._tflite and blob.ndim == 4:
                blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
            self._net.setInput(blob, spec.name)
        try:
            results = self._net.forward(self._layer_outputs)
        except Exception as exc:  # cv2.error; the classic engine creates some layers on first forward
            err = _translate(exc, self._name)
            if isinstance(err, UnsupportedModelError) and err.operators:
                raise err from exc
            raise
        if not self._verified:
            self._verify_target()
        out = []
        for arr, spec in zip(results, self.outputs):
            arr = np.asarray(arr)
            if self._tflite:
                arr = _to_nhwc_if_needed(arr, spec)
            if arr.dtype != spec.dtype and np.can_cast(arr.dtype, spec.dtype, "same_kind"):
                arr = arr.astype(spec.dtype)
            if arr.shape != spec.shape and not spec.is_dynamic and arr.size == math.prod(spec.concrete_shape()):
                arr = arr.reshape(spec.shape)  # OpenCV returns scalars as (1,) and drops unit dims
            out.append(arr)
        if self._op_runs is not None:  # opened with profile_ops: keep this run's per-layer times
            self._record_ops(self._last_run_ops())
        return out

    def _last_run_ops(self) -> list[OpTiming]:
        """Per-layer times of the last run, from ``net.getPerfProfile()`` (CPU target only); fused layers 0."""
        import cv2

        _, ticks = self._net.getPerfProfile()
        per_us = 1e6 / cv2.getTickFrequency()
        names = self._net.getLayerNames()
        rows = []
        for name, t in zip(names, np.asarray(ticks).ravel()):
            try:
                kind = self._net.getLayer(name).type
            except cv2.error:
                kind = ""
            rows.append(OpTiming(name, kind, float(t) * per_us))
        return rows

    def close(self) -> None:
        self._net = None


class OpenCV(Runtime):
    """OpenCV DNN (``cv2.dnn``): CPU, OpenCL and CUDA targets."""

    name = "opencv"
    capabilities = frozenset({"op_profile", "dynamic_shapes", "multi_output", "int8"})
    #: the DNN engine (the target is the accelerator: cpu/opencl/cuda, and fp16 is precision=). "auto" is the default
    #: for ONNX on the CPU; for TFLite the default is "classic" (the new engine returns only the first output there).
    tunables = {"engine": ("auto", "classic", "new")}
    options_help = {
        "engine": "DNN engine: auto|new|classic (default: classic for TFLite and non-CPU targets, else auto)",
        "probe": "bool, load and run each new model file once in a child process first (default True: OpenCV's "
                 "importers crash on some files; see edgekit.runtimes._probe)",
        "probe_timeout": "seconds allowed for that probe (default 60)",
        "allow_fallback": "bool, False: raise AcceleratorUnavailableError when OpenCV runs an opencl/cuda target on "
                          "the CPU (default True: the session reports accelerator 'cpu' and option 'fallback' says why)",
    }

    def accelerator_device(self, accelerator: str) -> str | None:
        """The OpenCL device OpenCV uses ("opencl: PoCL CPU device (software — ...)"); None elsewhere."""
        dev = opencl_device() if accelerator == "opencl" else None
        return dev["description"] if dev else None

    def accelerators(self) -> list[str]:
        self.require()
        import cv2

        present = ["cpu"]
        if opencl_device() is not None:
            present.append("opencl")
        try:
            if cv2.cuda.getCudaEnabledDeviceCount() > 0:
                present.append("cuda")
        except (cv2.error, AttributeError):
            pass
        return present

    @staticmethod
    def _targets(accelerator: str) -> tuple[int, int, int]:
        """(backend, fp32 target, fp16 target) of ``cv2.dnn`` for an accelerator."""
        import cv2

        dnn = cv2.dnn
        return {
            "cpu": (dnn.DNN_BACKEND_OPENCV, dnn.DNN_TARGET_CPU, dnn.DNN_TARGET_CPU_FP16),
            "opencl": (dnn.DNN_BACKEND_OPENCV, dnn.DNN_TARGET_OPENCL, dnn.DNN_TARGET_OPENCL_FP16),
            "cuda": (dnn.DNN_BACKEND_CUDA, dnn.DNN_TARGET_CUDA, dnn.DNN_TARGET_CUDA_FP16),
        }[accelerator]

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        import cv2

        backend, _, target16 = self._targets(accelerator)
        if accelerator == "opencl" and not (opencl_device() or {}).get("fp16"):
            return ("fp32",)  # OpenCV would run OCL_FP16 in fp32 without cl_khr_fp16, silently
        return ("fp32", "fp16") if target16 in cv2.dnn.getAvailableTargets(backend) else ("fp32",)

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        import cv2

        acc, prec, dnn = accelerator, precision or "fp32", cv2.dnn
        backend, target, target16 = self._targets(acc)
        engine_name = str(options.get("engine") or ("classic" if model.format == "tflite" or acc != "cpu" else "auto"))
        if engine_name not in _ENGINES:
            raise InvalidOptionError(f"opencv: engine={engine_name!r} is not one of {list(_ENGINES)}.")
        if acc != "cpu" and engine_name == "new":
            raise InvalidOptionError(
                f"opencv: the new DNN engine runs on the CPU only, not on {acc!r}; pass engine='classic' or accelerator='cpu'."
            )
        declared = model_io(model)
        if declared is None:
            raise UnsupportedModelError(
                f"opencv reads ONNX and TFLite models, not {model.format} ({model.path.name}). "
                "Use runtime='openvino' for OpenVINO IR, or convert the model."
            )
        engine = {"auto": dnn.ENGINE_AUTO, "new": dnn.ENGINE_NEW, "classic": dnn.ENGINE_CLASSIC}[engine_name]
        if options.get("probe", True):  # OpenCV's importers crash on some files: see edgekit.runtimes._probe
            from edgekit.runtimes._probe import probe

            probe(self.name, model.path, self.version() or cv2.__version__, source_name=model.path.name,
                  options={"engine": engine_name, "accelerator": acc}, timeout=float(options.get("probe_timeout", 60)),
                  digest=model.sha256())
        if acc == "opencl" and not (opencl_device() or {}).get("gpu") \
                and "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES" not in os.environ:
            os.environ["OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES"] = "1"  # else OpenCV DNN switches to the CPU
            logger.info("edgekit: opencv: OpenCL device is not a GPU; set OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1")
        cv2.setNumThreads(threads)  # process-global, see the module docstring
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # errors arrive as cv2.error
        try:
            reader = dnn.readNetFromTFLite if model.format == "tflite" else dnn.readNetFromONNX
            net = reader(str(model.path), engine)
            net.setPreferableBackend(backend)
            net.setPreferableTarget(target16 if prec == "fp16" else target)
            layer_outputs = _match_outputs(list(net.getUnconnectedOutLayersNames()), declared[1], model)
        except (cv2.error, UnicodeDecodeError) as exc:  # a non-UTF-8 layer name fails to decode
            raise _translate(exc, model.path.name) from exc
        finally:
            cv2.utils.logging.setLogLevel(level)
        used: dict[str, Any] = {"threads": threads, "engine": engine_name, "threads_scope": "process",
                                **_device_options(acc), **({"allow_fallback": False} if options.get("allow_fallback") is False else {})}
        session = _CvSession(net, model, declared[0], declared[1], layer_outputs, acc, prec, used)
        if acc != "cpu" and all(not s.is_dynamic for s in session.inputs):
            # run once now: OpenCV decides (and may fall back from) the target on the first forward
            session.run({s.name: np.zeros(s.concrete_shape(), s.dtype) for s in session.inputs})
        if profile_ops:
            session._start_op_recording()
        return session


def _device_options(accelerator: str) -> dict[str, Any]:
    """Session options naming the OpenCL device (and the variable edgekit set for a non-GPU one)."""
    dev = opencl_device() if accelerator == "opencl" else None
    if dev is None:
        return {}
    out: dict[str, Any] = {"device": dev["description"]}
    if dev["software"]:
        out["software_device"] = True
    if not dev["gpu"] and os.environ.get("OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES") == "1":
        out["env"] = "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1"
    return out


def _match_outputs(layer_names: list[str], outputs: list[TensorSpec], model: ModelFile) -> list[str]:
    """OpenCV's output layer names, in the model's output order."""
    # The classic TFLite importer names a fused activation "<tensor>/activ"; ONNX keeps graph names.
    base = {n.removesuffix("/activ"): n for n in layer_names}
    if all(o.name in base for o in outputs):
        return [base[o.name] for o in outputs]
    if len(layer_names) == len(outputs):  # no names to match: trust OpenCV's order
        return layer_names
    raise UnsupportedModelError(
        f"opencv exposes {len(layer_names)} output(s) {layer_names} for {model.path.name}, but the model declares "
        f"{len(outputs)}: {[o.name for o in outputs]}. Try engine='classic', or another runtime."
    )


def _translate(exc: Exception, name: str) -> UnsupportedModelError | CorruptModelError | AcceleratorUnavailableError:
    """An edgekit error for a ``cv2.error``; ``operators`` is set when the message names the layer type."""
    msg = str(exc)
    ops: list[str] = []
    for pattern in (r'of type "([^"]+)"', r"Can't create layer \S+ with type (\w+)", r"Node \[([^@\]]+)@",
                    r"Unsupported operator type:? *\"?(\w+)",
                    r"Layer \"[^\"]*\" of type \"([^\"]+)\" unsupported"):
        ops += re.findall(pattern, msg)
    detail = " ".join(ln.strip("> ").strip() for ln in msg.splitlines() if ln.strip("> ").strip())[:400]
    if ops:
        found = tuple(dict.fromkeys(ops))
        return UnsupportedModelError(
            f"opencv cannot run operator(s) {', '.join(found)} in {name} ({detail}). Try another runtime "
            "(`edgekit check` lists who supports them), or the other DNN engine (engine='classic' or 'new').",
            operators=found,
        )
    if re.search(r"(?i)(failed to parse|parse error|protobuf|flatbuffer|verif)", msg):
        return CorruptModelError(f"opencv cannot parse {name}: {detail}. Re-export or re-download the model.")
    if "getAvailableTargets" in msg or "OpenCL" in msg or "CUDA" in msg:
        return AcceleratorUnavailableError(f"opencv cannot use the requested target for {name}: {detail}. "
                                           "Choose accelerator='cpu'.")
    return UnsupportedModelError(f"opencv cannot load {name}: {detail}. Try engine='classic', or another runtime.")
