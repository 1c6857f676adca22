"""LiteRT (TensorFlow Lite) adapter: ``ai-edge-litert``, or the legacy ``tflite-runtime``.

Accelerators: ``cpu`` (built-in kernels with the XNNPACK delegate, LiteRT's default),
``reference`` (built-in kernels without XNNPACK; ``kernels="reference"`` picks TFLite's
reference kernels), ``delegate`` (an external delegate library, ``delegate="path/lib.so"``
and ``delegate_options={...}``), ``edgetpu`` (``libedgetpu.so.1``, listed only when the
library can be found) and ``gpu`` (``libtensorflowlite_gpu_delegate.so``, likewise).

With a delegate, operators it does not take run on the builtin kernels (XNNPACK off, so the
delegated partitions can be counted: ``placement.options["delegated_partitions"]``), and a
delegate that takes nothing raises instead of running everything on the CPU silently.
``num_threads`` is always set (LiteRT's default behaves as one thread). The Interpreter is
not thread-safe, so the Predictor serialises runs. A dynamic input (``-1`` in its shape
signature) is resized, and tensors re-allocated, only when the fed shape changes.

Example::

    m = edgekit.load("face.tflite", runtime="litert", threads=4)
    m = edgekit.load("face_edgetpu.tflite", runtime="litert", accelerator="edgetpu",
                     delegate_options={"device": "usb:0"})
"""

from __future__ import annotations

import ctypes
import importlib.util
import platform
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgekit.errors import (
    AcceleratorUnavailableError,
    CorruptModelError,
    InvalidOptionError,
    RuntimeNotInstalledError,
    UnsupportedModelError,
)
from edgekit.hostinfo import find_library
from edgekit.models.formats import ModelFile
from edgekit.runtime import Runtime, Session
from edgekit.tensors import TensorSpec

__all__ = ["LiteRT"]

#: accelerator -> shared libraries that provide its delegate, per platform
DELEGATE_LIBRARIES = {
    "edgetpu": {"Linux": ["libedgetpu.so.1", "libedgetpu.so"], "Darwin": ["libedgetpu.1.dylib"],
                "Windows": ["edgetpu.dll"]},
    "gpu": {"Linux": ["libtensorflowlite_gpu_delegate.so"], "Darwin": ["libtensorflowlite_gpu_delegate.dylib"],
            "Windows": ["tensorflowlite_gpu_delegate.dll"]},
}
_INSTALL_HINTS = {
    "edgetpu": "Install the Edge TPU runtime (`sudo apt-get install libedgetpu1-std`, see "
               "https://coral.ai/docs/accelerator/get-started/) or pass delegate='/path/to/libedgetpu.so.1'.",
    "gpu": "Build or download libtensorflowlite_gpu_delegate.so and put it on LD_LIBRARY_PATH, "
           "or pass delegate='/path/to/the/library'.",
    "delegate": "Pass delegate='/path/to/lib.so', the path of a library that exports tflite_plugin_create_delegate.",
}
_KERNELS = {"optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF"}
_QUANTIZED = {np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)}


def _spec(detail: dict[str, Any], name: str) -> TensorSpec:
    shape = [int(d) for d in detail["shape"]]
    sig = [int(d) for d in detail.get("shape_signature", [])]
    dims = tuple(None if s < 0 else s for s in sig) if len(sig) == len(shape) else tuple(shape)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quant = (float(scale), int(zero_point)) if scale else None
    return TensorSpec(name, dims, np.dtype(detail["dtype"]), quant)


def _signature_names(it: Any) -> dict[int, str]:
    """Tensor index -> name in the model's only signature (TF-converted tensor names are mangled)."""
    try:
        signatures = it._get_full_signature_list()
    except Exception:  # noqa: BLE001 - older interpreters lack it; tensor names then
        return {}
    if len(signatures) != 1:
        return {}
    sig = next(iter(signatures.values()))
    return {int(i): n for part in ("inputs", "outputs") for n, i in sig.get(part, {}).items()}


