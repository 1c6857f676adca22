"""Accelerator specs of the emulated backend: operator lists, partition rule and latency parameters.

A spec is data, one TOML file per accelerator family in ``devices/emulation/`` (documented in
``devices/README.md``, section *Emulation*). A profile's unit names its spec with
``emulation = "edgetpu"`` (or a path to a ``.toml``); a unit without one gets ``cpu``, ``gpu`` or
``npu`` by its kind. Operator lists are written in the vendor's own names (ONNX op types or TFLite
builtin names); ``onnx-tflite.toml`` carries them across formats.

Example::

    spec = accelerator_spec(get_profile("coral-edgetpu"), "edgetpu")
    spec.partition, spec.supports("Conv", "onnx")         # ('prefix', True)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.catalog import catalog_dir
from edgekit.errors import ConfigError
from edgekit.tomlfile import check_keys, expect, read_toml

if TYPE_CHECKING:
    from edgekit.device_schema import DeviceProfile

__all__ = ["LAYOUT_OPS", "AcceleratorSpec", "LatencyParams", "accelerator_spec", "hand_set", "load_spec",
           "spec_names"]

PARTITION_RULES = ("maximal", "prefix")
#: operator classes an ``op_efficiency`` may name (edgekit.emulation.latency.op_class)
OP_CLASSES = ("depthwise", "pointwise", "conv", "matmul")
#: data-movement operators: no arithmetic, a pass over the tensor in the accelerator's tiled layout; each costs
#: ``layout_us`` instead of ``dispatch_us`` (edgekit.emulation.latency.op_class calls them "layout")
LAYOUT_OPS = frozenset({"Concat", "Split", "Slice", "Transpose", "Gather", "Pad", "Resize", "Upsample", "Tile",
                        "DepthToSpace", "SpaceToDepth", "CONCATENATION", "SPLIT", "SPLIT_V", "SLICE",
                        "STRIDED_SLICE", "TRANSPOSE", "GATHER", "PAD", "PADV2", "RESIZE_NEAREST_NEIGHBOR",
                        "RESIZE_BILINEAR", "TILE", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH"})
_TOP = {"name", "title", "source", "partition", "min_partition_ops", "max_active_dims", "notes", "ops", "latency",
        "extends", "calibration"}
_OPS = {"onnx", "tflite", "onnx_unsupported", "tflite_unsupported"}
_LATENCY = {"compute_efficiency", "compute_efficiency_by_precision", "op_efficiency", "memory_efficiency",
            "dispatch_us", "layout_us", "invoke_us", "sync_us", "link_gb_s", "weights", "activations", "onchip_mb", "free_ops", "fused_ops", "sources"}


@dataclass(frozen=True)
class LatencyParams:
    """Parameters of the roofline model for one unit kind (see devices/README.md, *Latency model*)."""

    compute_efficiency: float = 0.35
    memory_efficiency: float = 0.6
    dispatch_us: float = 4.0
    invoke_us: float = 0.0
    sync_us: float = 0.0
    link_gb_s: float | None = None  # None: the unit's bandwidth_gb_s x memory_efficiency
    weights: str = "dram"  # "onchip": cached in the unit's memory_gb, the overflow streams every inference
    activations: str = "dram"  # "onchip": an op's activations stay on chip when they fit in onchip_mb
    onchip_mb: float = float("inf")
    free_ops: frozenset[str] = frozenset()
    fused_ops: frozenset[str] = frozenset()
    sources: Mapping[str, str] = field(default_factory=dict)
    #: precision -> compute efficiency, overriding ``compute_efficiency`` (fitted per precision by calibration)
    compute_efficiency_by_precision: Mapping[str, float] = field(default_factory=dict)
    #: operator class (latency.op_class: "depthwise", ...) -> fraction of the precision's efficiency it reaches
    op_efficiency: Mapping[str, float] = field(default_factory=dict)
    #: fixed cost of a data-movement op (:data:`LAYOUT_OPS`) instead of ``dispatch_us``; None: ``dispatch_us``
    layout_us: float | None = None

    def fixed_us(self, op_class: str) -> float:
        """The fixed per-op cost of an op of ``op_class``: ``layout_us`` for data movement, else ``dispatch_us``."""
        return self.layout_us if op_class == "layout" and self.layout_us is not None else self.dispatch_us

    def efficiency(self, precision: str, op_class: str = "") -> float:
        """The fraction of the unit's datasheet peak reached at ``precision`` by an op of ``op_class``."""
        return (self.compute_efficiency_by_precision.get(precision, self.compute_efficiency)
                * self.op_efficiency.get(op_class, 1.0))


