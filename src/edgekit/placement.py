"""Where a model runs: the chosen runtime, accelerator, precision and options, and why.

Without a device profile, :func:`choose_runtime` takes the named runtime or the first
installed one (catalog ``priority``: onnxruntime, litert, openvino, mnn, opencv) that
reads the model's format natively, then one that converts it. With a profile, the
targets are tried in order and each rejection is kept in ``Placement.trail``.

Example::

    m = edgekit.load("face.tflite")
    print(m.placement)            # litert 2.3.0 on cpu, fp32, threads=2
    print(m.placement.explain())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import RuntimeNotInstalledError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.registry import get_runtime, iter_runtimes
from edgekit.runtime import Runtime

__all__ = ["Placement", "Rejection", "choose_runtime"]


@dataclass(frozen=True)
class Rejection:
    """A target that was considered and not used, with the reason."""

    target: str
    reason: str


@dataclass(frozen=True)
class Placement:
    """What actually runs the model."""

    runtime: str
    version: str | None
    accelerator: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    target: str | None = None
    trail: tuple[Rejection, ...] = ()
    emulated: bool = False
    notes: tuple[str, ...] = ()

    @property
    def fell_back(self) -> bool:
        """True when an earlier target of the device profile was rejected."""
        return bool(self.trail)

    def __str__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        dev = f" [device {self.device}]" if self.device else ""
        emu = " (emulated)" if self.emulated else ""
        return f"{self.runtime} {self.version or ''} on {self.accelerator}{emu}, {self.precision}" + (f", {opts}" if opts else "") + dev

    def explain(self) -> str:
        """A human-readable account: the chosen target and every rejected one before it."""
        lines = [f"chosen: {self}"]
        if self.target:
            lines[0] += f"  (target {self.target})"
        for r in self.trail:
            lines.append(f"rejected {r.target}: {r.reason}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def choose_runtime(model: ModelFile, runtime: str | None) -> Runtime:
    """The runtime to use for ``model`` when no device profile is given."""
    if runtime is not None:
        rt = get_runtime(runtime)
        if not rt.can_read(model.format):
            readers = [r.name for r in iter_runtimes() if r.can_read(model.format)]
            raise UnsupportedModelError(
                f"runtime {runtime!r} cannot read {model.format} models ({model.path.name}); it reads "
                f"{list(rt.info.formats + rt.info.converts)}. Runtimes that read {model.format}: {readers}."
            )
        rt.require()
        return rt
    native, converting = [], []
    for rt in iter_runtimes():
        if model.format in rt.info.formats:
            native.append(rt)
        elif model.format in rt.info.converts:
            converting.append(rt)
    for rt in native + converting:
        if rt.is_installed():
            return rt
    hints = "; ".join(f"{rt.name}: {rt.info.install_hint}" for rt in native + converting)
    raise RuntimeNotInstalledError(
        f"no installed runtime reads {model.format} models ({model.path.name}). Install one of them — {hints}"
        + (" — or everything with: pip install 'edgekit[all]'." if hints else ".")
    )