class _LiteRTSession(Session):
    thread_safe = False  # the Interpreter holds one set of tensors

    def __init__(self, it: Any, delegates: list[Any], accelerator: str, options: dict[str, Any]) -> None:
        ins, outs = it.get_input_details(), it.get_output_details()
        names = _signature_names(it)
        if len({names.get(d["index"], d["name"]) for d in ins + outs}) < len(ins) + len(outs):
            names = {}  # the signature does not name every input and output uniquely
        quantized = any(np.dtype(t["dtype"]) in _QUANTIZED and len(t["quantization_parameters"]["scales"])
                        for t in it.get_tensor_details())
        super().__init__([_spec(d, names.get(d["index"], d["name"])) for d in ins],
                         [_spec(d, names.get(d["index"], d["name"])) for d in outs],
                         accelerator=accelerator, precision="int8" if quantized else "fp32", options=options)
        self._it, self._delegates = it, delegates
        self._in_index = [int(d["index"]) for d in ins]
        self._out_index = [int(d["index"]) for d in outs]
        self._shapes: list[tuple[int, ...]] = [tuple(int(x) for x in d["shape"]) for d in ins]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        arrays = [feeds[s.name] for s in self.inputs]
        shapes = [arr.shape for arr in arrays]
        if shapes != self._shapes:
            self._shapes = []  # until the re-allocation succeeds
            for idx, arr in zip(self._in_index, arrays):
                self._it.resize_tensor_input(idx, list(arr.shape), strict=False)
            self._it.allocate_tensors()
            self._shapes = shapes
        for idx, arr in zip(self._in_index, arrays):
            self._it.set_tensor(idx, arr)
        self._it.invoke()
        return [self._it.get_tensor(idx) for idx in self._out_index]  # get_tensor copies

    def close(self) -> None:
        self._it = None  # the interpreter must go before the delegates it uses
        self._delegates = []


