"""Deployment plans: the configuration ``edgekit tune`` proved fastest-and-correct, as a small TOML file.

A plan names one configuration (runtime, accelerator, precision, threads, runtime options) for
one model on one device, and records what it was proved on: the model's hash (external data
included), the device profile, the host (CPU model, cores, machine) and the runtime versions.
A plan that does not match the model, host or runtime versions in hand is *stale*: it is never
used silently (:func:`check` says why, and placement warns and falls back).

The file (``version = "1.0"``; a reader takes the same major version, and from a newer minor
version ignores keys it does not know)::

    version = "1.0"
    created = "2026-11-29"
    edgekit_version = "0.9.0"
    objective = "latency"
    inputs = "random"

    [model]
    name = "det.onnx"
    format = "onnx"
    sha256 = "9f2c..."              # the model and every file it references

    [host]
    device = "generic-x86-64"       # the device profile; left out: this host as it is
    cpu = "Intel(R) Xeon(R) Processor"
    cores = 16
    machine = "x86_64"

    [runtimes]                      # every runtime version the figures depend on
    openvino = "2026.4.1"

    [chosen]                        # what load(plan=...) runs
    runtime = "openvino"
    accelerator = "cpu"
    precision = "fp32"
    threads = 2
    p50_ms = 1.23
    p50_ci_ms = [1.21, 1.25]
    [chosen.options]                # only the runtime's speed settings (Runtime.tunables)
    hint = "latency"
    [chosen.accuracy]
    max_abs = 3.1e-07

    [runner_up]                     # and [default]: same keys as [chosen] without accuracy
    ...

Plans are untrusted input (they travel in bundles and sit in a shared cache): :meth:`Plan.read`
checks every key (:class:`~edgekit.errors.PlanError` names the file, the key, what was expected
and what was found), files over :data:`MAX_PLAN_BYTES` are refused unread, and :func:`check`
refuses options that are not speed settings (a plan cannot make a runtime load a library).

The plan cache (``$EDGEKIT_CACHE/plans/<model sha256>/<device>-<key>.toml``, the key a hash of
the device and the host, written by :func:`edgekit.plan_cache.cache_plan`) is what ``edgekit.load(model, device="auto")`` consults through
:func:`edgekit.plan_cache.find_plan`; entries are read back through the same checks, and one that does not check
out is ignored with its reason.

Example::

    plan = Plan.read("plan.toml")
    problems = check(plan, open_model("det.onnx"))    # [] when it applies here
    m = edgekit.load("det.onnx", plan="plan.toml")

(Interface module: the dataclasses are the contract between ``edgekit.tuning``, which writes
plans, and placement, which uses them.)
"""

from __future__ import annotations

import functools
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.cache import atomic_path
from edgekit.errors import ConfigError, InvalidOptionError, PlanError, UnknownRuntimeError
from edgekit.models.formats import ModelFile
from edgekit.runtime import PRECISIONS
from edgekit.tomlfile import check_keys, expect, read_toml, toml_key, toml_value

__all__ = ["MAX_PLAN_BYTES", "PLAN_VERSION", "Config", "Plan", "check", "host_facts"]

#: the plan file format's version; a reader accepts the same major version
PLAN_VERSION = "1.0"

