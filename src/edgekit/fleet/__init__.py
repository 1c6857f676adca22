"""A device fleet on Ray: run edgekit jobs on the user's own devices, one job per device label.

Three pieces, bottom up:

- :mod:`edgekit.fleet.cluster`: :func:`connect` to a head (fast, clear failure; same edgekit version
  or refused), :func:`list_nodes` with each node's device profile, host, versions, busy/free.
- :mod:`edgekit.fleet.agent`: the labels and the measurement slot of a device node, and
  :func:`run_agent` behind ``edgekit agent``.
- :mod:`edgekit.fleet.jobs`: :func:`run_on_devices`, one job per device with files shipped through
  Ray's object store, an ``unavailable`` outcome instead of a hang, one retry when a node dies.
- :mod:`edgekit.fleet.measure`: :func:`profile` ``(model, address, devices, **profile_kwargs)``, the
  normal profiler on each device, merged into one ``ProfileReport`` (:mod:`edgekit.fleet.merge`:
  ``device``/``node``/``host`` per row); ``profile_on_fleet``: one report per device, unmerged.
  This is the Python API of ``edgekit profile --fleet`` (here, above the profiler, which must not
  depend on Ray: not ``edgekit.profiling.profile(..., fleet=)``).
- :mod:`edgekit.fleet.plans`: :func:`tune_on_fleet`, ``edgekit.tuning.tune`` on each device with
  its profile as ``device=`` (a model, or a bundle shipped whole), one plan per device written as
  ``DIR/<device>.toml`` and, with ``embed=True``, into the bundle as ``plans/<device>.toml``.

``import edgekit.fleet`` does not import Ray: each function imports it when called, and a
missing Ray is a :class:`~edgekit.errors.RuntimeNotInstalledError` naming ``edgekit[fleet]``.

Example::

    from edgekit.fleet import run_on_devices

    def cpu_count(files):
        import os
        return os.cpu_count()

    for outcome in run_on_devices("10.0.0.5:6379", ["all"], cpu_count):
        print(outcome.device, outcome.host, outcome.value)
"""

from __future__ import annotations

from edgekit.fleet.agent import node_labels, node_resources, run_agent
from edgekit.fleet.cluster import (
    FleetError,
    FleetNode,
    FleetUnreachableError,
    FleetVersionError,
    connect,
    list_nodes,
)
from edgekit.fleet.jobs import Outcome, run_on_devices
from edgekit.fleet.measure import profile, profile_on_fleet
from edgekit.fleet.merge import merge_reports
from edgekit.fleet.plans import DevicePlan, tune_on_fleet

__all__ = [
    "DevicePlan",
    "FleetError",
    "FleetNode",
    "FleetUnreachableError",
    "FleetVersionError",
    "Outcome",
    "connect",
    "list_nodes",
    "merge_reports",
    "node_labels",
    "node_resources",
    "profile",
    "profile_on_fleet",
    "run_agent",
    "run_on_devices",
    "tune_on_fleet",
]
