"""Run :func:`edgekit.profiling.profile` on devices of a fleet; one :class:`ProfileReport` per device.

The model files (several formats of one model, external-data files beside them) and the ``inputs``
files are shipped through the object store; each device runs the normal profiler (same isolation,
adaptive stopping and parity as a local run) on its own copy and returns its report as JSON,
read back here with the report schema's checks. Merging the per-device reports into one (with
``device``, ``node`` and ``host`` per row) is the caller's business.

Example::

    from edgekit.fleet.profile import profile_on_fleet

    for o in profile_on_fleet("model.onnx", "10.0.0.5:6379", ["raspberry-pi-5", "jetson-orin-nano"],
                              runtimes=["onnxruntime"], duration=2.0):
        print(o.device, o.status, o.value.results[0].p50_ms if o.ok else o.reason)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.fleet.jobs import Outcome, run_on_devices

__all__ = ["profile_on_fleet"]


def _profile_job(files: dict[str, Path], models: list[str], inputs: list[tuple[str | None, str]],
                 kwargs: dict[str, Any]) -> str:
    """Runs on the node: profile the shipped model files with the shipped inputs; the report as JSON."""
    from edgekit.profiling import profile

    paths = [files[name] for name in models]
    report = profile(paths[0] if len(paths) == 1 else paths,
                     inputs=[(name, files[key]) for name, key in inputs], **kwargs)
    return report.to_json()


def profile_on_fleet(model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], address: str,
                     devices: Sequence[str], *, extra_files: Sequence[str | os.PathLike[str]] = (),
                     inputs: Sequence[tuple[str | None, str | os.PathLike[str]]] = (),
                     unavailable_after: float = 10.0, retries: int = 1, **profile_kwargs: Any) -> list[Outcome]:
    """Profile ``model`` on each device (``["all"]``: every device of the fleet); ``value`` is a ProfileReport.

    ``extra_files`` are written beside the model (ONNX external data); ``inputs`` are
    ``(input name or None, path)`` as for ``profile``; ``profile_kwargs`` go to
    :func:`edgekit.profiling.profile` on the node (``runtimes=``, ``duration=``, ...).
    """
    from edgekit.profiling.results import ProfileReport

    model_paths = [Path(model)] if isinstance(model, (str, os.PathLike)) else [Path(m) for m in model]
    payload: dict[str, Path] = {f"model/{p.name}": p for p in [*model_paths, *map(Path, extra_files)]}
    shipped_inputs: list[tuple[str | None, str]] = []
    for i, (name, path) in enumerate(inputs):
        key = f"inputs/{i}-{Path(path).name}"
        payload[key] = Path(path)
        shipped_inputs.append((name, key))
    outcomes = run_on_devices(address, devices, _profile_job, payload,
                              args=([f"model/{p.name}" for p in model_paths], shipped_inputs, dict(profile_kwargs)),
                              unavailable_after=unavailable_after, retries=retries)
    for o in outcomes:
        if o.ok:
            o.value = ProfileReport.from_json(o.value)
    return outcomes