#: largest plan file read (a plan is a few hundred bytes; the limit leaves room for accuracy tables)
MAX_PLAN_BYTES = 64 << 10

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")  # runtime, accelerator and device names
_SCALAR = (str, int, float, bool)


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
        """``openvino/cpu fp32 threads=2 hint=latency``.

        >>> Config("openvino", threads=2, options={"hint": "latency"}).describe()
        'openvino/cpu fp32 threads=2 hint=latency'
        """
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
    source: str | None = field(default=None, compare=False)  # the file it was read from (not written)

    # -- making one ---------------------------------------------------------------------------
    @classmethod
    def for_here(cls, chosen: Config, model: ModelFile, *, device: str | None, p50_ms: float,
                 runtimes: Iterable[str] = (), **figures: Any) -> Plan:
        """A plan for ``model`` on this host, with the model, host and runtime-version facts filled in.

        ``runtimes``: more runtimes whose versions the figures depend on (the reference, every
        candidate's); the chosen, runner-up and default configurations' runtimes are always
        recorded. ``figures``: the other fields (``runner_up=``, ``accuracy=``, ``p50_ci_ms=`` ...); they
        may also replace a fact filled in here.

        >>> plan = Plan.for_here(Config("openvino"), open_model("det.onnx"), device=None, p50_ms=1.2)  # doctest: +SKIP
        """
        from datetime import date

        from edgekit._version import __version__

        cpu, cores, machine = host_facts()
        names = [chosen.runtime, *(c.runtime for c in (figures.get("runner_up"), figures.get("default")) if c),
                 *runtimes]
        facts: dict[str, Any] = {
            "model_name": model.path.name, "model_sha256": model.sha256(), "model_format": model.format,
            "host_cpu": cpu, "host_cores": cores, "host_machine": machine, "created": date.today().isoformat(),
            "edgekit_version": __version__, "runtime_versions": {n: _version_here(n) for n in dict.fromkeys(names)}}
        return cls(chosen=chosen, device=device, p50_ms=p50_ms, **{**facts, **figures})

    def describe(self) -> str:
        """One line for ``Placement.explain()``: where the plan came from, when and where it was tuned, its p50."""
        where = self.source or "(a Plan object)"
        on = self.host_cpu + (f", device {self.device}" if self.device else "")
        return f"{where} (tuned {self.created or 'on an unknown date'} on {on}, p50 {self.p50_ms:.3g} ms)"

    # -- the file -----------------------------------------------------------------------------
    def to_toml(self) -> str:
        """The plan as TOML text (see the module docstring for the layout)."""
        top: dict[str, Any] = {"version": self.version, "created": self.created,
                               "edgekit_version": self.edgekit_version, "objective": self.objective,
                               "inputs": self.inputs}
        host: dict[str, Any] = {"device": self.device, "cpu": self.host_cpu, "cores": self.host_cores,
                                "machine": self.host_machine}
        lines = ["# edgekit deployment plan, written by `edgekit tune`; use it with edgekit.load(model, plan=FILE).",
                 "# The keys are described in edgekit.plan's docstring. Hand edits are checked when it is read.", ""]
        lines += _key_values(top)
        lines += ["", "[model]", *_key_values({"name": self.model_name, "format": self.model_format,
                                                "sha256": self.model_sha256})]
        lines += ["", "[host]", *_key_values(host)]
        lines += ["", "[runtimes]", *_key_values(dict(sorted(self.runtime_versions.items())))]
        chosen = {"p50_ms": self.p50_ms, "p50_ci_ms": list(self.p50_ci_ms) if self.p50_ci_ms else None}
        lines += _config_table("chosen", self.chosen, chosen, self.accuracy)
        if self.runner_up is not None:
            lines += _config_table("runner_up", self.runner_up, {"p50_ms": self.runner_up_p50_ms}, None)
        if self.default is not None:
            lines += _config_table("default", self.default, {"p50_ms": self.default_p50_ms}, None)
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the plan to ``path`` atomically; an existing file is replaced only with ``force=True``.

        Raises :class:`~edgekit.errors.InvalidOptionError` when ``path`` exists and ``force`` is not set.
        """
        dest = Path(path).expanduser()
        if dest.is_dir():
            raise InvalidOptionError(f"{dest} is a folder; expected a plan file name such as {dest / 'plan.toml'}.")
        if dest.exists() and not force:
            raise _exists(dest)
        text = self.to_toml()
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            tmp.write_text(text, encoding="utf-8")
            if not force:
                try:  # a file that appeared since the check above is kept: link fails where replace would not
                    os.link(tmp, dest)
                except FileExistsError:
                    raise _exists(dest) from None
                except OSError:
                    pass  # no hard links on this file system: the check above stands
        return dest

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Plan:
        """Read and check a plan file; raise :class:`~edgekit.errors.PlanError` naming file, key, expected, got."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise PlanError(f"{p}: no such plan file (or not a regular file); expected a TOML plan written by "
                            f"`edgekit tune MODEL -o {p.name}`. Check the path, or make the plan.")
        size = p.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanError(f"{p}: {size} bytes, larger than a plan can be ({MAX_PLAN_BYTES} bytes); expected a small "
                            "TOML file written by `edgekit tune`. Check that the path names a plan.")
        try:
            data = read_toml(p)
        except ConfigError as exc:  # bad syntax, not UTF-8, nested too deeply: as the plan's error type
            raise PlanError(str(exc)) from exc
        plan = cls.from_dict(data, str(p))
        plan.source = str(p)
        return plan

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Plan:
        """A plan from parsed TOML, every key checked (``where`` names the file in errors); raises PlanError."""
        try:
            return cls._parse(data, where)
        except PlanError:
            raise
        except ConfigError as exc:  # tomlfile's expect()/check_keys(): file, key, expected, got
            raise PlanError(str(exc)) from exc

    @classmethod
    def _parse(cls, data: Mapping[str, Any], where: str) -> Plan:
        version = expect(data, "version", str, where)
        m = re.fullmatch(r"(\d+)\.(\d+)", version)
        ours = [int(v) for v in PLAN_VERSION.split(".")]
        if m is None:
            raise PlanError(f"{where}: key 'version' expected MAJOR.MINOR such as {PLAN_VERSION!r}, got {version!r}.")
        if int(m[1]) != ours[0]:
            newer = "a newer" if int(m[1]) > ours[0] else "an older"
            raise PlanError(f"{where}: key 'version' expected {ours[0]}.x (this edgekit reads plan format "
                            f"{PLAN_VERSION}), got {version!r}: the plan was written by {newer} edgekit. Re-run "
                            "`edgekit tune` with this edgekit, or load the plan with the edgekit that wrote it.")
        strict = int(m[2]) <= ours[1]  # a newer minor version may add keys: ignore those

        def keys(table: Mapping[str, Any], allowed: set[str], w: str) -> None:
            if strict:
                check_keys(table, allowed, w)

        keys(data, {"version", "created", "edgekit_version", "objective", "inputs", "model", "host", "runtimes",
                    "chosen", "runner_up", "default"}, where)
        model = expect(data, "model", dict, where)
        keys(model, {"name", "format", "sha256"}, f"{where} [model]")
        sha = expect(model, "sha256", str, f"{where} [model]")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise PlanError(f"{where} [model]: key 'sha256' expected 64 lowercase hex digits, got {sha!r}.")
        host = expect(data, "host", dict, where)
        keys(host, {"device", "cpu", "cores", "machine"}, f"{where} [host]")
        cores = expect(host, "cores", int, f"{where} [host]")
        if cores < 1:
            raise PlanError(f"{where} [host]: key 'cores' expected a positive integer, got {cores}.")
        device = expect(host, "device", str, f"{where} [host]", required=False)
        if device is not None:
            _name(device, "device", f"{where} [host]")
        versions = expect(data, "runtimes", dict, where)
        for name in versions:
            _name(name, "runtimes", f"{where} [runtimes]")
            expect(versions, name, str, f"{where} [runtimes]")
        chosen_t = expect(data, "chosen", dict, where)
        chosen = _config(chosen_t, f"{where} [chosen]", {"p50_ms", "p50_ci_ms", "accuracy"}, keys)
        if chosen.runtime not in versions:
            raise PlanError(f"{where} [runtimes]: expected the version of the chosen runtime {chosen.runtime!r}, got "
                            f"versions of {sorted(versions)}. Re-run `edgekit tune` to write a complete plan.")
        ci = expect(chosen_t, "p50_ci_ms", list, f"{where} [chosen]", required=False)
        if ci is not None and (len(ci) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        for v in ci)):
            raise PlanError(f"{where} [chosen]: key 'p50_ci_ms' expected two numbers [low, high], got {ci!r}.")
        extra: dict[str, Any] = {}
        for name in ("runner_up", "default"):
            table = expect(data, name, dict, where, required=False)
            if table is not None:
                extra[name] = _config(table, f"{where} [{name}]", {"p50_ms"}, keys)
                extra[f"{name}_p50_ms"] = _ms(table, f"{where} [{name}]", required=False)
        strings = {k: expect(data, k, str, where, required=False) for k in ("created", "edgekit_version",
                                                                             "objective", "inputs")}
        return cls(
            chosen=chosen, model_name=expect(model, "name", str, f"{where} [model]"), model_sha256=sha,
            model_format=expect(model, "format", str, f"{where} [model]"), device=device,
            host_cpu=expect(host, "cpu", str, f"{where} [host]"), host_cores=cores,
            host_machine=expect(host, "machine", str, f"{where} [host]"), runtime_versions=dict(versions),
            p50_ms=_ms(chosen_t, f"{where} [chosen]", required=True) or 0.0,
            p50_ci_ms=(float(ci[0]), float(ci[1])) if ci else None,
            accuracy=dict(expect(chosen_t, "accuracy", dict, f"{where} [chosen]", required=False) or {}),
            version=version, **extra, **{k: v for k, v in strings.items() if v is not None})


