"""The device-profile schema: dataclasses and validation of one profile table.

:func:`parse_profile` checks every key of a profile (``extends`` already applied) and raises
:class:`~edgekit.errors.ConfigError` naming the file, the key, what was expected and what was
found. Runtime and accelerator names are checked against the runtime catalog
(``runtimes/*.toml``) and registered plugins; nothing here imports a runtime library.
The fields are documented in ``devices/README.md``.

Example::

    profile = parse_profile(tomllib.load(f), "my-board.toml")
    profile.unit("cpu").peak_gops          # {'fp32': 153.6, 'fp16': 307.2, 'int8': 614.4}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.catalog import runtime_info, runtime_infos
from edgekit.errors import ConfigError
from edgekit.tomlfile import check_keys, expect

__all__ = ["KINDS", "PRECISIONS", "RULE_WEIGHTS", "UNIT_KINDS", "Constraints", "DetectRules", "DeviceProfile",
           "Target", "Unit", "parse_profile"]

KINDS = ("cpu", "gpu", "npu")
UNIT_KINDS = ("cpu", "gpu", "npu", "dsp")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
_TOP = {"name", "kind", "title", "vendor", "extends", "notes", "detect", "units", "targets", "constraints"}
_UNIT = {"name", "kind", "title", "peak_gops", "bandwidth_gb_s", "memory_gb", "sources", "note", "emulation"}
_TARGET = {"runtime", "accelerator", "precision", "unit", "options", "delegate", "plugin", "note", "constraints"}
_CONSTRAINTS = {"precisions", "static_shapes", "max_model_mb", "max_memory_mb", "ops", "notes"}
#: detection rule -> weight of a match (``machine`` and ``system`` are prerequisites, weight 0)
RULE_WEIGHTS = {"machine": 0, "system": 0, "device_tree": 10, "compatible": 10, "soc": 10, "cpuinfo": 10,
                "gpu": 10, "usb": 10, "device_nodes": 8, "libraries": 3, "accelerators": 3}
_REGEX_RULES = ("cpuinfo", "device_tree", "compatible", "soc", "gpu")


@dataclass(frozen=True)
class Unit:
    """A compute unit: peak giga-ops/s per precision, memory bandwidth (GB/s), memory (GB), sources."""

    name: str
    kind: str
    title: str
    peak_gops: Mapping[str, float]
    bandwidth_gb_s: float
    memory_gb: float | None
    sources: Mapping[str, str]
    note: str = ""
    emulation: str = ""  # accelerator spec in devices/emulation/ (op list, latency parameters); "" = by kind

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this unit computes (the keys of ``peak_gops``)."""
        return tuple(self.peak_gops)


