"""The adapter contract every runtime implements — built-ins and plugins alike.

An adapter is a :class:`Runtime` subclass registered in the entry-point group
``edgekit.runtimes`` (or with :func:`edgekit.register_runtime`). Its facts (formats, install
extra, wheels, known accelerators) live in ``runtimes/<name>.toml``; a plugin without a TOML
there sets ``default_info``. Adapter modules import their library inside methods only, so
``import edgekit`` stays light.

What an adapter writes: :meth:`Runtime.accelerators` and :meth:`Runtime._open` (returning a
:class:`Session` with ``run``). :meth:`Runtime.open` is a template method: it runs the checks
every runtime shares (installed, known options, accelerator present, precision allowed, a
thread count) once, then calls ``_open`` with validated values. Optional capabilities are
declared, never sniffed: ``Runtime.capabilities`` names them, ``Session.op_profile()`` and
``Session.estimate()`` return data or ``None``, ``Runtime.tunables`` lists the options that
change speed, ``Runtime.picked_by_default`` says whether edgekit uses it without being asked
(``load()`` without ``runtime=``, ``edgekit profile`` without ``--runtime``).

Example (a plugin)::

    class MyRuntime(Runtime):
        name = "myrt"
        def accelerators(self): return ["cpu"]
        def _open(self, model, *, accelerator, threads, precision, options, profile_ops):
            return MySession(inputs, outputs, accelerator=accelerator, precision=precision or "fp32")

    # pyproject.toml:  [project.entry-points."edgekit.runtimes"]  myrt = "mypkg:MyRuntime"
"""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import AcceleratorUnavailableError, InvalidOptionError, RuntimeNotInstalledError, option
from edgekit.models.formats import ModelFile
from edgekit.tensors import TensorSpec

__all__ = ["CAPABILITIES", "PRECISIONS", "OpProfile", "OpTiming", "Runtime", "RuntimeInfo", "Session", "default_threads"]

PRECISIONS = ("fp32", "fp16", "bf16", "int8")

#: optional capabilities an adapter may declare in ``Runtime.capabilities``
CAPABILITIES = {
    "op_profile": "times each operator: open(..., profile_ops=True), then Session.op_profile()",
    "dynamic_shapes": "runs inputs whose dimensions are dynamic (e.g. a free batch size) at any fed size",
    "multi_output": "returns every output of a multi-output model",
    "int8": "runs int8-quantized models (QDQ ONNX, int8 TFLite)",
    "estimate": "predicts the latency of a real device: Session.estimate()",
    "delegate": "loads an external delegate library named by a device profile's target (delegate = ...)",
}


@dataclass(frozen=True)
class RuntimeInfo:
    """Catalog facts about a runtime, read from ``runtimes/<name>.toml``."""

    name: str
    title: str
    module: str  # import name probed with find_spec
    wheels: tuple[str, ...]  # distributions that provide the module
    extra: str  # pip extra of edgekit that installs it
    formats: tuple[str, ...]  # read natively
    converts: tuple[str, ...] = ()  # read after converting
    priority: int = 50  # lower is tried first when no runtime is named
    accelerators: Mapping[str, str] = field(default_factory=dict)  # known names -> description
    homepage: str = ""
    notes: tuple[str, ...] = ()
    ops: Mapping[str, Any] = field(default_factory=dict)
    conformance: Mapping[str, Any] = field(default_factory=dict)  # known_failures: "case/format" -> {error, reason}

    @property
    def install_hint(self) -> str:
        return f"pip install 'edgekit[{self.extra}]'"


def default_threads(threads: int | None) -> int:
    """The thread count a session gets: ``threads`` when given, else every core of this host.

    >>> default_threads(3)
    3
    >>> default_threads(None) == (os.cpu_count() or 1)
    True
    """
    if threads is None:
        return os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidOptionError(f"threads must be a positive integer, got {threads!r}. Pass e.g. threads=2, or "
                                 "leave it out to use every core.")
    return threads


@dataclass(frozen=True)
class OpTiming:
    """Time spent in one operator, summed over ``OpProfile.runs`` runs."""

    name: str
    type: str
    time_us: float
    kernel: str | None = None  # the runtime's kernel or execution provider, where it says


@dataclass(frozen=True)
class OpProfile:
    """Per-operator times from a runtime's own profiler (:meth:`Session.op_profile`)."""

    runs: int
    ops: tuple[OpTiming, ...]