# --- does a plan apply here? ---------------------------------------------------------------------

@functools.cache
def host_facts() -> tuple[str, int, str]:
    """This host as plans record it: (CPU model, cores, machine); probed once per process."""
    from edgekit.hostinfo import HostInfo

    return HostInfo.probe().cpu_model, os.cpu_count() or 1, platform.machine()


def _version_here(name: str) -> str:
    from edgekit.registry import get_runtime

    try:
        rt = get_runtime(name)
    except UnknownRuntimeError:
        return "not registered"
    except Exception as exc:  # noqa: BLE001 - a plugin that fails to import is a difference, not a crash
        return f"broken ({type(exc).__name__})"
    return rt.version() or "not installed"


def check(plan: Plan, model: ModelFile, *, device: str | None = None) -> list[str]:
    """Every reason ``plan`` does not apply to ``model`` here (on ``device``, when given); ``[]``: it applies.

    Checked: the model's hash (external data included), this host's CPU model, cores and machine,
    the version of every runtime the plan records, the device profile (when both name one), and
    that the chosen runtime exists and the plan sets only its speed settings.

    >>> check(Plan.read("plan.toml"), open_model("det.onnx"))       # doctest: +SKIP
    ['the model changed: ...', 'runtime version changed: openvino 2026.4.0 -> 2026.4.1']
    """
    from edgekit.registry import get_runtime

    reasons = []
    if plan.model_sha256 != model.sha256():
        reasons.append(f"the model changed: the plan is for {plan.model_name} with sha256 {plan.model_sha256[:12]}…, "
                       f"{model.path.name} has sha256 {model.sha256()[:12]}… (the file or its external data differ)")
    cpu, cores, machine = host_facts()
    if plan.host_cpu != cpu:
        reasons.append(f"other host: CPU {plan.host_cpu!r} -> {cpu!r}")
    if plan.host_cores != cores:
        reasons.append(f"other host: {plan.host_cores} cores -> {cores}")
    if plan.host_machine != machine:
        reasons.append(f"other host: machine {plan.host_machine} -> {machine}")
    for name, old in sorted(plan.runtime_versions.items()):
        new = _version_here(name)
        if new != old:
            reasons.append(f"runtime version changed: {name} {old} -> {new}")
    c = plan.chosen
    if c.runtime not in plan.runtime_versions:
        reasons.append(f"the plan records no version of its chosen runtime {c.runtime!r}")
    if device is not None and plan.device is not None and plan.device != device:
        reasons.append(f"other device: the plan is for device profile {plan.device!r}, this placement is for {device!r}")
    try:
        rt = get_runtime(c.runtime)
    except Exception:  # noqa: BLE001 - already a reason above ("not registered" / "broken")
        return reasons
    unsafe = sorted(set(c.options) - set(rt.tunables))
    if unsafe:
        reasons.append(f"the plan sets option(s) {unsafe}, which are not speed settings of {c.runtime} (a plan may set "
                       f"only {sorted(rt.tunables) or 'none'}, so that it cannot load libraries or pass other settings)")
    if rt.has("estimate"):
        reasons.append(f"the plan chooses {c.runtime}, which emulates a device instead of running the model")
    return reasons


