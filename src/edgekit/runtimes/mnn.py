"""MNN adapter: runs ``.mnn``; ONNX and TFLite are converted first, once, into a cache.

Conversion (:mod:`edgekit.runtimes.mnn_convert`) runs MNN's native converter in a
subprocess and caches ``<cache>/mnn/<sha256 of the source>-<MNN version>.mnn``.
MNN prints to file descriptor 1 (``The device supports: ...`` at import, backend
fallbacks, errors); the adapter captures those writes around import and load, so
``--format json`` output stays clean. Names, order, shapes and dtypes come from the
source model when one was converted, else from the ``.mnn``. Outputs come back in the
model's own layout (NCHW for ONNX, NHWC for TFLite), never MNN's internal NC4HW4.
``fp32`` is MNN's ``Precision_High``; ``fp16`` (``Precision_Low``) is offered only on a GPU
backend or where MNN reports fp16 arithmetic on the CPU (else MNN would compute fp32 and
call it fp16). For fp32 the Winograd level defaults to 2, not MNN's 3, whose large tiles
cost accuracy (option ``winograd=3`` restores MNN's faster default). A requested GPU
backend missing from the build raises instead of MNN's silent CPU fallback.

Example::

    m = edgekit.load("det.onnx", runtime="mnn", threads=2)   # converts once, then reuses the cache
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import (
    AcceleratorUnavailableError,
    CorruptModelError,
    InferenceError,
    InputError,
    InvalidOptionError,
    RuntimeNotInstalledError,
    UnsupportedModelError,
)
from edgekit.models.formats import ModelFile
from edgekit.models.model_io import model_io
from edgekit.runtime import Runtime, Session
from edgekit.runtimes._capture import captured_output
from edgekit.runtimes.mnn_convert import cached_conversion, convert_to_mnn
from edgekit.tensors import TensorSpec

__all__ = ["MNNRuntime", "convert_to_mnn"]

#: edgekit accelerator name -> MNN backend name in a runtime-manager config
BACKENDS = {"cpu": "CPU", "opencl": "OPENCL", "vulkan": "VULKAN", "cuda": "CUDA", "metal": "METAL"}
#: MNN BackendConfig::PrecisionMode values (passed as ints: strings make MNN print a line)
_PRECISION = {"fp32": 1, "fp16": 2}  # Precision_High, Precision_Low
_LAYOUT = {"onnx": "NCHW", "tflite": "NHWC"}
_WINOGRAD_HINT = 3  # Interpreter::HintMode::WINOGRAD_MEMORY_LEVEL
_STATE: dict[str, Any] = {}


def _mnn() -> Any:
    """Import MNN once with its stdout chatter captured; remember the CPU features it reports."""
    if "mnn" not in _STATE:
        with captured_output() as cap:
            try:
                import MNN
                import MNN.expr
                import MNN.nn
            except ImportError as exc:
                failure: ImportError | None = exc
            else:
                failure = None
        if failure is not None:
            raise RuntimeNotInstalledError(
                f"MNN is installed but does not import: {failure}. Reinstall it with "
                "`pip install --force-reinstall 'edgekit[mnn]'` (MNN's wheels are built against a given numpy)."
            ) from failure
        _STATE["features"] = {k: v != "0" for k, v in re.findall(r"(\w+):\s*(\d+)", cap.text)}
        _STATE["mnn"] = MNN
    return _STATE["mnn"]


def cpu_features() -> dict[str, bool]:
    """What MNN detected on this CPU at import (``fp16``, ``i8sdot``, ``i8mm``, ``sve2``, ``sme2``)."""
    _mnn()
    return dict(_STATE["features"])


def _np_dtype(F: Any, mnn_dtype: Any) -> np.dtype:
    table = {F.float: np.float32, F.double: np.float64, F.int: np.int32, F.int64: np.int64,
             F.uint8: np.uint8, F.int8: np.int8}
    for k, v in table.items():
        if mnn_dtype == k:
            return np.dtype(v)
    raise UnsupportedModelError(f"MNN tensor type {mnn_dtype} has no numpy equivalent edgekit maps.")


def _mnn_specs(F: Any, path: Path, info: dict[str, Any]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Specs of a plain .mnn: inputs from the module's info, outputs by shape inference.

    MNN writes a dynamic dimension as -1 (here ``None``) and then cannot infer the output
    shapes (``getshape: unable to get variable info``); those come from :func:`_probe_outputs`.
    """
    inputs = [TensorSpec(name, tuple(d if d >= 0 else None for d in v.shape), _np_dtype(F, v.dtype),
                         layout=("NHWC" if v.data_format == F.NHWC else "NCHW") if len(v.shape) == 4 else None)
              for name, v in zip(info["inputNames"], info["inputs"])]
    with captured_output() as cap:
        try:
            if any(s.is_dynamic for s in inputs):
                outputs = _probe_outputs(F, path, inputs, info["outputNames"])
            else:
                graph = F.load_as_dict(str(path))
                outputs = [TensorSpec(name, tuple(graph[name].shape), _np_dtype(F, graph[name].dtype))
                           for name in info["outputNames"]]
        except Exception as exc:  # noqa: BLE001 - MNN raises bare Exception/SystemError
            failure: Exception | None = exc
        else:
            failure = None
    if failure is not None:
        dynamic = [str(s) for s in inputs if s.is_dynamic]
        why = (f" for its dynamic input(s) {', '.join(dynamic)} at the sizes edgekit tried ({_PROBE_SIDES})"
               if dynamic else "")
        log = " ".join(ln for ln in cap.text.split("getshape: unable to get variable info") if ln.strip())
        raise UnsupportedModelError(
            f"MNN cannot infer the output shapes of {path.name}{why}: {failure}. MNN said: {log.strip()[-500:]}. "
            "Convert the model again with fixed input shapes, or load the ONNX/TFLite source with runtime='mnn' "
            "(edgekit converts it and keeps its inputs and outputs).") from failure
    return inputs, outputs