class LiteRT(Runtime):
    """LiteRT through ``ai_edge_litert.interpreter`` (or ``tflite_runtime.interpreter``)."""

    name = "litert"
    capabilities = frozenset({"dynamic_shapes", "multi_output", "int8", "delegate"})
    #: XNNPACK on (the default) or off on the CPU; threads are searched as threads=
    tunables = {"xnnpack": (True, False)}
    options_help = {
        "delegate": "path of an external delegate library (accelerator='delegate'; overrides the library "
                    "used for 'edgetpu' and 'gpu')",
        "delegate_options": "dict of string options given to the delegate library",
        "kernels": "with accelerator='reference': 'optimized' (builtin kernels, default) or 'reference' "
                   "(TFLite's reference kernels)",
        "preserve_all_tensors": "bool, keep intermediate tensors readable (debugging; uses more memory)",
        "xnnpack": "bool, with accelerator='cpu': run with the XNNPACK delegate (default True) or the builtin kernels "
                   "alone (False, as accelerator='reference' does)",
    }

    # -- availability --------------------------------------------------------------------
    def _backend(self) -> str | None:
        for module in ("ai_edge_litert", "tflite_runtime"):
            try:
                if importlib.util.find_spec(module) is not None:
                    return module
            except (ImportError, ValueError):
                continue
        return None

    def is_installed(self) -> bool:
        """True when ``ai_edge_litert`` or the legacy ``tflite_runtime`` can be imported."""
        return self._backend() is not None

    def _module(self) -> Any:
        backend = self._backend()
        if backend is None:
            raise RuntimeNotInstalledError(
                f"runtime 'litert' ({self.info.title}) is not installed: neither ai_edge_litert nor tflite_runtime "
                f"was found. Install it with: {self.info.install_hint}"
            )
        if backend == "tflite_runtime" and int(np.__version__.split(".")[0]) >= 2:
            raise RuntimeNotInstalledError(
                f"only the legacy tflite-runtime is installed, and it cannot create an Interpreter with numpy "
                f"{np.__version__} ('_ARRAY_API not found'): it needs numpy<2. Install ai-edge-litert instead "
                f"({self.info.install_hint}), or `pip install 'numpy<2'`."
            )
        if backend == "ai_edge_litert":
            from ai_edge_litert import interpreter
        else:
            from tflite_runtime import interpreter  # type: ignore[no-redef]
        return interpreter

    def accelerators(self) -> list[str]:
        self._module()
        found = [acc for acc, libs in DELEGATE_LIBRARIES.items() if find_library(libs.get(platform.system(), []))]
        return ["cpu", "reference", "delegate", *found]

    # -- loading -------------------------------------------------------------------------
    def require(self) -> None:
        self._module()

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        return ("fp32", "int8")  # the model decides: a quantized model runs int8, a float one fp32

    def default_accelerator_for(self, options: Mapping[str, Any]) -> str:
        return "delegate" if options.get("delegate") else "cpu"

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        mod = self._module()
        acc = accelerator
        used: dict[str, Any] = {"threads": threads}
        kwargs: dict[str, Any] = {"model_path": str(model.path), "num_threads": threads}
        kernels = options.get("kernels")
        if kernels is not None and (acc != "reference" or kernels not in _KERNELS):
            raise InvalidOptionError(
                f"kernels={kernels!r} is only for accelerator='reference' and must be one of {list(_KERNELS)}; "
                f"got accelerator={acc!r}. Pass accelerator='reference' with it, or drop the option."
            )
        xnnpack = options.get("xnnpack")
        if xnnpack is not None and (not isinstance(xnnpack, bool) or (acc != "cpu" and xnnpack)):
            raise InvalidOptionError(
                f"xnnpack={xnnpack!r} takes True or False with accelerator='cpu' (got accelerator={acc!r}); other "
                "accelerators never use XNNPACK. Drop the option, or pass accelerator='cpu'.")
        if acc == "cpu" and xnnpack is False:
            kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            used["xnnpack"] = False
        if acc == "reference":
            used["kernels"] = kernels or "optimized"
            kwargs["experimental_op_resolver_type"] = getattr(mod.OpResolverType, _KERNELS[used["kernels"]])
        for key in ("delegate", "delegate_options"):
            if options.get(key) and acc not in ("delegate", "edgetpu", "gpu"):
                raise InvalidOptionError(f"{key}= needs accelerator 'delegate', 'edgetpu' or 'gpu', not {acc!r}; "
                                         "pass one of those, or drop the option.")
        delegates = []
        if acc in ("delegate", "edgetpu", "gpu"):
            known = DELEGATE_LIBRARIES.get(acc, {}).get(platform.system(), [])
            library = options.get("delegate") or find_library(known)
            if not library:
                error = InvalidOptionError if acc == "delegate" else AcceleratorUnavailableError
                raise error(f"litert accelerator {acc!r} needs a delegate library. {_INSTALL_HINTS[acc]}")
            delegate_options = {str(k): str(v) for k, v in (options.get("delegate_options") or {}).items()}
            delegates.append(_load_delegate(mod, str(library), delegate_options, acc))
            kwargs["experimental_delegates"] = delegates
            # no XNNPACK beside it, so that every DELEGATE node counted below is the delegate's own
            kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            used.update(delegate=str(library), delegate_options=delegate_options)
        if options.get("preserve_all_tensors"):
            kwargs["experimental_preserve_all_tensors"] = used["preserve_all_tensors"] = True
        _refuse_known_crashes(model)
        try:
            it = _quietly(lambda: _allocated(mod.Interpreter(**kwargs)))
        except Exception as exc:
            raise _translate(exc, model, acc) from exc
        if delegates:
            used["delegated_partitions"] = _delegated_partitions(it)
        session = _LiteRTSession(it, delegates, acc, used)
        try:
            self.check_precision(precision, (session.precision,))
            if used.get("delegated_partitions") == 0:
                raise UnsupportedModelError(
                    f"litert accelerator {acc!r}: the delegate {used['delegate']!r} took none of the operators of "
                    f"{model.path.name}; it would run entirely on the CPU. "
                    + ("Compile the model for the Edge TPU with edgetpu_compiler first, or use accelerator='cpu'."
                       if acc == "edgetpu" else "Use accelerator='cpu', or a model the delegate supports.")
                )
        except (InvalidOptionError, UnsupportedModelError):
            session.close()
            raise
        return session


def _allocated(it: Any) -> Any:
    it.allocate_tensors()
    return it


#: TFLite's C++ logger writes INFO lines to stderr, such as "INFO: Created TensorFlow Lite XNNPACK delegate for
#: CPU." once per process on the first allocation with XNNPACK; neither an environment variable (TF_CPP_MIN_LOG_LEVEL
#: is not read by it) nor ai-edge-litert's Python API lowers its level
_INFO_LINE = re.compile(r"^INFO: [^\n]*\n?", re.M)
_XNNPACK_SEEN: list[bool] = []


