"""The adapter contract every runtime implements — built-ins and plugins alike.

An adapter is a :class:`Runtime` subclass registered in the entry-point group
``edgekit.runtimes``. Its facts (formats, install extra, wheels, known accelerators)
live in ``runtimes/<name>.toml``; a plugin without a TOML there sets ``default_info``.
Adapter modules import their library inside methods only, so ``import edgekit``
stays light.

Example (a plugin)::

    class MyRuntime(Runtime):
        name = "myrt"
        def accelerators(self): return ["cpu"]
        def open(self, model, *, accelerator, threads, precision, options): return MySession(...)

    # pyproject.toml:  [project.entry-points."edgekit.runtimes"]  myrt = "mypkg:MyRuntime"
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import AcceleratorUnavailableError, InvalidOptionError, RuntimeNotInstalledError
from edgekit.models.formats import ModelFile
from edgekit.tensors import TensorSpec

__all__ = ["Runtime", "RuntimeInfo", "Session"]

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


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
    conformance: Mapping[str, Any] = field(default_factory=dict)  # known_failures: "case/format" -> reason

    @property
    def install_hint(self) -> str:
        return f"pip install 'edgekit[{self.extra}]'"


class Session(ABC):
    """A loaded model inside one runtime. ``run`` takes checked feeds in model order."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    accelerator: str = "cpu"
    precision: str = "fp32"
    options: dict[str, Any]
    #: True when ``run`` may be called from several threads at once without a lock.
    thread_safe: bool = False

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run once; return one array per output, in ``self.outputs`` order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""


class Runtime(ABC):
    """One inference runtime. Instances are cheap; the library loads on first use."""

    name: ClassVar[str]
    default_info: ClassVar[RuntimeInfo | None] = None
    #: runtime-specific options accepted by ``open`` (besides threads/precision), with help
    options_help: ClassVar[Mapping[str, str]] = {}

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

    def require(self) -> None:
        """Raise RuntimeNotInstalledError with the install command when missing."""
        if not self.is_installed():
            raise RuntimeNotInstalledError(
                f"runtime {self.name!r} ({self.info.title}) is not installed: its Python module "
                f"{self.info.module!r} was not found. Install it with: {self.info.install_hint}"
            )

    def can_read(self, fmt: str) -> bool:
        """True when this runtime reads ``fmt`` natively or by converting it."""
        return fmt in self.info.formats or fmt in self.info.converts

    # -- what adapters implement ---------------------------------------------------------
    @abstractmethod
    def accelerators(self) -> list[str]:
        """Accelerators present on this host in this build (imports the library)."""

    @abstractmethod
    def open(
        self,
        model: ModelFile,
        *,
        accelerator: str | None,
        threads: int | None,
        precision: str | None,
        options: dict[str, Any],
    ) -> Session:
        """Load ``model``; raise edgekit errors, translated ``from`` the library's."""

    # -- helpers for adapters ------------------------------------------------------------
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

    @staticmethod
    def check_precision(runtime: str, precision: str | None, allowed: tuple[str, ...]) -> str:
        """Validate a precision name; ``None`` means the first of ``allowed``."""
        prec = (precision or allowed[0]).lower()
        if prec not in allowed:
            raise InvalidOptionError(
                f"runtime {runtime!r} cannot compute in precision {prec!r} here; it can: {list(allowed)}. "
                "Pass precision= one of those (or quantize the model for int8: `edgekit quantize`)."
            )
        return prec