@dataclass(frozen=True)
class Constraints:
    """Limits a target places on models; ``precisions`` empty means any."""

    precisions: tuple[str, ...] = ()
    static_shapes: bool = False
    max_model_mb: float | None = None
    max_memory_mb: float | None = None
    ops: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """One way to run a model on the device, in preference order (``index`` starts at 1)."""

    index: int
    runtime: str
    accelerator: str
    precision: str
    unit: str
    options: Mapping[str, Any] = field(default_factory=dict)
    delegate: str | None = None
    plugin: str | None = None
    note: str = ""
    constraints: Constraints = field(default_factory=Constraints)

    def describe(self) -> str:
        """``'#2 onnxruntime/cuda fp32 on gpu (threads=4)'``."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items() if not isinstance(v, Mapping))
        return f"#{self.index} {self.runtime}/{self.accelerator} {self.precision} on {self.unit}" + (
            f" ({opts})" if opts else "")


@dataclass(frozen=True)
class DetectRules:
    """How to recognise the device: each field is a tuple of patterns (see devices/README.md)."""

    machine: tuple[str, ...] = ()
    system: tuple[str, ...] = ()
    cpuinfo: tuple[str, ...] = ()
    device_tree: tuple[str, ...] = ()
    compatible: tuple[str, ...] = ()
    soc: tuple[str, ...] = ()
    gpu: tuple[str, ...] = ()
    usb: tuple[str, ...] = ()
    device_nodes: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    accelerators: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceProfile:
    """A validated device profile (``extends`` already applied)."""

    name: str
    kind: str
    title: str
    vendor: str
    units: tuple[Unit, ...]
    targets: tuple[Target, ...]
    constraints: Constraints
    detect: DetectRules
    extends: str | None = None
    notes: tuple[str, ...] = ()
    path: Path | None = None
    builtin: bool = False

    def unit(self, name: str) -> Unit:
        """The unit called ``name`` (KeyError when absent)."""
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(name)


# --- parsing and validation ------------------------------------------------------------------

def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = expect(data, key, list, where, required=False) or []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ConfigError(f"{where}: key {key!r} item {i} expected a string, got {type(v).__name__} {v!r}.")
    return tuple(values)


def _number(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> float | None:
    value = expect(data, key, (int, float), where, required=required)
    if value is not None and value <= 0:
        raise ConfigError(f"{where}: key {key!r} expected a positive number, got {value!r}.")
    return None if value is None else float(value)


def _constraints(data: Mapping[str, Any], where: str, base: Constraints | None = None) -> Constraints:
    check_keys(data, _CONSTRAINTS, where)
    precs = _strings(data, "precisions", where)
    for p in precs:
        if p not in PRECISIONS:
            raise ConfigError(f"{where}: key 'precisions' expected items from {list(PRECISIONS)}, got {p!r}.")
    b = base or Constraints()
    return Constraints(
        precisions=precs if "precisions" in data else b.precisions,
        static_shapes=expect(data, "static_shapes", bool, where, required=False) if "static_shapes" in data
        else b.static_shapes,
        max_model_mb=_number(data, "max_model_mb", where, required=False) if "max_model_mb" in data else b.max_model_mb,
        max_memory_mb=_number(data, "max_memory_mb", where, required=False) if "max_memory_mb" in data
        else b.max_memory_mb,
        ops=expect(data, "ops", str, where, required=False) if "ops" in data else b.ops,
        notes=_strings(data, "notes", where) if "notes" in data else b.notes,
    )


def _unit(data: Any, where: str) -> Unit:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table ([[units]]), got {type(data).__name__}.")
    check_keys(data, _UNIT, where)
    name = expect(data, "name", str, where)
    where = f"{where} ({name!r})"
    kind = expect(data, "kind", str, where)
    if kind not in UNIT_KINDS:
        raise ConfigError(f"{where}: key 'kind' expected one of {list(UNIT_KINDS)}, got {kind!r}.")
    peak = expect(data, "peak_gops", dict, where)
    if not peak:
        raise ConfigError(f"{where}: key 'peak_gops' expected at least one precision, e.g. {{fp32 = 100}}, got {{}}.")
    for p in peak:
        if p not in PRECISIONS:
            raise ConfigError(f"{where}: key 'peak_gops' expected precisions from {list(PRECISIONS)}, got {p!r}.")
        _number(peak, p, f"{where} peak_gops")
    figures = {"peak_gops": peak, "bandwidth_gb_s": _number(data, "bandwidth_gb_s", where),
               "memory_gb": _number(data, "memory_gb", where, required=False)}
    sources = expect(data, "sources", dict, where)
    check_keys(sources, set(figures), f"{where} sources")
    for fig, value in figures.items():
        if value is None:
            continue
        src = sources.get(fig)
        if not isinstance(src, str) or not ("://" in src or src.startswith("estimate")):
            raise ConfigError(
                f"{where}: key 'sources.{fig}' expected a string citing the figure (a URL, or 'estimate: <method>'), "
                f"got {src!r}. Every hardware figure needs its source.")
    return Unit(name=name, kind=kind, title=expect(data, "title", str, where),
                peak_gops={k: float(v) for k, v in peak.items()}, bandwidth_gb_s=figures["bandwidth_gb_s"],
                memory_gb=figures["memory_gb"], sources=dict(sources),
                note=expect(data, "note", str, where, required=False) or "",
                emulation=expect(data, "emulation", str, where, required=False) or "")


def _known_runtime(name: str) -> Mapping[str, str] | None:
    """The accelerators a runtime's catalog knows; None when no runtime has that name."""
    info = runtime_info(name)
    if info is not None:
        return info.accelerators
    from edgekit.registry import get_runtime, runtime_names

    if name not in runtime_names():
        return None
    try:
        return get_runtime(name).info.accelerators
    except Exception:  # noqa: BLE001 - a broken plugin: its name is known, its accelerators are not
        return {}


def _takes_delegates(name: str) -> bool:
    """True when runtime ``name`` declares the ``delegate`` capability (a broken plugin: False)."""
    from edgekit.registry import get_runtime

    try:
        return get_runtime(name).has("delegate")
    except Exception:  # noqa: BLE001 - unknown or broken: it cannot be shown to take delegates
        return False


def _known_runtime_names() -> list[str]:
    from edgekit.registry import runtime_names

    return sorted(set(runtime_infos()) | set(runtime_names()))