#: sizes given to the dynamic dimensions (batch: 1) of a .mnn's inputs to infer its output shapes; an output
#: dimension that differs between them is dynamic (multiples of 32: detectors downsample by up to 32)
_PROBE_SIDES = (64, 96)


def _probe_outputs(F: Any, path: Path, inputs: list[TensorSpec], names: list[str]) -> list[TensorSpec]:
    """Output specs of a .mnn with dynamic inputs: shape inference at two input sizes, varying dims ``None``."""
    seen: list[list[tuple[list[int], Any]]] = []
    for side in _PROBE_SIDES:
        graph = F.load_as_dict(str(path))  # a graph resized once keeps its shapes: a fresh one per size
        for spec in inputs:
            if spec.is_dynamic:
                graph[spec.name].resize([d if isinstance(d, int) else (1 if k == 0 else side)
                                         for k, d in enumerate(spec.shape)])
        got = [(graph[name].shape, graph[name].dtype) for name in names]
        if any(shape is None for shape, _ in got):
            raise UnsupportedModelError(f"no shape for output(s) {[n for n, (s, _) in zip(names, got) if s is None]}")
        seen.append([(list(shape), dtype) for shape, dtype in got])
    out = []
    for name, (a, dtype), (b, _) in zip(names, *seen):
        if len(a) != len(b):  # the rank itself follows the input: nothing about the shape is fixed
            raise UnsupportedModelError(f"output {name!r} has rank {len(a)} or {len(b)} depending on the input size")
        out.append(TensorSpec(name, tuple(x if x == y else None for x, y in zip(a, b)), _np_dtype(F, dtype)))
    return out


# --- session -------------------------------------------------------------------------------

class _MNNSession(Session):
    thread_safe = False  # MNN's Module and RuntimeManager are not thread-safe

    def __init__(self, module: Any, rt: Any, inputs: list[TensorSpec], outputs: list[TensorSpec],
                 layout: str, accelerator: str, precision: str, options: dict[str, Any],
                 info: dict[str, Any] | None = None) -> None:
        super().__init__(inputs, outputs, accelerator=accelerator, precision=precision, options=options)
        self._F = _mnn().expr
        F = self._F
        self._module, self._rt = module, rt
        info = info or module.get_info()
        self._feed = [(_np_dtype(F, v.dtype), v.dtype, v.data_format) for v in info["inputs"]]
        self._out_format = F.NHWC if layout == "NHWC" else F.NCHW

    def _var(self, spec: TensorSpec, arr: np.ndarray, np_dt: np.dtype, mnn_dt: Any, fmt: Any) -> Any:
        F = self._F
        if arr.dtype != np_dt:  # e.g. ONNX int64 input that MNN holds as int32
            if arr.dtype.kind in "iu" and np_dt.kind in "iu" and arr.size:
                info = np.iinfo(np_dt)
                if arr.min() < info.min or arr.max() > info.max:
                    raise InputError(f"input {spec.name!r}: MNN holds it as {np_dt}; values outside "
                                     f"[{info.min}, {info.max}] would wrap. Clip the input to that range.")
            arr = arr.astype(np_dt)
        nc4 = fmt == F.NC4HW4
        var = F.placeholder(list(arr.shape), F.NCHW if nc4 else fmt, mnn_dt)
        if np_dt in (np.float32, np.int32, np.uint8):
            var.write(arr)
        else:  # MNN's Var.write takes no int8/int64/float64 numpy arrays, but takes lists
            var.write(arr.tolist())
        return F.convert(var, F.NC4HW4) if nc4 else var

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        F = self._F
        args = [self._var(s, feeds[s.name], *how) for s, how in zip(self.inputs, self._feed)]
        results = self._module.forward(args)
        if not isinstance(results, (list, tuple)):
            results = [results]
        if len(results) != len(self.outputs):
            raise InferenceError(
                f"MNN returned {len(results)} output(s), the model declares {len(self.outputs)}: its forward "
                "pass failed (MNN printed why on stdout, e.g. 'Compute Shape Error'). Check the input shapes, "
                "or use another runtime."
            )
        out = []
        for spec, var in zip(self.outputs, results):
            if var.data_format == F.NC4HW4:
                var = F.convert(var, self._out_format)
            arr = np.array(var.read(), copy=True)
            if arr.dtype != spec.dtype:
                if (arr.dtype.kind == "f") != (spec.dtype.kind == "f"):
                    raise InferenceError(f"MNN returned output {spec.name!r} as {arr.dtype}, the model declares "
                                         f"{spec.dtype}; MNN does not run this model faithfully. Use another runtime.")
                arr = arr.astype(spec.dtype)  # e.g. int32 where the ONNX model declares int64
            out.append(arr)
        return out

    def close(self) -> None:
        self._module = self._rt = None


