"""Published latency figures to calibrate the latency model against, with their sources.

One TOML file per device profile in ``devices/emulation/calibration/`` (shipped in the wheel under
``edgekit/_catalog/devices``; a subfolder of ``emulation/`` so the profile catalog does not read it
as a profile). Each ``[[figures]]`` entry is one published number: the network it was measured on,
paired with a structurally equivalent network edgekit builds offline (latency depends on topology
and shapes, not on weight values), the input size, precision, runtime as published, the value in ms
(FPS converted, and said so in ``published``), what was measured and the source. A ``[defaults]``
table supplies keys every figure shares.

``buildable`` names the networks that can be built (``edgekit.testing.networks.NETWORKS``, a layer
above this one, so the caller passes it); a figure for any other network is kept apart in
:attr:`Figures.skipped` with the reason, never silently dropped.

Example::

    from edgekit.testing.networks import NETWORKS
    figs = load_figures("snapdragon-8-gen-3", buildable=NETWORKS)
    for f in figs.figures: print(f.network, f.precision, f.runtime, f.ms)
    for s in figs.skipped: print(s.figure.network, s.reason)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.catalog import catalog_dir
from edgekit.errors import ConfigError
from edgekit.tomlfile import check_keys, expect, read_toml

__all__ = ["METRICS", "PRECISIONS", "Figure", "Figures", "Skipped", "figures_dir", "load_figures", "read_figures"]

#: precisions a figure may state: edgekit's, plus 8-bit weights with 16-bit activations as published
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "w8a16")
#: "latency": one inference, start to end; "throughput": 1000 / FPS of a pipelined stream (below latency)
METRICS = ("latency", "throughput")

_Kind = type | tuple[type, ...]
_REQUIRED: dict[str, _Kind] = {"network": str, "size": int, "precision": str, "runtime": str, "unit": str,
                               "metric": str, "ms": (int, float), "published": str, "measured": str, "source": str,
                               "read": dt.date}
_OPTIONAL: dict[str, _Kind] = {"published_precision": str, "batch": int, "note": str, "includes": str}
#: what a published timing may include beyond the graph edgekit builds: "postprocess" (e.g. SSD box decoding and
#: NMS on the host); the calibration fits a separate cost for such figures and never adds it to predictions
INCLUDES = ("postprocess",)


@dataclass(frozen=True)
class Figure:
    """One published figure for ``device`` (a profile name) on ``network`` (an edgekit network name)."""

    device: str
    network: str
    size: int
    precision: str
    runtime: str
    unit: str
    metric: str
    ms: float
    published: str
    measured: str
    source: str
    read: dt.date
    published_precision: str = ""
    batch: int = 1
    note: str = ""
    includes: str = ""  # one of INCLUDES: what the published timing covers beyond the built graph
    where: str = ""  # file and entry, for messages


@dataclass(frozen=True)
class Skipped:
    """A figure whose network edgekit cannot build, and why."""

    figure: Figure
    reason: str


@dataclass(frozen=True)
class Figures:
    """The usable figures and the skipped ones."""

    figures: tuple[Figure, ...]
    skipped: tuple[Skipped, ...]

    def devices(self) -> list[str]:
        """Devices with at least one usable figure, sorted."""
        return sorted({f.device for f in self.figures})

    def networks(self, device: str | None = None) -> list[str]:
        """Networks with at least one usable figure (on ``device``), sorted."""
        return sorted({f.network for f in self.figures if device is None or f.device == device})


def figures_dir() -> Path:
    """The folder of the shipped figure files."""
    return catalog_dir("devices") / "emulation" / "calibration"


def load_figures(device: str | None = None, *, buildable: Collection[str],
                 folder: Path | None = None) -> Figures:
    """The shipped figures (of ``device``, or every device), split by whether ``buildable`` has the network.

    ``folder`` reads another set of files (one ``<device>.toml`` each). A device without a file
    yields no figures; a malformed file raises :class:`~edgekit.errors.ConfigError` naming it and the key.

    >>> figs = load_figures("coral-edgetpu", buildable={"mobilenet_v2"})
    >>> [(f.network, f.ms) for f in figs.figures]
    [('mobilenet_v2', 2.6)]
    """
    root = folder or figures_dir()
    if device is not None:
        paths = [root / f"{device}.toml"] if (root / f"{device}.toml").is_file() else []
    else:
        paths = sorted(root.glob("*.toml"))
    figures: list[Figure] = []
    skipped: list[Skipped] = []
    known = set(buildable)
    for path in paths:
        for fig in read_figures(path):
            if fig.network in known:
                figures.append(fig)
            else:
                skipped.append(Skipped(fig, f"{fig.where}: edgekit cannot build network {fig.network!r} "
                                            f"(buildable: {sorted(known)})" + (f"; {fig.note}" if fig.note else "")))
    return Figures(tuple(figures), tuple(skipped))


def read_figures(path: Path, *, named_by_file: bool = True) -> list[Figure]:
    """Every figure of one file, validated; ConfigError names the file, the entry and the key.

    ``named_by_file=False`` reads a user's file of any name (``edgekit devices calibrate --from``): its
    ``device`` key alone says which profile it is for.
    """
    data = read_toml(path)
    where = str(path)
    check_keys(data, {"device", "defaults", "figures"}, where)
    device = expect(data, "device", str, where)
    if named_by_file and device != path.stem:
        raise ConfigError(f"{where}: key 'device' expected {path.stem!r} (the file name), got {device!r}. "
                          "Rename the file or fix the key.")
    defaults = expect(data, "defaults", dict, where, required=False) or {}
    check_keys(defaults, set(_REQUIRED) | set(_OPTIONAL), f"{where} [defaults]")
    entries = expect(data, "figures", list, where)
    units = _units(device, where)
    return [_figure({**defaults, **_table(e, f"{where} [[figures]] #{i}")}, device, units,
                    f"{where} [[figures]] #{i}") for i, e in enumerate(entries, 1)]


def _table(entry: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table, got {type(entry).__name__} {entry!r}.")
    return entry


def _units(device: str, where: str) -> set[str]:
    """The unit names of profile ``device``; ConfigError when no profile has that name."""
    from edgekit.devices import get_profile, profile_names

    if device not in profile_names():
        raise ConfigError(f"{where}: key 'device' expected a device profile name, got {device!r}; "
                          f"known: {profile_names()}.")
    return {u.name for u in get_profile(device).units}


def _figure(raw: Mapping[str, Any], device: str, units: set[str], where: str) -> Figure:
    check_keys(raw, set(_REQUIRED) | set(_OPTIONAL), where)
    v = {k: expect(raw, k, kind, where) for k, kind in _REQUIRED.items()}
    v.update({k: raw[k] for k in _OPTIONAL if k in raw and expect(raw, k, _OPTIONAL[k], where) is not None})
    if v["precision"] not in PRECISIONS:
        raise ConfigError(f"{where}: key 'precision' expected one of {list(PRECISIONS)}, got {v['precision']!r}. "
                          "Keep the vendor's wording in 'published_precision'.")
    if v["metric"] not in METRICS:
        raise ConfigError(f"{where}: key 'metric' expected one of {list(METRICS)}, got {v['metric']!r}.")
    if v["unit"] not in units:
        raise ConfigError(f"{where}: key 'unit' expected a unit of profile {device!r} {sorted(units)}, "
                          f"got {v['unit']!r}.")
    for key, low in (("ms", 0), ("size", 0), ("batch", 0)):
        if key in v and not v[key] > low:
            raise ConfigError(f"{where}: key {key!r} expected a positive number, got {v[key]!r}.")
    if v.get("includes", "") and v["includes"] not in INCLUDES:
        raise ConfigError(f"{where}: key 'includes' expected one of {list(INCLUDES)}, got {v['includes']!r}.")
    if "://" not in v["source"]:
        raise ConfigError(f"{where}: key 'source' expected a URL (the exact file or page), got {v['source']!r}.")
    return Figure(device=device, where=where, **{**v, "ms": float(v["ms"])})
