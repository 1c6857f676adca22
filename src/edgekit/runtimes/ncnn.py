"""ncnn adapter (Tencent, ``pip install ncnn``): native ``.param`` + ``.bin``; ONNX converted with pnnx first.

Accelerators: ``cpu``, and ``vulkan`` where ncnn finds a Vulkan device. A software device
(Mesa's llvmpipe/lavapipe: ``apt-get install mesa-vulkan-drivers libvulkan1``) runs the real
Vulkan code path, and is named as what it is in the session's ``device`` option — which
placement shows — e.g. "vulkan: llvmpipe (software rasterizer — functional check only, not a
GPU)": its latency says nothing about a GPU.

Precision is set, never left to ncnn's defaults (which store and compute in fp16 on a GPU):
``fp32`` turns every fp16/bf16 storage and arithmetic option off, ``fp16`` (Vulkan, where the
device has fp16 storage) turns fp16 storage, packing and arithmetic on. The CPU computes fp32.

ncnn has no batch axis: an input whose first dimension is a batch (1 or dynamic in the ONNX
model) is fed without it, one item at a time (a batch above 1 is refused, never run wrongly);
other dimensions may be dynamic (a detector at any image size). A native ``.param`` input is
described as ``(1, *its Input layer's dims)`` — rank 4 ``(1, ?, ?, ?)`` when the layer declares
none; edgekit's own conversion writes them. ONNX models are converted once into the cache
(:mod:`edgekit.runtimes.ncnn_convert`); names, order, shapes and dtypes then come from the ONNX
model. Each new model file is first loaded and run in a probe process (:mod:`._probe`): ncnn's
parser had never seen hostile input.

Example::

    m = edgekit.load("det.onnx", runtime="ncnn", accelerator="vulkan", precision="fp16")
    m.placement.options["device"]     # 'vulkan: llvmpipe (software rasterizer — functional check only, not a GPU)'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import CorruptModelError, InferenceError, InputError, InvalidOptionError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.models.ncnn_param import NcnnParam, input_dims, parse
from edgekit.runtime import Runtime, Session
from edgekit.runtimes._capture import captured_output
from edgekit.runtimes.ncnn_convert import cached_conversion
from edgekit.tensors import TensorSpec

__all__ = ["NCNNRuntime", "vulkan_device"]

_STATE: dict[str, Any] = {}
_SOFTWARE = re.compile(r"llvmpipe|lavapipe|swiftshader", re.IGNORECASE)
_CPU_TYPE = 3  # ncnn's GpuInfo.type(): 0 discrete, 1 integrated, 2 virtual, 3 cpu
_BOOL_OPTIONS = {"light_mode": "lightmode", "winograd": "use_winograd_convolution",
                 "sgemm": "use_sgemm_convolution", "packing": "use_packing_layout"}


def _ncnn() -> Any:
    """Import ncnn and look for Vulkan devices once, capturing what it prints (device lists, libvulkan warnings)."""
    if "ncnn" not in _STATE:
        with captured_output() as cap:
            import ncnn

            count = ncnn.get_gpu_count()
        _STATE["ncnn"] = ncnn
        _STATE["gpu"] = None
        if count > 0:
            info = ncnn.get_gpu_info(ncnn.get_default_gpu_index())
            name = info.device_name()
            fp16 = re.search(r"fp16-p/s/u/a=(\d)/(\d)/(\d)/(\d)", cap.text)
            software = info.type() == _CPU_TYPE or bool(_SOFTWARE.search(name))
            _STATE["gpu"] = {"name": name, "software": software,
                             "fp16": bool(fp16 and fp16.group(2) == "1"),
                             "fp16_arithmetic": bool(fp16 and fp16.group(4) == "1")}
    return _STATE["ncnn"]


def vulkan_device() -> str | None:
    """What the ``vulkan`` accelerator is on this host, for people; ``None`` without a Vulkan device.

    A software implementation is named as such: "vulkan: llvmpipe (software rasterizer —
    functional check only, not a GPU)".
    """
    _ncnn()
    gpu = _STATE["gpu"]
    if gpu is None:
        return None
    if gpu["software"]:
        return f"vulkan: {gpu['name'].split(' (')[0]} (software rasterizer — functional check only, not a GPU)"
    return f"vulkan: {gpu['name']}"


def _is_batch(dim: Any) -> bool:
    return not isinstance(dim, int) or dim in (1, -1)


class _NCNNSession(Session):
    thread_safe = False  # one Net may serve several Extractors, but edgekit keeps one path: the Predictor locks

    def __init__(self, net: Any, inputs: list[TensorSpec], outputs: list[TensorSpec], blobs: tuple[list[str], list[str]],
                 *, native: bool, light: bool, accelerator: str, precision: str, options: dict[str, Any]) -> None:
        super().__init__(inputs, outputs, accelerator=accelerator, precision=precision, options=options)
        self._ncnn = _ncnn()
        self._net, self._in_blobs, self._out_blobs = net, blobs[0], blobs[1]
        self._native, self._light = native, light

    def _extract(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        ncnn = self._ncnn
        ex = self._net.create_extractor()
        ex.set_light_mode(self._light)
        for spec, blob in zip(self.inputs, self._in_blobs):
            arr = feeds[spec.name]
            if self._native or _is_batch(spec.shape[0]):
                if arr.shape[0] != 1:
                    raise InputError(
                        f"input {spec.name!r}: batch {arr.shape[0]}, but ncnn has no batch axis and runs one item at a "
                        "time. Feed batch 1 (loop over the items), or use another runtime for batches.")
                arr = arr[0]
            if arr.ndim > 4 or arr.ndim == 0:
                raise InputError(f"input {spec.name!r}: ncnn holds 1 to 4 dimensions per item, got shape {arr.shape}.")
            # an owning copy: ncnn.Mat(array) borrows the array's memory, and in light mode an in-place first layer
            # (ReLU straight on the input) releases that blob — a segfault on memory ncnn does not own
            ex.input(blob, ncnn.Mat(np.ascontiguousarray(arr, dtype=np.float32)).clone())
        out = []
        for blob in self._out_blobs:
            ret, mat = ex.extract(blob)
            if ret != 0:
                raise InferenceError(f"ncnn failed computing output blob {blob!r} (status {ret}). Check the input "
                                     "shapes, or run the model on another runtime.")
            out.append(np.array(mat, dtype=np.float32, copy=True))
        return out

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = []
        for spec, arr in zip(self.outputs, self._extract(feeds)):
            results.append(_shape_like(spec, arr, native=self._native).astype(spec.dtype, copy=False))
        return results

    def close(self) -> None:
        if self._net is not None:
            self._net.clear()
        self._net = None


def _shape_like(spec: TensorSpec, arr: np.ndarray, *, native: bool) -> np.ndarray:
    """ncnn's output (no batch axis) in the model's shape."""
    if native:
        return arr[None]
    static = spec.concrete_shape()
    if not spec.is_dynamic and arr.size == int(np.prod(static)):
        return arr.reshape(static)
    shaped = arr.reshape((1,) * max(len(spec.shape) - arr.ndim, 0) + arr.shape)
    if not spec.accepts(shaped.shape):
        raise InferenceError(
            f"ncnn returned output {spec.name!r} with shape {arr.shape}, which does not fit the model's "
            f"{spec.shape}: the converted model does not run this input faithfully. Use another runtime.")
    return shaped


class NCNNRuntime(Runtime):
    """Tencent ncnn (``pip install ncnn``): ``.param``/``.bin``, ONNX through pnnx; CPU and Vulkan."""

    name = "ncnn"
    capabilities = frozenset({"multi_output"})
    #: defaults first (ncnn's); precision fp32/fp16 is searched as precision=
    tunables = {"light_mode": (True, False), "winograd": (True, False), "sgemm": (True, False),
                "packing": (True, False)}
    options_help = {
        "light_mode": "bool, free intermediate blobs as soon as they are used (default True: less memory)",
        "winograd": "bool, Winograd convolutions (default True)",
        "sgemm": "bool, im2col+GEMM convolutions (default True)",
        "packing": "bool, SIMD packing layout (default True)",
        "convert_timeout": "seconds allowed for converting ONNX with pnnx (default 600)",
        "probe": "bool, load and run each new model once in a child process first (default True: ncnn's parser "
                 "has no defence against hostile files; see edgekit.runtimes._probe)",
        "probe_timeout": "seconds allowed for that probe (default 60)",
    }

    def not_ready(self, fmt: str) -> str | None:
        """ONNX needs the pnnx converter, fetched only on request (``edgekit fetch pnnx``)."""
        from edgekit.runtimes.ncnn_convert import FETCH_COMMAND, pnnx_path

        if fmt == "onnx" and pnnx_path() is None:
            return f"reads ONNX through pnnx, not fetched yet: `{FETCH_COMMAND}`"
        return None

    def accelerators(self) -> list[str]:
        _ncnn()
        return ["cpu", "vulkan"] if _STATE["gpu"] is not None else ["cpu"]

    def accelerator_device(self, accelerator: str) -> str | None:
        """The Vulkan device ncnn uses ("vulkan: llvmpipe (software rasterizer — ...)"); None for the CPU."""
        return vulkan_device() if accelerator == "vulkan" else None

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        if accelerator == "vulkan" and self.accelerators() == ["cpu", "vulkan"] and _STATE["gpu"]["fp16"]:
            return ("fp32", "fp16")
        return ("fp32",)

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        ncnn = _ncnn()
        prec = precision or "fp32"
        flags = {}
        for key in _BOOL_OPTIONS:
            value = options.get(key, True)
            if not isinstance(value, bool):
                raise InvalidOptionError(f"ncnn option {key}={value!r} must be True or False.")
            flags[key] = value
        used: dict[str, Any] = {"threads": threads, **flags}
        if accelerator == "vulkan":
            used["device"] = vulkan_device()
            if _STATE["gpu"]["software"]:
                used["software_device"] = True
        version = self.version() or ncnn.__version__
        if model.format == "onnx":
            timeout = options.get("convert_timeout", 600)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                raise InvalidOptionError(f"ncnn option convert_timeout={timeout!r} must be a positive number of seconds.")
            param_path, bin_path, converted = cached_conversion(model, float(timeout))
            used.update(converted_model=str(param_path), converted_now=converted)
        elif model.format == "ncnn" and model.weights is not None:
            param_path, bin_path = model.path, model.weights
        else:
            raise UnsupportedModelError(f"ncnn reads .param + .bin models and ONNX (converted), not {model.format!r} "
                                        f"({model.path.name}).")
        param = parse(param_path.read_text(), str(param_path))
        unknown = sorted({layer.type for layer in param.layers if ncnn.layer_to_index(layer.type) < 0})
        if unknown:
            raise UnsupportedModelError(
                f"ncnn {version} has no layer for operator(s) {', '.join(unknown)} in {model.path.name}"
                + (" (pnnx converted them but ncnn cannot run them)" if model.format == "onnx" else "")
                + ". Run the model on another runtime (`edgekit check` compares them).", operators=tuple(unknown))
        if options.get("probe", True):
            from edgekit.runtimes._probe import probe

            probe(self.name, model.path, version, source_name=model.path.name, corrupt_on_crash=model.format == "ncnn",
                  options={"accelerator": accelerator}, digest=model.sha256(),
                  timeout=float(options.get("probe_timeout", 60)))
        net = _load(ncnn, model, param_path, bin_path, accelerator, prec, threads, flags)
        if model.format == "onnx":
            inputs, outputs, blobs = _onnx_specs(model, param)
        else:
            inputs, outputs, blobs = _native_specs(net, param, flags["light_mode"])
        return _NCNNSession(net, inputs, outputs, blobs, native=model.format == "ncnn", light=flags["light_mode"],
                            accelerator=accelerator, precision=prec, options=used)


def _load(ncnn: Any, model: ModelFile, param_path: Path, bin_path: Path, accelerator: str, prec: str, threads: int,
          flags: dict[str, bool]) -> Any:
    net = ncnn.Net()
    opt = net.opt
    opt.num_threads = threads
    opt.use_vulkan_compute = accelerator == "vulkan"
    half = prec == "fp16"
    for name in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic"):
        setattr(opt, name, half)
    opt.use_bf16_storage = opt.use_bf16_packed = False
    for key, attr in _BOOL_OPTIONS.items():
        setattr(opt, attr, flags[key])
    with captured_output() as cap:
        rp = net.load_param(str(param_path))
        rm = net.load_model(str(bin_path)) if rp == 0 else -1
    if rp != 0 or rm != 0:
        said = cap.text.strip()[-800:]
        what = "its .param" if rp != 0 else "its .bin"
        net.clear()
        if model.format == "ncnn":
            raise CorruptModelError(f"ncnn cannot load {model.path.name} ({what} was refused: {said or 'no message'}). "
                                    "Re-export or re-download the model (.param + .bin of the same export).")
        raise UnsupportedModelError(f"ncnn cannot load its conversion of {model.path.name} ({what}: "
                                    f"{said or 'no message'}). Run the model on another runtime.")
    return net


def _onnx_specs(model: ModelFile, param: NcnnParam) -> tuple[list[TensorSpec], list[TensorSpec], tuple[list[str], list[str]]]:
    """Specs from the ONNX model; blob names as :func:`~edgekit.runtimes.ncnn_convert.blob_name` gave them."""
    from edgekit.models.model_io import model_io

    io = model_io(model)
    assert io is not None  # an ONNX model always has its I/O read
    inputs, outputs = io
    blobs = param.blobs()
    bad = [s for s in inputs if s.dtype.kind != "f"]
    if bad:
        raise UnsupportedModelError(
            f"ncnn feeds float tensors only; input {bad[0].name!r} of {model.path.name} is {bad[0].dtype} (quantized "
            "ONNX models are not read: ncnn quantizes its own models with ncnn2int8). Use another runtime.")
    names = []
    for prefix, specs in (("in", inputs), ("out", outputs)):
        names.append([s.name if s.name in blobs and f"{prefix}{i}" not in blobs else f"{prefix}{i}"
                      for i, s in enumerate(specs)])
    missing = [b for b in names[0] + names[1] if b not in blobs]
    if missing:
        raise UnsupportedModelError(f"ncnn's conversion of {model.path.name} lacks blob(s) {missing}: pnnx did not "
                                    "keep the model's inputs/outputs. Run the model on another runtime.")
    return inputs, outputs, (names[0], names[1])


def _native_specs(net: Any, param: NcnnParam, light: bool) -> tuple[list[TensorSpec], list[TensorSpec],
                                                                     tuple[list[str], list[str]]]:
    """Specs of a native ``.param``: ``(1, *Input dims)``; output ranks from one run on zeros where sizes are known."""
    f32 = np.dtype(np.float32)
    inputs = []
    for layer in param.inputs():
        dims = input_dims(layer)
        shape = (1, *(d or None for d in dims)) if dims else (1, None, None, None)
        inputs.append(TensorSpec(layer.tops[0], shape, f32))
    out_names = param.outputs()
    outputs = [TensorSpec(name, (1, None, None, None), f32) for name in out_names]
    if all(not s.is_dynamic for s in inputs):
        probe = _NCNNSession(net, inputs, outputs, ([s.name for s in inputs], out_names), native=True, light=light,
                             accelerator="cpu", precision="fp32", options={})
        try:
            got = probe._extract({s.name: np.zeros(s.concrete_shape(), np.float32) for s in inputs})
        except (InferenceError, InputError):
            got = []
        if got:
            outputs = [TensorSpec(name, (1, *arr.shape), f32) for name, arr in zip(out_names, got)]
    return inputs, outputs, ([s.name for s in inputs], out_names)

