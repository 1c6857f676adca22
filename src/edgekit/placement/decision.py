"""What placement decided: the :class:`Placement` (runtime, accelerator, precision, options, and why), the
:class:`Rejection` of each target passed over, and the :class:`Decision` (the opened session with its placement).

Example::

    d = place(open_model("face.tflite"), device="raspberry-pi-5")
    print(d.placement.explain())        # chosen target, rejected ones and why
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.runtime import Session

__all__ = ["EMULATOR", "Decision", "Placement", "Rejection"]



#: the runtime that emulates device profiles (edgekit.runtimes.emulated)
EMULATOR = "emulated"


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
    plan: str | None = None  # the deployment plan used: "plan.toml (tuned 2026-11-29 on <cpu>, p50 1.23 ms)"

    @property
    def fell_back(self) -> bool:
        """True when a plan or an earlier target of the device profile was rejected."""
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
        if self.plan:
            lines.append(f"plan: {self.plan}")
        for r in self.trail:
            lines.append(f"rejected {r.target}: {r.reason}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class Decision:
    """What placement decided: an opened session and the :class:`Placement` that explains it.

    The caller owns the session: :func:`edgekit.load` wraps it in a Predictor; anyone else closes it.
    """

    session: Session
    placement: Placement


