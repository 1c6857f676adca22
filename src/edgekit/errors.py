"""The one exception tree of edgekit.

Every error says what happened, what was expected and how to fix it. Each class
also subclasses the nearest builtin, so ``except FileNotFoundError`` keeps working::

    EdgekitError
    ├── ModelError
    │   ├── ModelNotFoundError          (FileNotFoundError)
    │   ├── UnknownFormatError          (ValueError)
    │   ├── CorruptModelError           (ValueError)
    │   └── UnsupportedModelError       (RuntimeError)  runtime cannot run this model
    ├── RuntimeNotInstalledError        (ImportError)   names the pip extra
    ├── UnknownRuntimeError             (LookupError)
    ├── AcceleratorUnavailableError     (RuntimeError)
    ├── InvalidOptionError              (ValueError)
    ├── InputError                      (ValueError)    wrong name, count, rank, shape or dtype
    ├── InferenceError                  (RuntimeError)  the runtime failed (or crashed, when isolated) while running
    │   └── AccuracyError                               outputs disagree with the float32 reference (verify=True, tune)
    ├── InferenceTimeoutError           (TimeoutError)  a load or run took longer than ``timeout=``
    ├── ConfigError                     (ValueError)    malformed TOML: device profile, catalog, configuration
    │   ├── BundleError                                 malformed or unsafe model bundle (edgekit.toml, archive)
    │   └── PlanError                                   a deployment plan that is malformed or does not apply here
    ├── ReportError                     (ValueError)    a profile report (JSON) that does not match its schema
    ├── ModelFetchError                 (RuntimeError)  a pinned model wheel could not be fetched or verified
    ├── UnknownDeviceError              (LookupError)
    ├── DeviceUnavailableError          (RuntimeError)  strict placement found no usable target
    └── FleetError                      (RuntimeError)  a device-fleet operation failed (edgekit.fleet)
        ├── FleetUnreachableError       (ConnectionError) no Ray head answers at the address
        └── FleetVersionError                           the fleet runs another edgekit version

Library errors are translated at the adapter boundary with ``raise ... from exc``.

Messages speak the caller's language: a fix is spelled ``precision=`` for the Python API and
``--precision`` for the command line. :func:`option` renders such a hint; the ``edgekit``
command switches the command-line wording on for itself and the worker processes it starts
(:func:`cli_wording_on`, through the environment variable :data:`WORDING_ENV`).

Example::

    try:
        edgekit.load("missing.onnx")
    except edgekit.ModelNotFoundError as exc:
        print(exc)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

# __all__ is the exception tree (tests/test_architecture.py); the wording helpers below are imported by name.
__all__ = [
    "AcceleratorUnavailableError",
    "AccuracyError",
    "BundleError",
    "ConfigError",
    "CorruptModelError",
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
    "PlanError",
    "ReportError",
    "RuntimeNotInstalledError",
    "UnknownDeviceError",
    "UnknownFormatError",
    "UnknownRuntimeError",
    "UnsupportedModelError",
]

#: Set to ``"1"`` by the ``edgekit`` command (and so inherited by its worker processes): messages then name
#: command-line options instead of Python arguments.
WORDING_ENV = "EDGEKIT_CLI_WORDING"

#: Python argument -> the command-line option that sets the same thing (arguments without one keep ``name=``).
CLI_OPTIONS = {
    "device": "--device",
    "input_shapes": "--shape",
    "inputs": "--input",
    "precision": "--precision",
    "runtime": "--runtime",
    "shapes": "--shape",
    "threads": "--threads",
}


def cli_wording() -> bool:
    """True when messages should name command-line options (the ``edgekit`` command is the caller)."""
    return os.environ.get(WORDING_ENV) == "1"


@contextlib.contextmanager
def cli_wording_on() -> Iterator[None]:
    """Name command-line options in messages while inside (the ``edgekit`` command's ``main()`` uses this).

    Worker processes started inside inherit it; the previous setting is restored on exit.
    """
    before = os.environ.get(WORDING_ENV)
    os.environ[WORDING_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(WORDING_ENV, None)
        else:
            os.environ[WORDING_ENV] = before


def option(name: str, value: Any = None, *, cli_value: str | None = None) -> str:
    """How a message names the option ``name`` (a Python argument), optionally with a ``value``, for the caller.

    From Python: ``name=`` or ``name=repr(value)``. From the command line (:func:`cli_wording`), for an
    argument in :data:`CLI_OPTIONS`: the flag, followed by ``cli_value`` (or ``str(value)``).

    >>> option("precision"), option("device", "auto")
    ('precision=', "device='auto'")
    >>> option("input_shapes", {"x": (1, 3, 640, 640)}, cli_value="x=1x3x640x640")
    "input_shapes={'x': (1, 3, 640, 640)}"

    and with the command-line wording on: ``--precision``, ``--device auto``, ``--shape x=1x3x640x640``.
    """
    flag = CLI_OPTIONS.get(name)
    if flag is not None and cli_wording():
        shown = cli_value if cli_value is not None else (None if value is None else str(value))
        return flag if shown is None else f"{flag} {shown}"
    return f"{name}=" if value is None else f"{name}={value!r}"


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""


class ModelError(EdgekitError):
    """Something is wrong with a model file or with what a runtime can do with it."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model path does not exist (or an IR ``.xml`` lacks its ``.bin``)."""


class UnknownFormatError(ModelError, ValueError):
    """The file is not a model format edgekit knows."""


class CorruptModelError(ModelError, ValueError):
    """The file claims a known format but its structure is broken or truncated."""


class UnsupportedModelError(ModelError, RuntimeError):
    """A runtime cannot run this model; ``operators`` lists the culprits when known."""

    def __init__(self, message: str, *, operators: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        # Operator type names without their domain ("com.acme:Gelu", "com.acme.Gelu" -> "Gelu"),
        # each once, so every runtime reports the same thing for the same model.
        bare = (op.rsplit(":", 1)[-1].rsplit(".", 1)[-1] for op in operators)
        self.operators = tuple(dict.fromkeys(bare))


class RuntimeNotInstalledError(EdgekitError, ImportError):
    """The runtime's Python package is not installed; the message names the extra."""


class UnknownRuntimeError(EdgekitError, LookupError):
    """No runtime of that name is registered."""


class AcceleratorUnavailableError(EdgekitError, RuntimeError):
    """The accelerator asked for is not present on this host or in this build."""


class InvalidOptionError(EdgekitError, ValueError):
    """An option is unknown to the runtime or has a wrong value."""


class InputError(EdgekitError, ValueError):
    """Inputs do not match the model: wrong name, count, rank, shape or dtype."""


class InferenceError(EdgekitError, RuntimeError):
    """The runtime raised while running the model."""


class InferenceTimeoutError(EdgekitError, TimeoutError):
    """A load or run exceeded ``timeout=`` (``edgekit.load(..., timeout=s)``); its worker process was killed."""


class ConfigError(EdgekitError, ValueError):
    """A TOML file edgekit reads is malformed: a device profile, a catalog file, a bundle's
    ``edgekit.toml`` (the message names the file, the key, what was expected and what was found)."""


class BundleError(ConfigError):
    """A model bundle is malformed or unsafe: its ``edgekit.toml`` (file, key, expected, got) or its archive."""


class ReportError(EdgekitError, ValueError):
    """A profile report does not match its schema (names the JSON path, expected and got), e.g. ``--compare``."""


class ModelFetchError(EdgekitError, RuntimeError):
    """A model pinned to a PyPI wheel could not be fetched, or did not match its sha256."""


class PlanError(ConfigError):
    """A deployment plan (``edgekit tune``) is malformed, or was made for another model, host or runtime version."""


class AccuracyError(InferenceError):
    """A runtime's outputs disagree with the float32 reference beyond tolerance; names the outputs and the numbers."""


class UnknownDeviceError(EdgekitError, LookupError):
    """No device profile of that name exists."""


class DeviceUnavailableError(EdgekitError, RuntimeError):
    """Strict placement: no target of the device profile can be used on this host."""


class FleetError(EdgekitError, RuntimeError):
    """A device-fleet operation failed: the message says what happened and what to run."""


class FleetUnreachableError(FleetError, ConnectionError):
    """No Ray head answers at the fleet address given."""


class FleetVersionError(FleetError):
    """The fleet's head (or its agents) run another edgekit version than this machine."""