class MNNRuntime(Runtime):
    """Alibaba MNN (``pip install mnn``); ONNX and TFLite are converted to ``.mnn`` first."""

    name = "mnn"
    capabilities = frozenset({"dynamic_shapes", "multi_output"})
    #: the first value of each is the default for fp32 (edgekit.tuning varies one at a time; precision fp32/fp16 is
    #: searched as precision=). Winograd 3 is faster and less exact: the accuracy gate decides.
    tunables = {"winograd": (2, 3, 1, 0), "memory": ("normal", "high", "low"), "power": ("normal", "high")}
    options_help = {
        "convert_timeout": "seconds allowed for converting ONNX/TFLite to .mnn (default 600)",
        "memory": "MNN memory mode: normal|high|low (default normal)",
        "power": "MNN power mode: normal|high|low (default normal)",
        "winograd": "MNN's WINOGRAD_MEMORY_LEVEL 0-3 (default 2 for fp32; MNN's own 3 is faster, less exact)",
        "probe": "bool, load and run each new .mnn (given, or converted) once in a child process first (default "
                 "True: MNN crashes on some damaged files; see edgekit.runtimes._probe)",
        "probe_timeout": "seconds allowed for that probe (default 60)",
    }

    def accelerators(self) -> list[str]:
        if "accelerators" not in _STATE:
            nn = _mnn().nn
            found = ["cpu"]
            for acc, backend in BACKENDS.items():
                if acc == "cpu":
                    continue
                with captured_output() as cap:  # MNN falls back to CPU and prints "Can't Find type=N backend"
                    rt = nn.create_runtime_manager(({"backend": backend, "numThread": 1},))
                if rt is not None and "Can't Find" not in cap.text:
                    found.append(acc)
            _STATE["accelerators"] = found
        return list(_STATE["accelerators"])

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        fp16_ok = accelerator != "cpu" or cpu_features().get("fp16", False)
        return ("fp32", "fp16") if fp16_ok else ("fp32",)

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        MNN = _mnn()
        F, nn = MNN.expr, MNN.nn
        acc, prec = accelerator, precision or "fp32"
        modes = {"normal": 0, "high": 1, "low": 2}
        config: dict[str, Any] = {"backend": BACKENDS[acc], "precision": _PRECISION[prec]}
        for key in ("memory", "power"):
            value = options.get(key, "normal")
            if value not in modes:
                raise InvalidOptionError(f"MNN option {key}={value!r} is not one of {list(modes)}.")
            config[key] = modes[value]
        config["numThread"] = threads
        # MNN's default level 3 picks large Winograd tiles: 7e-4 relative error on a 3x3-conv stack (32 ch,
        # 128x128) against ORT/OpenVINO; level 2 gave 6e-6, 1.7x slower there, 8% slower on PP-OCR det.
        winograd = options.get("winograd", 2 if prec == "fp32" else None)
        if winograd is not None and winograd not in (0, 1, 2, 3):
            raise InvalidOptionError(f"MNN option winograd={winograd!r} is not one of 0, 1, 2, 3.")
        used: dict[str, Any] = {"threads": threads, "memory": options.get("memory", "normal"),
                                "power": options.get("power", "normal"),
                                "mnn_precision": "high" if prec == "fp32" else "low", "winograd": winograd}
        if model.format == "mnn":
            path, specs, layout = model.path, None, None
        else:
            version = self.version() or MNN.version()
            timeout = options.get("convert_timeout", 600)
            if not isinstance(timeout, (int, float)) or timeout <= 0:
                raise InvalidOptionError(f"MNN option convert_timeout={timeout!r} must be a positive number of seconds.")
            path, converted = cached_conversion(model, version, float(timeout))
            specs = model_io(model)  # the .mnn loses dynamic dims (batch written as 1) and int64
            layout = _LAYOUT[model.format]
            used.update(converted_model=str(path), converted_now=converted)
        if options.get("probe", True):  # MNN crashes on some damaged files: see edgekit.runtimes._probe
            from edgekit.runtimes._probe import probe

            probe(self.name, path, self.version() or MNN.version(), source_name=model.path.name,
                  corrupt_on_crash=model.format == "mnn", timeout=float(options.get("probe_timeout", 60)))
        with captured_output() as cap:
            try:
                rt = nn.create_runtime_manager((config,))
                if winograd is not None:
                    rt.set_hint(_WINOGRAD_HINT, winograd)
                names = ([s.name for s in specs[0]], [s.name for s in specs[1]]) if specs else ([], [])
                module = nn.load_module_from_file(str(path), *names, runtime_manager=rt, shape_mutable=True)
                stat = path.stat()
                info = _module_info(module, (str(path), stat.st_size, stat.st_mtime_ns, repr(names), config["backend"]))
            except Exception as exc:  # noqa: BLE001 - MNN raises untyped errors; translated below with its captured output
                failure: Exception | None = exc
            else:
                failure = None
        if failure is not None:
            raise _load_error(model, path, cap.text, failure) from failure
        if "Can't Find" in cap.text:
            raise AcceleratorUnavailableError(
                f"MNN has no {BACKENDS[acc]} backend in this build (it would have fallen back to CPU silently). "
                "Choose accelerator='cpu', or install an MNN build with that backend."
            )
        if specs is None:
            specs = _mnn_specs(F, path, info)
            layout = "NHWC" if any(s.layout == "NHWC" and len(s.shape) == 4 for s in specs[0]) else "NCHW"
        elif any(s.dtype.kind in "iub" for s in specs[1]):
            _check_output_kinds(F, model, path, specs[1])
        return _MNNSession(module, rt, specs[0], specs[1], layout or "NCHW", acc, prec, used, info=info)