@dataclass(frozen=True)
class AcceleratorSpec:
    """Which operators an accelerator runs, how its compiler partitions a graph, and its latency parameters."""

    name: str
    title: str
    source: str
    partition: str = "maximal"
    min_partition_ops: int = 1
    max_active_dims: int | None = None
    notes: tuple[str, ...] = ()
    onnx: frozenset[str] = frozenset()  # "*" means every op
    tflite: frozenset[str] = frozenset()
    onnx_unsupported: frozenset[str] = frozenset()
    tflite_unsupported: frozenset[str] = frozenset()
    latency: LatencyParams = field(default_factory=LatencyParams)
    path: Path | None = None
    #: provenance of fitted latency parameters (``edgekit devices calibrate``); empty when hand-set
    calibration: Mapping[str, Any] = field(default_factory=dict)
    extends: str = ""

    def supports(self, op: str, fmt: str) -> bool:
        """True when operator ``op`` of a ``fmt`` ("onnx"/"tflite") model is in this accelerator's list."""
        own, other = (self.onnx, self.tflite) if fmt == "onnx" else (self.tflite, self.onnx)
        denied = self.onnx_unsupported if fmt == "onnx" else self.tflite_unsupported
        if op in denied:
            return False
        if "*" in own or op in own:
            return True
        if own:  # a list in this format's names is authoritative
            return False
        if "*" in other:
            return True
        mapping = _onnx_tflite()
        if fmt == "onnx":
            return any(t in other for t in mapping.get(op, ()))
        return any(o in self.onnx for o, ts in mapping.items() if op in ts)

    def lists_for(self, fmt: str) -> str:
        """Which list decided support for ``fmt`` (for explanations)."""
        own = self.onnx if fmt == "onnx" else self.tflite
        if own:
            return f"{self.name}'s {fmt} operator list"
        return f"{self.name}'s {'tflite' if fmt == 'onnx' else 'onnx'} operator list (mapped by onnx-tflite.toml)"


@functools.cache
def _onnx_tflite() -> dict[str, tuple[str, ...]]:
    path = catalog_dir("devices") / "emulation" / "onnx-tflite.toml"
    data = read_toml(path)
    table = expect(data, "map", dict, str(path))
    return {k: tuple(v) for k, v in table.items()}


def _names(data: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    values = expect(data, key, list, where, required=False) or []
    for v in values:
        if not isinstance(v, str):
            raise ConfigError(f"{where}: key {key!r} expected a list of operator names, got item {v!r}.")
    return frozenset(values)


def _positive(data: Mapping[str, Any], key: str, where: str, default: float, *, upto: float | None = None,
              zero_ok: bool = True) -> float:
    value = expect(data, key, (int, float), where, required=False)
    if value is None:
        return default
    if value < 0 or (not zero_ok and value == 0) or (upto is not None and value > upto):
        bound = f"in (0, {upto:g}]" if upto is not None else ("> 0" if not zero_ok else ">= 0")
        raise ConfigError(f"{where}: key {key!r} expected a number {bound}, got {value!r}.")
    return float(value)


def parse_spec(data: Mapping[str, Any], where: str, path: Path | None = None) -> AcceleratorSpec:
    """Validate one spec table; errors name ``where``, the key, what was expected and what was found."""
    check_keys(data, _TOP, where)
    partition = expect(data, "partition", str, where, required=False) or "maximal"
    if partition not in PARTITION_RULES:
        raise ConfigError(f"{where}: key 'partition' expected one of {list(PARTITION_RULES)}, got {partition!r}.")
    ops = expect(data, "ops", dict, where)
    check_keys(ops, _OPS, f"{where} [ops]")
    if not (ops.get("onnx") or ops.get("tflite")):
        raise ConfigError(f"{where} [ops]: expected an 'onnx' or 'tflite' operator list (or [\"*\"]), got neither.")
    lat = expect(data, "latency", dict, where, required=False) or {}
    lw = f"{where} [latency]"
    check_keys(lat, _LATENCY, lw)
    for key in ("weights", "activations"):
        if lat.get(key, "dram") not in ("dram", "onchip"):
            raise ConfigError(f"{lw}: key {key!r} expected 'dram' or 'onchip', got {lat[key]!r}.")
    link = expect(lat, "link_gb_s", (int, float), lw, required=False)
    if link is not None and link <= 0:
        raise ConfigError(f"{lw}: key 'link_gb_s' expected a positive number, got {link!r}.")
    by_prec = expect(lat, "compute_efficiency_by_precision", dict, lw, required=False) or {}
    for prec in by_prec:
        _positive(by_prec, prec, f"{lw} compute_efficiency_by_precision", 1.0, upto=1.0, zero_ok=False)
    by_class = expect(lat, "op_efficiency", dict, lw, required=False) or {}
    for cls in by_class:
        if cls not in OP_CLASSES:
            raise ConfigError(f"{lw} op_efficiency: key {cls!r} expected one of {list(OP_CLASSES)}, got {cls!r}.")
        _positive(by_class, cls, f"{lw} op_efficiency", 1.0, upto=1.0, zero_ok=False)
    params = LatencyParams(
        compute_efficiency_by_precision={k: float(v) for k, v in by_prec.items()},
        op_efficiency={k: float(v) for k, v in by_class.items()},
        compute_efficiency=_positive(lat, "compute_efficiency", lw, 0.35, upto=1.0, zero_ok=False),
        memory_efficiency=_positive(lat, "memory_efficiency", lw, 0.6, upto=1.0, zero_ok=False),
        dispatch_us=_positive(lat, "dispatch_us", lw, 4.0), invoke_us=_positive(lat, "invoke_us", lw, 0.0),
        sync_us=_positive(lat, "sync_us", lw, 0.0), link_gb_s=None if link is None else float(link),
        layout_us=None if "layout_us" not in lat else _positive(lat, "layout_us", lw, 0.0),
        weights=lat.get("weights", "dram"), activations=lat.get("activations", "dram"),
        onchip_mb=_positive(lat, "onchip_mb", lw, float("inf"), zero_ok=False),
        free_ops=_names(lat, "free_ops", lw), fused_ops=_names(lat, "fused_ops", lw),
        sources=dict(expect(lat, "sources", dict, lw, required=False) or {}))
    mpo = expect(data, "min_partition_ops", int, where, required=False)
    mad = expect(data, "max_active_dims", int, where, required=False)
    notes = expect(data, "notes", list, where, required=False) or []
    return AcceleratorSpec(
        name=expect(data, "name", str, where), title=expect(data, "title", str, where),
        source=expect(data, "source", str, where), partition=partition, min_partition_ops=max(1, mpo or 1),
        max_active_dims=mad, notes=tuple(str(n) for n in notes),
        onnx=_names(ops, "onnx", f"{where} [ops]"), tflite=_names(ops, "tflite", f"{where} [ops]"),
        onnx_unsupported=_names(ops, "onnx_unsupported", f"{where} [ops]"),
        tflite_unsupported=_names(ops, "tflite_unsupported", f"{where} [ops]"), latency=params, path=path,
        calibration=dict(expect(data, "calibration", dict, where, required=False) or {}),
        extends=expect(data, "extends", str, where, required=False) or "")


def spec_names() -> list[str]:
    """Names of the built-in accelerator specs (``devices/emulation/*.toml``)."""
    folder = catalog_dir("devices") / "emulation"
    return sorted(p.stem for p in folder.glob("*.toml") if p.stem != "onnx-tflite")


def _merged(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw table of spec ``path`` with its ``extends`` applied: the child's keys win, [latency] (and its
    sources) merge key by key; a calibrated spec extends the family's spec and overrides fitted parameters."""
    data = dict(read_toml(path))
    parent = data.get("extends")
    if not isinstance(parent, str):
        return data
    base_path = _spec_path(parent, relative_to=path)
    if base_path in chain or base_path == path or len(chain) > 8:
        raise ConfigError(f"{path}: key 'extends' forms a loop or a chain longer than 8 ({parent!r}); break it.")
    base = _merged(base_path, (*chain, path))
    lat = {**base.get("latency", {}), **data.get("latency", {})}
    sources = {**base.get("latency", {}).get("sources", {}), **data.get("latency", {}).get("sources", {})}
    if sources:
        lat["sources"] = sources
    out = {k: v for k, v in base.items() if k != "calibration"}
    out.update(data)
    out["latency"] = lat
    return out


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime: int) -> AcceleratorSpec:
    return parse_spec(_merged(path), str(path), path)