class Session(ABC):
    """A loaded model inside one runtime. ``run`` takes checked feeds in model order.

    Adapters call ``super().__init__(inputs, outputs, accelerator=..., precision=..., options=...)``.
    ``options`` records what was actually used (threads, knobs), for ``Placement``.
    """

    #: True when ``run`` may be called from several threads at once without a lock.
    thread_safe: bool = False

    def __init__(self, inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec], *, accelerator: str = "cpu",
                 precision: str = "fp32", options: Mapping[str, Any] | None = None) -> None:
        self.inputs: list[TensorSpec] = list(inputs)
        self.outputs: list[TensorSpec] = list(outputs)
        self.accelerator = accelerator
        self.precision = precision
        self.options: dict[str, Any] = dict(options or {})
        self._op_runs: list[dict[str, OpTiming]] | None = None  # per run, when recording operator times

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run once; return one array per output, in ``self.outputs`` order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""

    # -- optional capabilities: data, or None where the runtime cannot ---------------------------
    def op_profile(self, skip: int = 0) -> OpProfile | None:
        """Per-operator times summed over the runs since the session opened, leaving out the first ``skip``.

        ``None`` unless the runtime declares ``"op_profile"`` and the session was opened with
        ``profile_ops=True``. Adapters whose runtime reports the last run's times call
        :meth:`_record_ops` after each run; others (ONNX Runtime's trace) override this method.
        """
        if self._op_runs is None:
            return None
        runs = self._op_runs[skip:]
        totals: dict[str, OpTiming] = {}
        for run in runs:
            for name, op in run.items():
                prev = totals.get(name)
                totals[name] = op if prev is None else OpTiming(name, op.type, prev.time_us + op.time_us, op.kernel)
        return OpProfile(len(runs), tuple(totals.values()))

    def estimate(self) -> Any:
        """Predicted latency of one inference on a real device (emulated sessions); ``None`` elsewhere."""
        return None

    def _record_ops(self, ops: Iterable[OpTiming]) -> None:
        """Keep one run's operator times (for :meth:`op_profile`); a no-op unless profiling."""
        if self._op_runs is not None:
            self._op_runs.append({op.name: op for op in ops})

    def _start_op_recording(self) -> None:
        """Called by adapters that record per-run operator times when opened with ``profile_ops=True``."""
        self._op_runs = []


