"""edgekit: one predictor interface, device profiles and a profiler over real on-device runtimes.

Example::

    import edgekit, numpy as np

    with edgekit.load("model.onnx", device="raspberry-pi-5") as m:
        print(m.placement.explain())
        out = m(np.zeros((1, 3, 224, 224), np.float32))

``import edgekit`` imports no runtime library; each loads when first used.
"""

from __future__ import annotations

import typing as _typing

from edgekit.errors import (
    AcceleratorUnavailableError,
    AccuracyError,
    BundleError,
    ConfigError,
    CorruptModelError,
    DeviceUnavailableError,
    EdgekitError,
    FleetError,
    FleetUnreachableError,
    FleetVersionError,
    InferenceError,
    InferenceTimeoutError,
    InputError,
    InvalidOptionError,
    ModelError,
    ModelFetchError,
    ModelNotFoundError,
    PlanError,
    ReportError,
    RuntimeNotInstalledError,
    UnknownDeviceError,
    UnknownFormatError,
    UnknownRuntimeError,
    UnsupportedModelError,
)
from edgekit.placement import Placement, Rejection
from edgekit.predictor import Predictor, load
from edgekit.registry import RuntimeStatus, get_runtime, list_runtimes, register_runtime
from edgekit.tensors import TensorSpec

if _typing.TYPE_CHECKING:
    from edgekit.devices import DeviceProfile

#: names loaded on first use, so ``import edgekit`` stays light (PEP 562)
_LAZY = dict.fromkeys(("Classification", "Detection", "Pipeline", "SegmentationMask", "TextBox", "load_bundle"), "edgekit.pipeline")
_LAZY["__version__"] = "edgekit._version"  # read from the package metadata on first use
_LAZY["tune"] = "edgekit.tuning"  # edgekit.tune(model, ...) -> TuneReport


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def list_devices() -> list[DeviceProfile]:
    """Every device profile (built-in and from ``$EDGEKIT_DEVICES``), sorted by name.

    >>> [p.name for p in edgekit.list_devices()][:2]     # doctest: +SKIP
    ['android-nnapi', 'apple-m-series']
    """
    from edgekit.devices import list_profiles

    return list_profiles()


__all__ = [
    "AcceleratorUnavailableError",
    "AccuracyError",
    "BundleError",
    "Classification",
    "ConfigError",
    "CorruptModelError",
    "Detection",
    "DeviceUnavailableError",
    "EdgekitError",
    "FleetError",
    "FleetUnreachableError",
    "FleetVersionError",
    "InferenceError",
    "InferenceTimeoutError",
    "InputError",
    "InvalidOptionError",
    "ModelError",
    "ModelFetchError",
    "ModelNotFoundError",
    "Pipeline",
    "Placement",
    "PlanError",
    "Predictor",
    "Rejection",
    "ReportError",
    "RuntimeNotInstalledError",
    "RuntimeStatus",
    "SegmentationMask",
    "TensorSpec",
    "TextBox",
    "UnknownDeviceError",
    "UnknownFormatError",
    "UnknownRuntimeError",
    "UnsupportedModelError",
    "__version__",
    "get_runtime",
    "list_devices",
    "list_runtimes",
    "load",
    "load_bundle",
    "register_runtime",
    "tune",
]