def _spec_path(text: str, *, relative_to: Path | None) -> Path:
    if text.endswith(".toml"):
        path = Path(text).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to.parent / path
    else:
        path = catalog_dir("devices") / "emulation" / f"{text}.toml"
    if not path.is_file():
        raise ConfigError(f"accelerator spec {text!r} not found ({path}); expected one of {spec_names()} "
                          "or a path to a spec .toml (devices/README.md, section Emulation).")
    return path.resolve()


def load_spec(name_or_path: str | os.PathLike[str], *, relative_to: Path | None = None) -> AcceleratorSpec:
    """A built-in spec by name, or a spec file by path (relative paths resolve beside ``relative_to``).

    >>> load_spec("edgetpu").partition
    'prefix'
    """
    path = _spec_path(os.fspath(name_or_path), relative_to=relative_to)
    return _load(path, path.stat().st_mtime_ns)


def accelerator_spec(profile: DeviceProfile, unit: str) -> AcceleratorSpec:
    """The spec for ``profile``'s unit ``unit``: its ``emulation`` key, else by the unit's kind."""
    u = profile.unit(unit)
    name = u.emulation or {"cpu": "cpu", "gpu": "gpu"}.get(u.kind, "npu")
    try:
        return load_spec(name, relative_to=profile.path)
    except ConfigError as exc:
        raise ConfigError(f"device {profile.name!r} unit {unit!r}: key 'emulation': {exc}") from exc


def hand_set(spec: AcceleratorSpec) -> tuple[str, LatencyParams]:
    """``(family, latency parameters)`` a calibration of ``spec``'s unit starts from: a calibrated spec's family
    (its ``extends``) and that family's hand-set values, else ``spec`` itself. A calibration never re-fits a fit.

    >>> hand_set(load_spec("calibrated/coral-edgetpu-edgetpu"))[0]
    'edgetpu'
    """
    if spec.calibration and spec.extends:
        return spec.extends, load_spec(spec.extends, relative_to=spec.path).latency
    return spec.name, spec.latency