_INFO: dict[tuple[Any, ...], dict[str, Any]] = {}


def _module_info(module: Any, key: tuple[Any, ...]) -> dict[str, Any]:
    """``module.get_info()`` as plain values, asked once per model file and configuration.

    MNN 3.6.1 keeps about 110 kB per module alive for good once ``get_info()`` was called on a
    module that then runs (measured: +5.3 MiB over 50 load/run/close cycles, 0 without it).
    """
    import types

    if key not in _INFO:
        info = module.get_info()
        if len(_INFO) > 256:
            _INFO.clear()
        _INFO[key] = {
            "inputNames": list(info["inputNames"]), "outputNames": list(info["outputNames"]),
            "inputs": [types.SimpleNamespace(shape=list(v.shape), dtype=v.dtype, data_format=v.data_format)
                       for v in info["inputs"]],
        }
    return _INFO[key]


def _check_output_kinds(F: Any, model: ModelFile, path: Path, outputs: list[TensorSpec]) -> None:
    """MNN's converter turns some quantized models' integer outputs into float: refuse those."""
    with captured_output():
        try:
            graph = F.load_as_dict(str(path))
            got = {s.name: _np_dtype(F, graph[s.name].dtype) for s in outputs if s.name in graph}
        except Exception:  # noqa: BLE001 - cannot tell here; run() checks every output's type again
            got = {}
    wrong = [f"{s.name!r} ({s.dtype} -> {got[s.name]})" for s in outputs
             if s.name in got and (got[s.name].kind == "f") != (s.dtype.kind == "f")]
    if wrong:
        raise UnsupportedModelError(
            f"MNN's conversion of {model.path.name} changes the type of output(s) {', '.join(wrong)}: it does not "
            "keep this model's quantization, so its results would be wrong. Run the model on another runtime "
            "(onnxruntime, litert), or give MNN the float model."
        )


def _load_error(model: ModelFile, path: Path, log: str, exc: Exception) -> Exception:
    text = "\n".join(ln for ln in log.splitlines() if "device supports" not in ln).strip()
    cause = exc.__cause__ or exc.__context__ or exc
    detail = (f"MNN said: {text[-1000:]}" if text else "") + (f" ({cause})" if str(cause) else "")
    if model.format == "mnn":
        return CorruptModelError(f"MNN cannot load {model.path.name}: {detail}. Re-convert or re-download the model.")
    return UnsupportedModelError(
        f"MNN converted {model.path.name} (to {path}) but cannot load the result: {detail}. MNN's converter "
        "does not handle this model (seen with Quantize/DequantizeLinear pairs at graph outputs); "
        "run it on another runtime."
    )
