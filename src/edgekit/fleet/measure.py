"""Profile a model on devices of a fleet: :func:`profile` (one merged report), :func:`profile_on_fleet` (one per device).

The model files (several formats of one model; OpenVINO weights and ONNX external data beside
them) and the ``inputs`` files are shipped through the object store; each device runs the normal
profiler (:func:`edgekit.profiling.profile`: isolated workers, adaptive stopping, parity against
that device's own float32 reference) with the node's device profile (its targets, as ``edgekit profile
--device``) on its own copy, devices in parallel, and returns its report
as JSON, read back here with the report schema's checks. :func:`profile` merges them
(:func:`edgekit.fleet.merge.merge_reports`): one :class:`ProfileReport` with ``device``, ``node``
and ``host`` per row, and an ``unavailable``/``failed`` row for each device whose job did not run.

This is the Python API of ``edgekit profile --fleet``. It lives here, above the profiler, rather
than as ``edgekit.profiling.profile(..., fleet=)``: the profiler must not depend on Ray.

Mistakes in what the caller passed are refused here, before anything is shipped, by the checks the
local profiler makes (:func:`check_inputs`: ``inputs`` and ``shapes`` bound to the model's declared
inputs; a runtime name neither this machine nor any node knows): the same error as a local run.
What only a node can see (the inputs of a format read through a runtime) fails its job;
:func:`usage_error` says when every device that ran failed with the same such error.

Example::

    import edgekit.fleet

    report = edgekit.fleet.profile("det.onnx", "10.0.0.5:6379", ["raspberry-pi-5", "jetson-orin-nano"],
                                   runtimes=["onnxruntime"], duration=2.0)
    for r in report.results:
        print(r.device, r.runtime, r.status, r.latency.p50 if r.latency else r.error)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fleet.cluster import FleetNode, connect, label_value
from edgekit.fleet.jobs import Outcome, run_on_devices
from edgekit.fleet.payload import InputItem, input_payload, local_inputs, model_files, model_payload
from edgekit.profiling.results import ProfileReport

__all__ = ["check_inputs", "profile", "profile_on_fleet"]

ModelArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
InputArg = Sequence[tuple[str | None, str | os.PathLike[str]]]



def check_inputs(model: ModelArg, inputs: InputArg = (), *, shapes: Mapping[str, Sequence[int]] | None = None,
                 seed: int = 0) -> None:
    """Raise here what the profiler would raise on every node for ``inputs`` and ``shapes``, before anything is shipped.

    The profiler's own functions bind them to the inputs each model file declares, in order, as a
    local ``edgekit profile`` does before measuring (:func:`edgekit.profiling.inputs.make_inputs`):
    a missing file, an input the model does not have, a shape or dtype that does not fit, a
    ``shapes`` entry for no input or of the wrong rank are an :class:`~edgekit.errors.InputError` or
    :class:`~edgekit.errors.InvalidOptionError` with the local message. The check stops at the
    first model file whose inputs only a runtime can read (not ONNX or TFLite), or when this
    machine lacks what reading an input needs (OpenCV for images): the nodes check the rest.

    >>> check_inputs(None, shapes={"imagee": (1, 3, 96, 96)})
    Traceback (most recent call last):
    ...
    edgekit.errors.InvalidOptionError: shapes= for ['imagee']: the model has no such input; its inputs are ['image'].
    """
    import numpy as np

    from edgekit.models.model_io import model_io
    from edgekit.profiling.inputs import make_inputs, parse_input_args

    given = parse_input_args([f"{name}={os.fspath(path)}" if name else os.fspath(path) for name, path in inputs])
    shared: dict[str, np.ndarray] = {}
    for mf in model_files(model):
        io = model_io(mf)
        if io is None:
            return
        try:
            feeds, _ = make_inputs(io[0], given=given, shared=shared, seed=seed, shapes=shapes)
        except ImportError as exc:
            if isinstance(exc, EdgekitError):
                raise
            return
        for name, arr in feeds.items():
            shared.setdefault(name, arr)


def _check_runtimes(runtimes: Sequence[str] | None, nodes: Sequence[FleetNode]) -> None:
    """Refuse, as a local run does (:class:`~edgekit.errors.UnknownRuntimeError`), a runtime name that no plugin
    registers here and no node of the fleet has installed."""
    from edgekit.profiling.engine import get_runtime_names_check

    on_nodes = {name for node in nodes for name in node.runtimes}
    for name in runtimes or ():
        if name != "all" and label_value(name) not in on_nodes:
            get_runtime_names_check(name)


def _profile_job(files: dict[str, Path], models: list[str], inputs: list[InputItem],
                 kwargs: dict[str, Any]) -> str:
    """Runs on the node: profile the shipped model files with the shipped inputs on this node's device profile (its
    ``edgekit/device`` label: the profile's targets, as ``edgekit profile --device``); the report as JSON."""
    import ray

    from edgekit.fleet.cluster import DEVICE_LABEL
    from edgekit.profiling import profile as run_profile
    from edgekit.profiling.inputs import parse_input_args

    paths = [files[name] for name in models]
    device = ray.get_runtime_context().get_node_labels().get(DEVICE_LABEL)
    report = run_profile(paths[0] if len(paths) == 1 else paths,
                         inputs=parse_input_args(local_inputs(files, inputs)), **{"device": device, **kwargs})
    return report.to_json()


