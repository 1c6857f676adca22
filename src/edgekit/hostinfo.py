"""What a host tells about itself without root: the evidence device detection matches against.

:meth:`HostInfo.probe` reads ``/proc/cpuinfo`` (``sysctl machdep.cpu.brand_string`` on macOS),
the device-tree model and compatible strings, ``/sys/devices/soc0`` (and Android's
``ro.soc.model``), NVIDIA's ``/proc/driver/nvidia/gpus/*/information``, USB vendor:product ids,
device nodes under ``/dev`` (``/dev/accel``, ``/dev/dri`` included), shared-library names on
the library path, and — lazily, through each adapter's ``accelerators()`` — the accelerators
every installed runtime reports. :meth:`HostInfo.from_record` builds one from a recorded host
folder, so detection is testable for machines we do not have.

Example::

    host = HostInfo.probe()
    host.machine, host.device_tree_model          # ('aarch64', 'Raspberry Pi 5 Model B Rev 1.0')
    HostInfo.from_record("tests/data/hosts/raspberry-pi-5").cpuinfo[:20]
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HostInfo", "find_library", "library_dirs"]

_LIB_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/lib/*-linux-gnu", "/lib/*-linux-gnu",
             "/usr/lib/*-linux-gnueabihf", "/usr/lib/aarch64-linux-gnu/tegra", "/usr/local/cuda/lib64", "/system/lib64", "/system/lib",
             "/vendor/lib64", "/opt/homebrew/lib")
_RECORD_KEYS = {"machine", "system", "soc", "gpus", "usb", "device_nodes", "libraries", "accelerators", "source",
                "notes", "expect"}


def _read(path: str | Path, limit: int = 1 << 20) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


@dataclass(frozen=True)
class HostInfo:
    """Evidence about one host; every field is plain text or names, so it can be recorded."""

    machine: str = ""
    system: str = ""
    cpuinfo: str = ""
    device_tree_model: str = ""
    device_tree_compatible: tuple[str, ...] = ()
    soc: str = ""  # "family: Snapdragon\nmachine: SM8650\n..." from /sys/devices/soc0 and ro.soc.model
    gpus: tuple[str, ...] = ()
    usb: tuple[str, ...] = ()  # "vvvv:pppp"
    device_nodes: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    #: runtime -> accelerators it reports (or why it cannot); None: ask the installed adapters when needed
    accelerators: Mapping[str, tuple[str, ...] | str] | None = None
    source: str = "this host"
    _probed: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def probe(cls) -> HostInfo:
        """Read this host (no root needed; missing files are simply empty)."""
        system = platform.system()
        cpuinfo = _read("/proc/cpuinfo")
        if system == "Darwin":
            brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
            cpuinfo = f"machdep.cpu.brand_string: {brand}\n" if brand else ""
        dt = "/proc/device-tree" if os.path.isdir("/proc/device-tree") else "/sys/firmware/devicetree/base"
        soc = [f"{k}: {_read(f'/sys/devices/soc0/{k}').strip()}" for k in ("family", "machine", "soc_id", "revision")
               if os.path.exists(f"/sys/devices/soc0/{k}")]
        if shutil.which("getprop"):
            model = _run(["getprop", "ro.soc.model"])
            if model:
                soc.append(f"soc_model: {model}")
        gpus = []
        for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
            m = re.search(r"^Model:\s*(.+)$", _read(info), re.M)
            if m:
                gpus.append(m.group(1).strip())
        usb = []
        for dev in sorted(glob.glob("/sys/bus/usb/devices/*")):
            vid, pid = _read(f"{dev}/idVendor").strip(), _read(f"{dev}/idProduct").strip()
            if vid and pid:
                usb.append(f"{vid}:{pid}".lower())
        nodes = [f"/dev/{n}" for n in _listdir("/dev")]
        nodes += [f"/dev/{sub}/{n}" for sub in ("accel", "dri") for n in _listdir(f"/dev/{sub}")]
        return cls(machine=platform.machine(), system=system, cpuinfo=cpuinfo,
                   device_tree_model=_read(f"{dt}/model").strip("\x00\n "),
                   device_tree_compatible=tuple(c for c in _read(f"{dt}/compatible").split("\x00") if c),
                   soc="\n".join(soc), gpus=tuple(gpus), usb=tuple(dict.fromkeys(usb)),
                   device_nodes=tuple(sorted(set(nodes))), libraries=_libraries(), source="this host")

    @classmethod
    def from_record(cls, folder: str | os.PathLike[str]) -> HostInfo:
        """A recorded host: ``host.toml`` plus raw ``cpuinfo``, ``device-tree-model``,
        ``device-tree-compatible`` (NUL- or newline-separated) files beside it."""
        from edgekit.tomlfile import check_keys, read_toml

        folder = Path(folder)
        meta = read_toml(folder / "host.toml")
        check_keys(meta, _RECORD_KEYS, str(folder / "host.toml"))
        compat = _read(folder / "device-tree-compatible").replace("\x00", "\n")
        accs = meta.get("accelerators")
        return cls(
            machine=str(meta.get("machine", "")), system=str(meta.get("system", "")),
            cpuinfo=_read(folder / "cpuinfo"), device_tree_model=_read(folder / "device-tree-model").strip("\x00\n "),
            device_tree_compatible=tuple(c.strip() for c in compat.splitlines() if c.strip()),
            soc=str(meta.get("soc", "")), gpus=tuple(meta.get("gpus", ())), usb=tuple(meta.get("usb", ())),
            device_nodes=tuple(meta.get("device_nodes", ())), libraries=tuple(meta.get("libraries", ())),
            accelerators=None if accs is None else {k: tuple(v) if isinstance(v, list) else str(v)
                                                    for k, v in accs.items()},
            source=str(meta.get("source", folder.name)))

    @property
    def cpu_model(self) -> str:
        r"""The CPU's name as the host describes it: x86 ``model name``, Arm ``Model``/``Hardware``, macOS brand.

        >>> HostInfo(machine="x86_64", system="Linux", cpuinfo="model name\t: Intel Xeon\n").cpu_model
        'Intel Xeon'
        """
        for line in self.cpuinfo.splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip() and key.strip() in ("model name", "Model", "Hardware", "machdep.cpu.brand_string"):
                return value.strip()
        return platform.processor() or self.machine

    # -- what detection asks -------------------------------------------------------------------
    def runtime_accelerators(self) -> Mapping[str, tuple[str, ...] | str]:
        """Runtime -> accelerators its adapter reports here, or a string saying why none (not installed…)."""
        if self.accelerators is not None:
            return self.accelerators
        if "accelerators" not in self._probed:
            from edgekit.registry import get_runtime, runtime_names

            out: dict[str, tuple[str, ...] | str] = {}
            for name in runtime_names():
                try:
                    rt = get_runtime(name)
                    if not rt.is_installed():
                        out[name] = f"not installed ({rt.info.install_hint})"
                        continue
                    out[name] = tuple(rt.accelerators())
                except Exception as exc:  # noqa: BLE001 - a broken runtime must not break detection
                    out[name] = f"probe failed: {type(exc).__name__}: {exc}"
            self._probed["accelerators"] = out
        return self._probed["accelerators"]

    def evidence(self, rule: str, pattern: str) -> str | None:
        """Why ``pattern`` of detection rule ``rule`` matches this host, or None."""
        if rule in ("cpuinfo", "soc"):
            m = re.search(pattern, self.cpuinfo if rule == "cpuinfo" else self.soc, re.M)
            return f"{rule} line '{_line(m)}' matches {pattern}" if m else None
        if rule == "device_tree":
            return f"device-tree model '{self.device_tree_model}' matches {pattern}" if (
                self.device_tree_model and re.search(pattern, self.device_tree_model)) else None
        if rule in ("compatible", "gpu"):
            for item in self.device_tree_compatible if rule == "compatible" else self.gpus:
                if re.search(pattern, item):
                    return f"{'device-tree compatible' if rule == 'compatible' else 'GPU'} '{item}' matches {pattern}"
            return None
        if rule == "usb":
            return f"USB device {pattern} is present" if pattern.lower() in self.usb else None
        if rule in ("device_nodes", "libraries"):
            names = self.device_nodes if rule == "device_nodes" else self.libraries
            hit = next((n for n in names if fnmatch.fnmatch(n, pattern)), None)
            return (f"device node {hit} exists" if rule == "device_nodes" else f"library {hit} is installed") if hit else None
        if rule == "accelerators":
            rt, _, acc = pattern.partition(":")
            present = self.runtime_accelerators().get(rt)
            return f"{rt} reports accelerator {acc!r}" if isinstance(present, tuple) and acc in present else None
        raise ValueError(f"unknown detection rule {rule!r}")


def _line(m: re.Match[str]) -> str:
    start = m.string.rfind("\n", 0, m.start()) + 1
    end = m.string.find("\n", m.end())
    return " ".join(m.string[start: end if end >= 0 else None].split())


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=3, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _libraries() -> tuple[str, ...]:
    names = {n for d in library_dirs() for n in _listdir(d) if ".so" in n or n.endswith(".dylib")}
    return tuple(sorted(names))


def library_dirs() -> list[str]:
    """The folders shared libraries are looked up in: ``LD_LIBRARY_PATH``/``DYLD_LIBRARY_PATH``, the usual system
    folders (Jetson's tegra and Android's included), the folders in /etc/ld.so.conf and this Python's lib/."""
    env = tuple(os.environ.get(var, "") for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"))
    return list(_library_dirs(env))


@functools.lru_cache(maxsize=16)
def _library_dirs(env: tuple[str, ...]) -> tuple[str, ...]:
    dirs = [d for value in env for d in value.split(os.pathsep) if d]
    for pattern in _LIB_DIRS:
        dirs.extend(glob.glob(pattern))
    dirs += _ld_so_conf_folders()
    dirs.append(str(Path(sys.prefix) / "lib"))
    return tuple(dict.fromkeys(dirs))


def find_library(names: list[str]) -> str | None:
    """Path of the first library in ``names`` found in :func:`library_dirs`, without loading it.

    >>> find_library(["libedgetpu.so.1"]) is None     # on a host without a Coral runtime
    True
    """
    for name in names:
        for folder in library_dirs():
            if (Path(folder) / name).is_file():
                return str(Path(folder) / name)
    return None


def _ld_so_conf_folders(conf: str = "/etc/ld.so.conf") -> list[str]:
    """Folders the dynamic loader searches, read from ld.so.conf and its includes.

    Not ``ctypes.util.find_library``: on Linux that spawns ``ldconfig``, ``gcc`` and ``ld``
    (9 processes here), too costly on a small device at every first load.
    """
    import glob

    out: list[str] = []
    pending, seen = [conf], set()
    while pending:
        path = pending.pop()
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line.startswith("include "):
                pending.extend(sorted(glob.glob(line.split(None, 1)[1])))
            elif line.startswith("/"):
                out.append(line)
    return out