# --- helpers -------------------------------------------------------------------------------------

def _exists(dest: Path) -> InvalidOptionError:
    return InvalidOptionError(f"{dest} already exists; a plan is never overwritten by accident. Choose another file "
                              "name, or pass force=True (`--force` on the command line) to replace it.")


def _name(value: str, key: str, where: str) -> str:
    if not _NAME.fullmatch(value):
        raise PlanError(f"{where}: key {key!r} expected a name of letters, digits and '_.+-' (at most 100), got "
                        f"{value!r}.")
    return value


def _ms(table: Mapping[str, Any], where: str, *, required: bool) -> float | None:
    value = expect(table, "p50_ms", (int, float), where, required=required)
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise PlanError(f"{where}: key 'p50_ms' expected a finite number of milliseconds >= 0, got {value!r}.")
    return float(value)


def _config(table: Mapping[str, Any], where: str, extra: set[str], keys: Any) -> Config:
    keys(table, {"runtime", "accelerator", "precision", "threads", "options", "target"} | extra, where)
    runtime = _name(expect(table, "runtime", str, where), "runtime", where)
    accelerator = _name(expect(table, "accelerator", str, where), "accelerator", where)
    precision = expect(table, "precision", str, where)
    if precision not in PRECISIONS:
        raise PlanError(f"{where}: key 'precision' expected one of {list(PRECISIONS)}, got {precision!r}.")
    threads = expect(table, "threads", int, where)
    if threads < 1:
        raise PlanError(f"{where}: key 'threads' expected a positive integer, got {threads}.")
    options = expect(table, "options", dict, where, required=False) or {}
    for k in options:
        expect(options, k, _SCALAR, f"{where}.options")
    return Config(runtime, accelerator, precision, threads, dict(options),
                  expect(table, "target", str, where, required=False))


def _config_table(name: str, config: Config, figures: dict[str, Any], accuracy: dict[str, Any] | None) -> list[str]:
    body = {"runtime": config.runtime, "accelerator": config.accelerator, "precision": config.precision,
            "threads": config.threads, "target": config.target, **figures}
    lines = ["", f"[{name}]", *_key_values(body)]
    if config.options:
        lines += ["", f"[{name}.options]", *_key_values(config.options)]
    if accuracy:
        lines += ["", f"[{name}.accuracy]", *_key_values(accuracy)]
    return lines


def _key_values(table: Mapping[str, Any]) -> list[str]:
    """``key = value`` lines; None values are left out (TOML has no null)."""
    try:
        return [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if v is not None]
    except ConfigError as exc:
        raise InvalidOptionError(f"a plan cannot hold this value: {exc}") from exc