def profile_on_fleet(model: ModelArg, address: str, devices: Sequence[str], *,
                     extra_files: Sequence[str | os.PathLike[str]] = (), inputs: InputArg = (),
                     unavailable_after: float = 10.0, retries: int = 1,
                     on_outcome: Callable[[Outcome], None] | None = None, **profile_kwargs: Any) -> list[Outcome]:
    """Profile ``model`` on each device (``["all"]``: every device of the fleet); an ok outcome's ``value`` is its
    ProfileReport.

    ``model`` None is the bundled sample (ONNX and TFLite). ``extra_files`` are written beside the
    (first) model; files the model references (external data, IR weights) are found and shipped
    anyway. ``inputs`` are ``(input name or None, path)`` as for ``profile``; ``profile_kwargs``
    go to :func:`edgekit.profiling.profile` on the node (``runtimes=``, ``duration=``, ...);
    ``on_outcome`` is called as each device finishes.

    Before anything is shipped, ``inputs``, ``shapes=`` and ``runtimes=`` are checked as a local run
    checks them (see the module docstring): the same :class:`~edgekit.errors.InputError`,
    :class:`~edgekit.errors.InvalidOptionError` or :class:`~edgekit.errors.UnknownRuntimeError`.
    """
    payload, models = model_payload(model)
    check_inputs(model, inputs, shapes=profile_kwargs.get("shapes"), seed=profile_kwargs.get("seed", 0))
    first = models[0].rpartition("/")[0]
    payload.update({f"{first}/{Path(p).name}": Path(p) for p in extra_files})
    shipped_inputs, items = input_payload(list(inputs))
    payload.update(shipped_inputs)
    _check_runtimes(profile_kwargs.get("runtimes"), connect(address))

    def read(o: Outcome) -> None:
        if o.ok and isinstance(o.value, str):
            o.value = ProfileReport.from_json(o.value)
        if on_outcome is not None:
            on_outcome(o)

    return run_on_devices(address, devices, _profile_job, payload, args=(models, items, dict(profile_kwargs)),
                          unavailable_after=unavailable_after, retries=retries, on_outcome=read)


def profile(model: ModelArg, address: str, devices: Sequence[str], *, inputs: InputArg = (),
            unavailable_after: float = 10.0, retries: int = 1, on_outcome: Callable[[Outcome], None] | None = None,
            **profile_kwargs: Any) -> ProfileReport:
    """Profile ``model`` on each of ``devices`` of the fleet at ``address`` and merge the rows into one report.

    Arguments as for :func:`profile_on_fleet`. Rows carry ``device``, ``node`` and ``host``, ids are
    prefixed by the device (``raspberry-pi-5:onnxruntime/cpu``), and a device that did not run is one
    ``unavailable``/``failed`` row (``interrupted`` after Ctrl-C, with ``report.partial`` set).
    Raises :class:`~edgekit.errors.FleetUnreachableError` when no head answers at ``address``, and what
    :func:`profile_on_fleet` refuses before shipping. A device whose job raised (e.g. an ``InputError`` only
    its node could see) is a ``failed`` row; :func:`usage_error` of the outcomes (``on_outcome``) tells
    whether every device failed that way.
    """
    from edgekit.fleet.merge import merge_reports

    outcomes = profile_on_fleet(model, address, devices, inputs=inputs, unavailable_after=unavailable_after,
                                retries=retries, on_outcome=on_outcome, **profile_kwargs)
    _, models = model_payload(model)
    runtimes = profile_kwargs.get("runtimes")
    return merge_reports(outcomes, address, model_names=[m.rpartition("/")[2] for m in models],
                         runtimes=list(runtimes) if runtimes else None)
