"""``edgekit agent``: join this device to a fleet as a labelled Ray node with one measurement slot.

The agent checks the head first (reachable, same edgekit version), then runs
``ray start --address HEAD --labels ... --resources '{"edgekit_slot": 1}' --block`` in the
foreground, so Ctrl-C (or stopping the service) takes the node out of the fleet again.

Labels (Kubernetes syntax, which Ray enforces): ``edgekit/device`` (the device profile),
``edgekit/device-source`` (``detected`` or ``declared``), ``edgekit/version``, ``edgekit/host`` and
one ``edgekit/runtime.NAME = VERSION`` per installed runtime. Jobs select nodes by label
(Ray's ``label_selector``) and take the node's single :data:`~edgekit.fleet.cluster.SLOT`.

Example::

    labels = node_labels("raspberry-pi-5", declared=True)
    cmd = agent_command("10.0.0.5:6379", labels)      # the `ray start` command line, as a list
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping

from edgekit.fleet.cluster import (
    DEVICE_LABEL,
    HOST_LABEL,
    RUNTIME_LABEL_PREFIX,
    SLOT,
    SOURCE_LABEL,
    VERSION_LABEL,
    FleetError,
    connect,
    label_value,
    ray_module,
)

__all__ = ["agent_command", "node_labels", "node_resources", "resolve_device", "run_agent"]


def resolve_device(device: str = "auto") -> tuple[str, bool]:
    """The device profile's name and whether it was declared (a NAME) rather than detected (``auto``)."""
    from edgekit.devices import detect, get_profile

    if device == "auto":
        return detect().profile.name, False
    return get_profile(device).name, True  # UnknownDeviceError lists the profiles when NAME is unknown


def node_labels(device: str, *, declared: bool, host: str | None = None,
                runtimes: Mapping[str, str] | None = None, version: str | None = None) -> dict[str, str]:
    """The node labels of an agent for ``device`` (runtimes and host default to this machine's).

    >>> node_labels("raspberry-pi-5", declared=True, host="pi-lab-1", runtimes={"litert": "1.2.0"},
    ...             version="0.1.0")["edgekit/device-source"]
    'declared'
    """
    if runtimes is None:
        from edgekit.registry import list_runtimes

        runtimes = {r.name: r.version or "unknown" for r in list_runtimes(probe=False) if r.installed}
    if version is None:
        from edgekit._version import __version__

        version = __version__
    labels = {
        DEVICE_LABEL: label_value(device),
        SOURCE_LABEL: "declared" if declared else "detected",
        VERSION_LABEL: label_value(version),
        HOST_LABEL: label_value(host or socket.gethostname()),
    }
    labels.update({RUNTIME_LABEL_PREFIX + label_value(name): label_value(v) for name, v in sorted(runtimes.items())})
    return labels


def node_resources() -> dict[str, float]:
    """The custom resources of an agent: one measurement slot.

    >>> node_resources()
    {'edgekit_slot': 1.0}
    """
    return {SLOT: 1.0}


def agent_command(address: str, labels: Mapping[str, str], *, node_ip: str | None = None,
                  ray_cli: str = "ray") -> list[str]:
    """The ``ray start`` command line that joins this machine to ``address`` with ``labels``.

    >>> agent_command("10.0.0.5:6379", {"edgekit/device": "x"})[:4]
    ['ray', 'start', '--address', '10.0.0.5:6379']
    """
    cmd = [ray_cli, "start", "--address", address,
           "--labels", ",".join(f"{k}={v}" for k, v in labels.items()),
           "--resources", json.dumps(node_resources()), "--block"]
    if node_ip:
        cmd += ["--node-ip-address", node_ip]
    return cmd


def run_agent(address: str, device: str = "auto", *, node_ip: str | None = None, timeout: float = 3.0) -> int:
    """Check the head, then run the node in the foreground until it stops; returns ``ray start``'s status.

    Raises :class:`~edgekit.fleet.cluster.FleetUnreachableError` or
    :class:`~edgekit.fleet.cluster.FleetVersionError` before joining anything.
    """
    ray = ray_module()
    name, declared = resolve_device(device)
    connect(address, timeout=timeout)  # reachable, same edgekit version: refused here, before joining
    ray.shutdown()
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if ray_cli is None:
        raise FleetError(f"the `ray` command was not found beside {sys.executable} nor on PATH; "
                         "reinstall with pip install 'edgekit[fleet]'")
    cmd = agent_command(address, node_labels(name, declared=declared), node_ip=node_ip, ray_cli=ray_cli)
    return subprocess.call(cmd)