def _quietly(create: Callable[[], Any]) -> Any:
    """``create()`` with fds 1/2 captured until TFLite has announced XNNPACK; all but its INFO lines are written
    back to stderr (MNN's capture, so one lock serialises both adapters' redirections)."""
    if _XNNPACK_SEEN:
        return create()
    from edgekit.runtimes._capture import captured_output

    cap = captured_output()
    try:
        with cap:
            return create()
    finally:
        text = getattr(cap, "text", "")
        if "XNNPACK" in text:
            _XNNPACK_SEEN.append(True)
        rest = _INFO_LINE.sub("", text)
        if rest:
            sys.stderr.write(rest)
            sys.stderr.flush()


def _refuse_known_crashes(model: ModelFile) -> None:
    """Valid models that crash the interpreter process (measured on ai-edge-litert 2.3.0) raise instead."""
    from edgekit.models import tflite_schema

    info = tflite_schema.read_file(model.path)
    for g, sg in enumerate(info.subgraphs):
        for i, op in enumerate(sg.operators):
            if op.name == "DEPTHWISE_CONV_2D" and len(op.inputs) == 2:
                raise UnsupportedModelError(
                    f"{model.path.name}: subgraph {g} operator {i} is a DEPTHWISE_CONV_2D without a bias input; "
                    "LiteRT's kernel crashes the process running it (segfault). Add a zero bias when exporting, "
                    "or run the model on another runtime.",
                    operators=("DEPTHWISE_CONV_2D",),
                )


def _delegated_partitions(it: Any) -> int | None:
    """How many DELEGATE nodes the interpreter's graph has (None when it cannot tell)."""
    try:
        return sum(op.get("op_name") == "DELEGATE" for op in it._get_ops_details())
    except Exception:  # noqa: BLE001 - a private API; without it the check is skipped
        return None


def _load_delegate(mod: Any, library: str, options: dict[str, str], acc: str) -> Any:
    """``load_delegate`` after checking the library ourselves (its failures leave noisy ``__del__`` errors)."""
    hint = _INSTALL_HINTS[acc]
    try:
        lib = ctypes.CDLL(library)
    except OSError as exc:
        raise AcceleratorUnavailableError(
            f"litert accelerator {acc!r}: cannot load the delegate library {library!r} ({exc}). "
            f"Check the path. {hint}"
        ) from exc
    if not hasattr(lib, "tflite_plugin_create_delegate"):
        raise AcceleratorUnavailableError(
            f"litert accelerator {acc!r}: {library!r} is not a TFLite external delegate (it does not export "
            f"tflite_plugin_create_delegate), so it cannot be loaded as one. {hint}"
        )
    try:
        return mod.load_delegate(library, options)
    except (ValueError, RuntimeError, OSError) as exc:
        raise AcceleratorUnavailableError(
            f"litert accelerator {acc!r}: the delegate {library!r} failed to start with options {options}: {exc}. "
            "Check that the device is connected and the options are right (e.g. {'device': 'usb:0'} for a Coral)."
        ) from exc


def _translate(exc: Exception, model: ModelFile, acc: str) -> Exception:
    msg = str(exc).strip()
    m = re.search(r"Encountered unresolved custom op: ([^\s.]+)", msg)
    if m:
        op = m.group(1)
        return UnsupportedModelError(
            f"litert has no kernel for the custom operator {op!r} used in {model.path.name}. Custom operators need "
            "the library that registers them; run the model on a runtime that has it, or re-export it with "
            "builtin operators only (`edgekit check` lists what each runtime supports).",
            operators=(op,),
        )
    m = re.search(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'", msg)
    if m:
        op, version = m.groups()
        return UnsupportedModelError(
            f"this LiteRT build has no kernel for builtin operator {op} version {version} used in {model.path.name} "
            "(the model is newer than the runtime). Upgrade it: pip install -U ai-edge-litert.",
            operators=(op,),
        )
    if "not a valid Flatbuffer" in msg or "model identifier" in msg:
        return CorruptModelError(
            f"litert rejects {model.path.name} as a malformed flatbuffer ({msg}). Re-export or re-download the model."
        )
    where = f" with accelerator {acc!r}" if acc != "cpu" else ""
    return UnsupportedModelError(
        f"litert cannot prepare {model.path.name}{where}: {type(exc).__name__}: {msg}. "
        + ("Try accelerator='reference' (no XNNPACK) or another runtime." if acc == "cpu" else
           "Try accelerator='cpu'.")
    )