def _target(data: Any, index: int, where: str, units: Mapping[str, Unit], base: Constraints) -> Target:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table ([[targets]]), got {type(data).__name__}.")
    check_keys(data, _TARGET, where)
    rt, acc = expect(data, "runtime", str, where), expect(data, "accelerator", str, where)
    plugin = expect(data, "plugin", str, where, required=False)
    known = _known_runtime(rt)
    if known is None and plugin is None:
        raise ConfigError(
            f"{where}: key 'runtime' expected a registered runtime {_known_runtime_names()}, got {rt!r}. "
            "For a runtime edgekit has no adapter for, add plugin = \"<where to get it>\" to the target.")
    if known and acc not in known:
        raise ConfigError(f"{where}: key 'accelerator' expected one of {rt}'s accelerators {sorted(known)}, got {acc!r}.")
    prec = expect(data, "precision", str, where)
    if prec not in PRECISIONS:
        raise ConfigError(f"{where}: key 'precision' expected one of {list(PRECISIONS)}, got {prec!r}.")
    unit = expect(data, "unit", str, where)
    if unit not in units:
        raise ConfigError(f"{where}: key 'unit' expected one of this profile's units {sorted(units)}, got {unit!r}.")
    if prec not in units[unit].precisions:
        raise ConfigError(f"{where}: key 'precision' expected one of unit {unit!r}'s precisions "
                           f"{list(units[unit].precisions)} (its peak_gops), got {prec!r}.")
    options = expect(data, "options", dict, where, required=False) or {}
    if "threads" in options and (not isinstance(options["threads"], int) or isinstance(options["threads"], bool)
                                 or options["threads"] < 1):
        raise ConfigError(f"{where}: key 'options.threads' expected a positive integer, got {options['threads']!r}.")
    delegate = expect(data, "delegate", str, where, required=False)
    if delegate is not None and plugin is None and not _takes_delegates(rt):
        raise ConfigError(f"{where}: key 'delegate' names a delegate library, and runtime {rt!r} does not load "
                          "delegates (its adapter does not declare the 'delegate' capability); use a runtime that "
                          "does (litert), or drop the key.")
    cons = expect(data, "constraints", dict, where, required=False)
    return Target(index=index, runtime=rt, accelerator=acc, precision=prec, unit=unit, options=dict(options),
                  delegate=delegate, plugin=plugin, note=expect(data, "note", str, where, required=False) or "",
                  constraints=_constraints(cons, f"{where} constraints", base) if cons is not None else base)


def _detect(data: Mapping[str, Any], where: str) -> DetectRules:
    check_keys(data, set(RULE_WEIGHTS), where)
    rules = {k: _strings(data, k, where) for k in RULE_WEIGHTS}
    for key in _REGEX_RULES:
        for rx in rules[key]:
            try:
                re.compile(rx)
            except re.error as exc:
                raise ConfigError(f"{where}: key {key!r} expected regular expressions, got {rx!r} ({exc}).") from exc
    for item in rules["accelerators"]:
        rt, _, acc = item.partition(":")
        known = _known_runtime(rt)
        if not acc or known is None or (known and acc not in known):
            raise ConfigError(f"{where}: key 'accelerators' expected 'runtime:accelerator' with a registered runtime "
                               f"{_known_runtime_names()} and one of its accelerators, got {item!r}.")
    return DetectRules(**rules)


def parse_profile(data: Mapping[str, Any], where: str, *, path: Path | None = None,
                  builtin: bool = False) -> DeviceProfile:
    """Validate one profile table (``extends`` already merged); errors name ``where``, the key and values.

    >>> parse_profile({"name": "x", "kind": "cpu"}, "x.toml")   # doctest: +SKIP
    ConfigError: x.toml: missing key 'units' (expected a list).
    """
    check_keys(data, _TOP, where)
    name = expect(data, "name", str, where)
    kind = expect(data, "kind", str, where)
    if kind not in KINDS:
        raise ConfigError(f"{where}: key 'kind' expected one of {list(KINDS)}, got {kind!r}.")
    raw_units = expect(data, "units", list, where)
    units: dict[str, Unit] = {}
    for i, u in enumerate(raw_units, 1):
        unit = _unit(u, f"{where} [[units]] #{i}")
        if unit.name in units:
            raise ConfigError(f"{where} [[units]] #{i}: key 'name' expected a unique unit name, got {unit.name!r} twice.")
        units[unit.name] = unit
    if not units:
        raise ConfigError(f"{where}: key 'units' expected at least one [[units]] table, got none.")
    if kind not in {u.kind for u in units.values()}:
        raise ConfigError(f"{where}: key 'kind' expected the kind of one of its units "
                           f"{sorted({u.kind for u in units.values()})}, got {kind!r}.")
    base = _constraints(expect(data, "constraints", dict, where, required=False) or {}, f"{where} [constraints]")
    raw_targets = expect(data, "targets", list, where)
    if not raw_targets:
        raise ConfigError(f"{where}: key 'targets' expected at least one [[targets]] table, got none.")
    targets = tuple(_target(t, i, f"{where} [[targets]] #{i}", units, base) for i, t in enumerate(raw_targets, 1))
    return DeviceProfile(
        name=name, kind=kind, title=expect(data, "title", str, where), vendor=expect(data, "vendor", str, where),
        units=tuple(units.values()), targets=targets, constraints=base,
        detect=_detect(expect(data, "detect", dict, where, required=False) or {}, f"{where} [detect]"),
        extends=expect(data, "extends", str, where, required=False), notes=_strings(data, "notes", where),
        path=path, builtin=builtin)
