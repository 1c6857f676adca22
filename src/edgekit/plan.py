"""Deployment plans: the configuration ``edgekit tune`` proved fastest-and-correct, as a small TOML file.

A plan names one configuration (runtime, accelerator, precision, threads, runtime options) for
one model on one device, and records what it was proved on: the model's hash (external data
included), the device profile, the host (CPU model, cores) and the runtime versions. A plan
that does not match the model, host or runtime versions in hand is *stale*: it is never used
silently (:func:`check` says why).

Example::

    plan = Plan.read("plan.toml")
    problems = check(plan, open_model("det.onnx"))    # [] when it applies here
    m = edgekit.load("det.onnx", plan="plan.toml")

(Interface module: the dataclasses are the contract between ``edgekit.tuning``, which writes
plans, and placement, which uses them.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PLAN_VERSION", "Config", "Plan"]

#: the plan file format's version; a reader accepts the same major version
PLAN_VERSION = "1.0"


@dataclass(frozen=True)
class Config:
    """One configuration to run a model with: what ``edgekit.load`` needs to reproduce it."""

    runtime: str
    accelerator: str = "cpu"
    precision: str = "fp32"
    threads: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    target: str | None = None  # the device profile target it came from ("#1 litert/cpu fp32 on cpu"), if any

    def describe(self) -> str:
        """``openvino/cpu fp32 threads=2 hint=latency``."""
        opts = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.runtime}/{self.accelerator} {self.precision} threads={self.threads}" + (f" {opts}" if opts else "")

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``edgekit.load`` that reproduce this configuration."""
        return {"runtime": self.runtime, "accelerator": self.accelerator, "precision": self.precision,
                "threads": self.threads, **self.options}


@dataclass
class Plan:
    """A deployment plan (see the module docstring). ``chosen`` is what ``load(plan=...)`` runs."""

    chosen: Config
    model_name: str
    model_sha256: str  # of the model file and every file it references (IR weights, ONNX external data)
    model_format: str
    device: str | None  # device profile name, or None (no profile: this host as it is)
    host_cpu: str  # HostInfo.cpu_model
    host_cores: int
    host_machine: str  # platform.machine()
    runtime_versions: dict[str, str]  # every runtime version the figures depend on (at least chosen.runtime)
    p50_ms: float
    p50_ci_ms: tuple[float, float] | None = None
    accuracy: dict[str, Any] = field(default_factory=dict)  # the gate's numbers for the chosen configuration
    runner_up: Config | None = None
    runner_up_p50_ms: float | None = None
    default: Config | None = None  # what load() without a plan picks
    default_p50_ms: float | None = None
    objective: str = "latency"
    inputs: str = "random"  # "random" (no inputs were given) or a description of the user's inputs
    created: str = ""  # ISO date
    edgekit_version: str = ""
    version: str = PLAN_VERSION
