"""Device profiles: what a target can do, where to run a model on it, and how to recognise it.

A profile is a TOML file (``devices/<kind>/<name>.toml``, documented in ``devices/README.md``):
its units (peak ops per precision, memory bandwidth, each figure with its source), its
targets in preference order (runtime, accelerator, precision, unit, options), its
constraints and its detection rules. Profiles come from the built-in catalog, from folders
listed in ``EDGEKIT_DEVICES`` (``os.pathsep``-separated; they shadow built-ins of the same
name) or from a path; ``extends`` inherits another profile.

Example::

    p = get_profile("raspberry-pi-5")
    [t.describe() for t in p.targets]     # ['#1 litert/cpu fp32 on cpu (threads=4)', ...]
    detect().profile.name                 # 'generic-x86-64' on a plain x86-64 host
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.catalog import catalog_dir
from edgekit.device_schema import (
    KINDS,
    RULE_WEIGHTS,
    Constraints,
    DetectRules,
    DeviceProfile,
    Target,
    Unit,
    parse_profile,
)
from edgekit.errors import ConfigError, UnknownDeviceError, option
from edgekit.hostinfo import HostInfo
from edgekit.registry import did_you_mean
from edgekit.tomlfile import expect, read_toml

__all__ = ["Constraints", "DetectRules", "DetectionResult", "DeviceProfile", "HostInfo", "Match", "Target",
           "Unit", "detect", "get_profile", "list_profiles", "load_profile", "parse_profile", "profile_names"]

ENV = "EDGEKIT_DEVICES"
logger = logging.getLogger("edgekit")


# --- finding and loading ---------------------------------------------------------------------

def _dirs() -> list[tuple[Path, bool]]:
    user = [(Path(d).expanduser(), False) for d in os.environ.get(ENV, "").split(os.pathsep) if d.strip()]
    return user + [(catalog_dir("devices"), True)]


def _index() -> dict[str, list[tuple[Path, bool]]]:
    """Profile name -> files defining it, in search order (user folders first)."""
    out: dict[str, list[tuple[Path, bool]]] = {}
    for folder, builtin in _dirs():
        if folder.is_dir():
            for p in sorted(folder.rglob("*.toml")):
                if "emulation" in p.relative_to(folder).parts[:-1]:
                    continue  # accelerator specs of the emulated backend, not profiles
                out.setdefault(p.stem, []).append((p.resolve(), builtin))
    return out


#: longest ``extends`` chain followed (a profile, its parent, its grandparent...)
MAX_EXTENDS_DEPTH = 8


def _merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``extends``: child scalars win, [constraints] merges per key, [[units]] replace by name,
    [[targets]] and [detect] are never inherited (a child lists its own)."""
    out = {k: v for k, v in parent.items() if k not in ("detect", "name", "extends")}
    for key, value in child.items():
        if key == "constraints" and isinstance(value, dict):
            out[key] = {**parent.get("constraints", {}), **value}
        elif key == "units" and isinstance(value, list):  # wrong types fall through to validation
            names = [u.get("name") for u in value if isinstance(u, dict)]
            out[key] = [u for u in parent.get("units", []) if u.get("name") not in names] + list(value)
        else:
            out[key] = value
    return out


def _raw(path: Path, builtin: bool, chain: tuple[Path, ...]) -> dict[str, Any]:
    data = read_toml(path)
    where = str(path)
    name = expect(data, "name", str, where)
    if name != path.stem:
        raise ConfigError(f"{where}: key 'name' expected {path.stem!r} (the file name), got {name!r}. "
                           "Rename the file or the profile.")
    parent = expect(data, "extends", str, where, required=False)
    if parent is None:
        return data
    candidates = [(p, b) for p, b in _index().get(parent, []) if p != path]
    if not candidates:
        raise ConfigError(f"{where}: key 'extends' expected an existing profile name, got {parent!r}; "
                           f"known: {sorted(_index())}.")
    ppath, pbuiltin = candidates[0]
    if ppath in chain:
        loop = " -> ".join(p.stem for p in (*chain, path, ppath))
        raise ConfigError(f"{where}: key 'extends' forms a loop ({loop}); break it.")
    if len(chain) + 1 >= MAX_EXTENDS_DEPTH:
        names = " -> ".join(p.stem for p in (*chain, path, ppath))
        raise ConfigError(f"{where}: key 'extends' chains more than {MAX_EXTENDS_DEPTH} profiles ({names}); expected "
                          "a short chain. Extend a profile closer to yours, or copy what you need into this one.")
    parent = _raw(ppath, pbuiltin, (*chain, path))  # each parent is read once
    _validated(parent, ppath, pbuiltin)  # the parent must be valid on its own (errors name its file)
    return _merge(parent, data)


