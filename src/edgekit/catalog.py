"""The data catalogs: ``runtimes/*.toml`` and ``devices/**/*.toml``.

In a wheel they live in ``edgekit/_catalog/``; in a source checkout (editable install)
they are the top-level ``runtimes/`` and ``devices/`` folders. Files are validated on
read (:mod:`edgekit.tomlfile`), with errors that name the file, the key, what was expected
and what was found. Device profiles are read by :mod:`edgekit.devices`.

Example::

    info = runtime_info("onnxruntime")
    info.extra, info.formats        # ('onnxruntime', ('onnx',))
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError
from edgekit.runtime import RuntimeInfo
from edgekit.tomlfile import check_keys, expect, read_toml

__all__ = ["REFERENCE_RUNTIMES", "catalog_dir", "parse_runtime_info", "runtime_info", "runtime_infos"]

#: the float32 reference runtime per model format: the one whose outputs others are compared with
#: (verify=True, edgekit tune, edgekit convert) and the one the emulator computes with
REFERENCE_RUNTIMES = {"onnx": "onnxruntime", "tflite": "litert"}


@functools.cache
def catalog_dir(kind: str) -> Path:
    """The folder holding the ``kind`` catalog (``"runtimes"`` or ``"devices"``)."""
    packaged = Path(__file__).parent / "_catalog" / kind
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / kind  # editable install / checkout
    if source.is_dir():
        return source
    raise ConfigError(
        f"edgekit's {kind} catalog is missing (looked in {packaged} and {source}); "
        "the installation is broken: reinstall with `pip install --force-reinstall edgekit`."
    )


_RUNTIME_KEYS = {"name", "title", "module", "wheels", "extra", "formats", "converts", "priority",
                 "accelerators", "homepage", "notes", "ops", "conformance"}


def parse_runtime_info(data: Mapping[str, Any], where: str) -> RuntimeInfo:
    """Validate one runtime catalog table."""
    check_keys(data, _RUNTIME_KEYS, where)
    accs = expect(data, "accelerators", dict, where, required=False) or {}
    priority = expect(data, "priority", int, where, required=False)  # 0 is a priority ("first"), not "unset"
    return RuntimeInfo(
        name=expect(data, "name", str, where),
        title=expect(data, "title", str, where),
        module=expect(data, "module", str, where),
        wheels=tuple(expect(data, "wheels", list, where)),
        extra=expect(data, "extra", str, where),
        formats=tuple(expect(data, "formats", list, where)),
        converts=tuple(expect(data, "converts", list, where, required=False) or ()),
        priority=50 if priority is None else priority,
        accelerators={str(k): str(v) for k, v in accs.items()},
        homepage=expect(data, "homepage", str, where, required=False) or "",
        notes=tuple(expect(data, "notes", list, where, required=False) or ()),
        ops=expect(data, "ops", dict, where, required=False) or {},
        conformance=expect(data, "conformance", dict, where, required=False) or {},
    )


@functools.cache
def runtime_infos() -> dict[str, RuntimeInfo]:
    """Every ``runtimes/*.toml``, by runtime name."""
    out: dict[str, RuntimeInfo] = {}
    for path in sorted(catalog_dir("runtimes").glob("*.toml")):
        info = parse_runtime_info(read_toml(path), str(path))
        if info.name != path.stem:
            raise ConfigError(f"{path}: key 'name' expected {path.stem!r} (the file name), got {info.name!r}.")
        out[info.name] = info
    return out


def runtime_info(name: str) -> RuntimeInfo | None:
    """The catalog entry for ``name``, or None for a plugin that ships none."""
    return runtime_infos().get(name)