class Runtime(ABC):
    """One inference runtime. Instances are cheap; the library loads on first use."""

    name: ClassVar[str]
    default_info: ClassVar[RuntimeInfo | None] = None
    #: runtime-specific options accepted by ``open`` (besides threads/precision), with help
    options_help: ClassVar[Mapping[str, str]] = {}
    #: optional capabilities (keys of :data:`CAPABILITIES`) this adapter has
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: options that change speed, with the values worth trying, the adapter's default first (``edgekit tune``
    #: varies one at a time from the defaults and keeps a setting only if the outputs still match)
    tunables: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    #: whether edgekit picks this runtime when none is named (``load()`` without ``runtime=``, ``edgekit profile``
    #: without ``--runtime``); False for runtimes that stand in for others (the emulator, the reference evaluator)
    picked_by_default: ClassVar[bool] = True
    #: accelerator used when none is asked for
    default_accelerator: ClassVar[str] = "cpu"

    def __init__(self, info: RuntimeInfo) -> None:
        self.info = info

    # -- availability, without importing the library -------------------------------------
    def is_installed(self) -> bool:
        """True when the runtime's module can be imported (nothing is imported here)."""
        try:
            return importlib.util.find_spec(self.info.module) is not None
        except (ImportError, ValueError):
            return False

    def version(self) -> str | None:
        """Version of the first installed wheel that provides the module."""
        import importlib.metadata

        for wheel in self.info.wheels:
            try:
                return importlib.metadata.version(wheel)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None

    def import_library(self) -> Any:
        """Import the runtime's Python library (adapters that must import it in a particular way override this)."""
        import importlib

        self.require()
        return importlib.import_module(self.info.module)

    def require(self) -> None:
        """Raise RuntimeNotInstalledError with the install command when missing."""
        if not self.is_installed():
            raise RuntimeNotInstalledError(
                f"runtime {self.name!r} ({self.info.title}) is not installed: its Python module "
                f"{self.info.module!r} was not found. Install it with: {self.info.install_hint}"
            )

    @property
    def formats(self) -> tuple[str, ...]:
        """Every model format this runtime reads, natively first, then by converting."""
        return self.info.formats + tuple(f for f in self.info.converts if f not in self.info.formats)

    def can_read(self, fmt: str) -> bool:
        """True when this runtime reads ``fmt`` natively or by converting it."""
        return fmt in self.formats

    def not_ready(self, fmt: str) -> str | None:
        """Why this installed runtime cannot read ``fmt`` yet although it can once set up, else None.

        E.g. ncnn reads ONNX through pnnx, which is fetched only on request. Commands that pick
        runtimes themselves (``edgekit profile`` without ``--runtime``, ``tune``) pass over a
        runtime that is not ready, and say why; naming it gets the error that tells the fix.
        """
        return None

    def has(self, capability: str) -> bool:
        """True when this adapter declares ``capability`` (see :data:`CAPABILITIES`)."""
        return capability in self.capabilities

    # -- opening a model: the template method ---------------------------------------------
    def open(self, model: ModelFile, *, accelerator: str | None = None, threads: int | None = None,
             precision: str | None = None, options: Mapping[str, Any] | None = None,
             profile_ops: bool = False) -> Session:
        """Load ``model``; raise edgekit errors, translated ``from`` the library's.

        Runs the shared checks once — installed, known options, accelerator present, precision
        allowed on it, thread count (default: every core) — then the adapter's :meth:`_open`.
        """
        self.require()
        opts = dict(options or {})
        self.check_options(opts)
        acc = self.pick_accelerator(accelerator, self.default_accelerator_for(opts))
        prec = self.check_precision(precision, self.precisions(acc)) if precision is not None else None
        if profile_ops and not self.has("op_profile"):
            raise InvalidOptionError(
                f"runtime {self.name!r} cannot time individual operators (it does not declare the 'op_profile' "
                "capability); open it without profile_ops, or profile on a runtime that can (`edgekit runtimes`).")
        return self._open(model, accelerator=acc, threads=default_threads(threads), precision=prec, options=opts,
                          profile_ops=profile_ops)

    # -- what adapters implement ---------------------------------------------------------
    @abstractmethod
    def accelerators(self) -> list[str]:
        """Accelerators present on this host in this build (imports the library)."""

    @abstractmethod
    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        """Load ``model`` with checked arguments; ``precision`` None means the runtime's default."""

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        """Precisions this runtime can compute in on ``accelerator``, its default first."""
        return ("fp32",)

    def accelerator_device(self, accelerator: str) -> str | None:
        """The device behind ``accelerator`` on this host, for people (``edgekit runtimes``); None: nothing to add.

        A software implementation of a GPU API is named as such, e.g. "vulkan: llvmpipe (software
        rasterizer — functional check only, not a GPU)". Sessions opened on one record this text as
        option ``device`` and ``software_device=True``; ``edgekit profile`` marks their rows.
        """
        return None

    def default_accelerator_for(self, options: Mapping[str, Any]) -> str:
        """The accelerator used when none is asked for (some options imply one, e.g. a delegate)."""
        return self.default_accelerator

    # -- shared checks ----------------------------------------------------------------------
    def check_options(self, options: Mapping[str, Any]) -> None:
        """Reject options this runtime does not know, listing the ones it does."""
        unknown = sorted(set(options) - set(self.options_help))
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in self.options_help.items()) or "none"
            raise InvalidOptionError(
                f"runtime {self.name!r} does not take option(s) {unknown}; it takes threads=, precision=, "
                f"accelerator= and: {known}."
            )

    def pick_accelerator(self, accelerator: str | None, default: str = "cpu") -> str:
        """Validate ``accelerator`` against what is present; ``None`` means ``default``."""
        acc = (accelerator or default).lower()
        present = self.accelerators()
        if acc not in present:
            known = self.info.accelerators
            what = f"{acc!r} ({known[acc]})" if acc in known else repr(acc)
            raise AcceleratorUnavailableError(
                f"runtime {self.name!r}: accelerator {what} is not available on this host/build; "
                f"available here: {present}. Pick one of those, or install a build that has it"
                + (f" (wheels: {', '.join(self.info.wheels)})" if len(self.info.wheels) > 1 else "")
                + "."
            )
        return acc

    def check_precision(self, precision: str | None, allowed: tuple[str, ...]) -> str:
        """Validate a precision name; ``None`` means the first of ``allowed``."""
        prec = (precision or allowed[0]).lower()
        if prec not in allowed:
            raise InvalidOptionError(
                f"runtime {self.name!r} cannot compute in precision {prec!r} here; it can: {list(allowed)}. "
                f"Pass {option('precision')} one of those (or quantize the model for int8: `edgekit quantize`)."
            )
        return prec