def _load(path: Path, builtin: bool, chain: tuple[Path, ...] = ()) -> DeviceProfile:
    return _validated(_raw(path, builtin, chain), path, builtin)


def _validated(raw: dict[str, Any], path: Path, builtin: bool) -> DeviceProfile:
    profile = parse_profile(raw, str(path), path=path, builtin=builtin)
    if builtin and path.parent.name != profile.kind:
        raise ConfigError(f"{path}: key 'kind' expected {path.parent.name!r} (the folder), got {profile.kind!r}.")
    return profile


@functools.lru_cache(maxsize=256)
def _cached(path: Path, builtin: bool, mtime: int, env: str) -> DeviceProfile:
    return _load(path, builtin)


def load_profile(path: str | os.PathLike[str], *, builtin: bool = False) -> DeviceProfile:
    """Load and validate one profile file.

    >>> load_profile("~/boards/my-board.toml").targets[0].describe()   # doctest: +SKIP
    '#1 litert/cpu fp32 on cpu (threads=4)'
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise UnknownDeviceError(f"device profile file not found: {p}. Check the path, or pass a profile name "
                                 "(`edgekit devices` lists them).")
    return _cached(p, builtin, p.stat().st_mtime_ns, os.environ.get(ENV, ""))


def profile_names() -> list[str]:
    """Every profile name found (built-in and in ``EDGEKIT_DEVICES`` folders), sorted.

    >>> "raspberry-pi-5" in profile_names()
    True
    """
    return sorted(_index())


def get_profile(device: str | os.PathLike[str] | DeviceProfile) -> DeviceProfile:
    """A profile by name, by path to a ``.toml``, or the profile itself.

    >>> get_profile("coral-edgetpu").unit("edgetpu").peak_gops
    {'int8': 4000.0}
    """
    if isinstance(device, DeviceProfile):
        return device
    text = os.fspath(device)
    if text.endswith(".toml") or os.sep in text or (os.altsep and os.altsep in text):
        return load_profile(text)
    found = _index().get(text)
    if found:
        return load_profile(found[0][0], builtin=found[0][1])
    raise UnknownDeviceError(
        f"no device profile named {text!r}{did_you_mean(text, profile_names())}. Known profiles: {profile_names()}. "
        f"Pass a path to your own .toml, add its folder to ${ENV}, or use {option('device', 'auto')} to detect this host.")


def list_profiles() -> list[DeviceProfile]:
    """Every profile, sorted by kind then name; a broken user profile is a warning, a broken built-in raises.

    >>> [p.name for p in list_profiles()][:2]
    ['generic-aarch64', 'generic-x86-64']
    """
    out = []
    for files in _index().values():
        path, builtin = files[0]
        try:
            out.append(load_profile(path, builtin=builtin))
        except ConfigError as exc:
            if builtin:
                raise
            _ignored(path, exc)
    return sorted(out, key=lambda p: (KINDS.index(p.kind), p.name))


#: broken user profiles already reported in this process, with the file's modification time
_REPORTED: set[tuple[Path, int]] = set()


def _ignored(path: Path, exc: ConfigError) -> None:
    """Say once per process (logger ``edgekit``: a bare line on stderr unless logging is set up) that a broken
    user profile is skipped, and why."""
    try:
        key = (path, path.stat().st_mtime_ns)
    except OSError:
        key = (path, 0)
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    why = str(exc).removeprefix(f"{path}: ").rstrip(". ")
    logger.warning("warning: ignoring device profile %s: %s; fix or remove it", path, why)


# --- detection -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    """A profile whose rules matched the host: its score and the reasons."""

    profile: str
    score: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DetectionResult:
    """The best-matching profile, why, every candidate, and the accelerators each runtime reports."""

    profile: DeviceProfile
    reasons: tuple[str, ...]
    candidates: tuple[Match, ...]
    accelerators: Mapping[str, tuple[str, ...] | str]
    host: HostInfo
    fallback: bool = False


def _matches(rules: DetectRules, host: HostInfo) -> tuple[int, list[str]] | None:
    """Score and reasons, or None when a prerequisite fails or no evidence rule matches."""
    if not any(getattr(rules, k) for k in RULE_WEIGHTS):
        return None  # no rules at all: never detected (e.g. a user profile meant to be named)
    reasons: list[str] = []
    for key, value in (("machine", host.machine), ("system", host.system)):
        allowed = getattr(rules, key)
        if allowed:
            if value.lower() not in {a.lower() for a in allowed}:
                return None
            reasons.append(f"{key} is {value}")
    score = 0
    evidence = any(getattr(rules, k) for k, w in RULE_WEIGHTS.items() if w)
    for key in RULE_WEIGHTS:
        if not RULE_WEIGHTS[key]:
            continue
        for pattern in getattr(rules, key):
            hit = host.evidence(key, pattern)
            if hit is not None:
                score += RULE_WEIGHTS[key]
                reasons.append(hit)
                break
    if evidence and not score:
        return None
    return score, reasons


def detect(host: HostInfo | None = None) -> DetectionResult:
    """Match ``host`` (default: this machine, probed without root) against every profile.

    The highest score wins (device tree, SoC, cpuinfo, GPU name, USB ids: 10 each; device node: 8;
    library or runtime accelerator: 3). A profile that ``extends`` another and matches on its own
    evidence adds its parent's score (hailo-8 on a Raspberry Pi 5 beats raspberry-pi-5). Profiles
    with only ``machine``/``system`` rules are the fallback (generic-x86-64, generic-aarch64).
    Raises UnknownDeviceError when nothing matches.

    >>> detect(HostInfo.from_record("tests/data/hosts/raspberry-pi-5")).profile.name   # doctest: +SKIP
    'raspberry-pi-5'
    """
    host = host or HostInfo.probe()
    profiles = {p.name: p for p in list_profiles()}
    own = {name: m for name, p in profiles.items() if (m := _matches(p.detect, host)) is not None}

    def total(name: str, seen: tuple[str, ...] = ()) -> tuple[int, list[str]]:
        score, reasons = own[name]
        parent = profiles[name].extends
        if score and parent in own and parent not in seen:
            pscore, preasons = total(parent, (*seen, name))
            return score + pscore, reasons + [f"{r} (as {parent})" for r in preasons]
        return score, list(reasons)

    candidates: list[tuple[int, bool, int, str, list[str]]] = []
    for name in own:
        score, reasons = total(name)
        generic = not any(getattr(profiles[name].detect, k) for k, w in RULE_WEIGHTS.items() if w)
        candidates.append((score, generic, len(reasons), name, reasons))
    if not candidates:
        raise UnknownDeviceError(
            f"no device profile matches this host (machine {host.machine or '?'}, system {host.system or '?'}). "
            f"Pass {option('device')} a profile name {sorted(profiles)} or a path to your own profile .toml "
            "(devices/README.md shows how; `extends` a close one).")
    candidates.sort(key=lambda c: (-c[0], c[1], -c[2], c[3]))
    score, generic, _, name, reasons = candidates[0]
    return DetectionResult(
        profile=profiles[name], reasons=tuple(reasons) + (("no specific profile matched: generic fallback",)
                                                          if generic else ()),
        candidates=tuple(Match(c[3], c[0], tuple(c[4])) for c in candidates),
        accelerators=host.runtime_accelerators(), host=host, fallback=generic)
