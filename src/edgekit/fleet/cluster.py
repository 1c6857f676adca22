"""Connect to a fleet's Ray head, refuse a different edgekit version, list the nodes.

A fleet is a Ray cluster whose worker nodes were started by ``edgekit agent``: each carries the node
labels below (its device profile, edgekit's version, its runtimes, its host) and one
:data:`SLOT` resource, so two measurements never share a device. The head runs no jobs (start it
with ``--num-cpus 0``, no slot) and carries the label ``edgekit/version``.

Ray is imported only inside these functions: ``import edgekit`` (and ``import edgekit.fleet``)
never imports it, and a missing Ray is a :class:`~edgekit.errors.RuntimeNotInstalledError` naming
the extra ``edgekit[fleet]``.

Example::

    from edgekit.fleet import connect, list_nodes

    connect("10.0.0.5:6379")             # FleetUnreachableError within ~3 s when nothing answers
    for node in list_nodes():
        print(node.device, node.host, "busy" if node.busy else "free")
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from edgekit.errors import FleetError, FleetUnreachableError, FleetVersionError, RuntimeNotInstalledError

__all__ = [
    "DEVICE_LABEL",
    "HEAD_HINT",
    "HOST_LABEL",
    "RUNTIME_LABEL_PREFIX",
    "SLOT",
    "SOURCE_LABEL",
    "VERSION_LABEL",
    "FleetError",
    "FleetNode",
    "FleetUnreachableError",
    "FleetVersionError",
    "check_version",
    "connect",
    "label_value",
    "list_nodes",
    "parse_address",
    "ray_module",
]

#: node label: the device profile's name (``edgekit devices``), detected or declared
DEVICE_LABEL = "edgekit/device"
#: node label: ``detected`` or ``declared`` (``edgekit agent --device NAME``: declared, not detected)
SOURCE_LABEL = "edgekit/device-source"
#: node label: the edgekit version of the agent (on the head: of the fleet)
VERSION_LABEL = "edgekit/version"
#: node label: the agent's host name
HOST_LABEL = "edgekit/host"
#: node label prefix: one label per installed runtime, ``edgekit/runtime.onnxruntime = 1.20.1``
RUNTIME_LABEL_PREFIX = "edgekit/runtime."
#: custom resource: one measurement slot per device node; every job takes the whole slot
SLOT = "edgekit_slot"
#: the command that starts a head, for messages (the address is the head's private-network address)
HEAD_HINT = "ray start --head --node-ip-address 127.0.0.1 --port 6379 --num-cpus 0 --labels edgekit/version={version}"


def ray_module() -> ModuleType:
    """Import Ray, or say which extra installs it."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeNotInstalledError(
            "the device fleet needs Ray, which is not installed; install it with: pip install 'edgekit[fleet]'"
        ) from exc
    return ray


def _edgekit_version() -> str:
    from edgekit._version import __version__

    return __version__


def label_value(text: str) -> str:
    """``text`` as a valid Ray label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends.

    >>> label_value("2.1.0+cpu")
    '2.1.0_cpu'
    >>> label_value("")
    'unknown'
    """
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)[:63]
    cleaned = cleaned.strip("._-")
    return cleaned or "unknown"


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``ray://`` and ``auto`` are not fleet addresses) as a pair; port 6379 by default.

    >>> parse_address("10.0.0.5:6379")
    ('10.0.0.5', 6379)
    >>> parse_address("head.lan")
    ('head.lan', 6379)
    """
    text = address.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "6379"
    host = host.strip("[]")
    if not host or "/" in text or not port.isdigit():
        raise FleetError(
            f"fleet address {address!r} is not HOST:PORT; expected the head's address as printed by `ray start --head`, "
            "e.g. 10.0.0.5:6379"
        )
    return host, int(port)


def _probe(address: str, timeout: float) -> None:
    """Open and close one TCP connection to the head's port: fails in ``timeout`` s, not Ray's minutes."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise FleetUnreachableError(
            f"no Ray head answers at {address} ({exc.strerror or exc}); start one there with "
            f"`{HEAD_HINT.format(version=_edgekit_version())}` (its own private-network address instead of "
            "127.0.0.1 for other machines) or pass the address it printed"
        ) from exc


@contextlib.contextmanager
def _loopback(address: str, ray: ModuleType) -> Iterator[None]:
    """Let a driver reach a head bound to 127.0.0.1.

    ``ray.init`` rewrites a loopback address to this host's network address (to make it usable from
    other machines), where a head started with ``--node-ip-address 127.0.0.1`` does not listen. Ray
    skips that rewrite when clusters are "disabled" (its switch for Windows and macOS,
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``), so the switch is off for the duration of a loopback connect.
    """
    host, _ = parse_address(address)
    if host not in ("127.0.0.1", "localhost", "::1"):
        yield
        return
    constants = ray._private.ray_constants
    saved = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


#: the address this process last joined with :func:`connect` (Ray may report it rewritten)
_CONNECTED: dict[str, str] = {}


def _connected_to(ray: ModuleType) -> str | None:
    if not ray.is_initialized():
        return None
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # noqa: BLE001 - a half-initialised Ray counts as not connected
        return None


def connect(address: str, *, timeout: float = 3.0, version: str | None = None) -> list[FleetNode]:
    """Connect this process to the fleet at ``address`` and return its nodes.

    Fails fast (``timeout`` s) with :class:`FleetUnreachableError` when nothing answers, and with
    :class:`FleetVersionError` when the fleet runs another edgekit version than ``version`` (this
    one by default). Connecting again to the same address reuses the connection.
    """
    ray = ray_module()
    mine = version or _edgekit_version()
    host, port = parse_address(address)
    wanted = f"{host}:{port}"
    current = _connected_to(ray)
    if current is not None and wanted not in (current, _CONNECTED.get("address")):
        _probe(address, timeout)  # before dropping the current connection
        ray.shutdown()
        current = None
    if current is None:
        _probe(address, timeout)
        import logging

        with _loopback(address, ray):
            try:
                ray.init(address=wanted, namespace="edgekit", log_to_driver=False, logging_level=logging.ERROR)
            except Exception as exc:  # Ray's errors here (auth, version, GCS) all become one message
                detail = (str(exc).strip().splitlines() or [""])[0]
                raise FleetUnreachableError(
                    f"could not join the Ray head at {address}: {type(exc).__name__}: {detail}; check that "
                    f"`ray status --address {address}` works from here, that both sides run the same Ray and Python "
                    "versions, and that RAY_AUTH_MODE/RAY_AUTH_TOKEN match the head's"
                ) from exc
        _CONNECTED["address"] = wanted
    nodes = list_nodes()
    check_version(nodes, mine, address=address)
    return nodes


def check_version(nodes: list[FleetNode], mine: str, *, address: str = "the fleet") -> None:
    """Refuse a fleet whose head (or, without a head label, whose agents) run another edgekit version.

    >>> check_version([FleetNode("n1", is_head=True, edgekit="0.1.0")], "0.1.0")
    """
    head = [n.edgekit for n in nodes if n.is_head and n.edgekit]
    theirs = head or sorted({n.edgekit for n in nodes if n.alive and n.edgekit and n.edgekit != mine})
    for other in theirs:
        if other != mine:
            who = "head" if head else "agents"
            raise FleetVersionError(
                f"the fleet at {address} runs edgekit {other} ({who}) but this machine runs edgekit {mine}; install "
                f"the same version on both sides (pip install 'edgekit[fleet]=={other}'), then retry"
            )


@dataclass(frozen=True)
class FleetNode:
    """One node of the fleet, as ``edgekit fleet status`` shows it."""

    node_id: str
    is_head: bool = False
    device: str | None = None
    declared: bool = False
    host: str | None = None
    ip: str | None = None
    edgekit: str | None = None
    runtimes: Mapping[str, str] = field(default_factory=dict)
    alive: bool = True
    slots: float = 0.0
    busy: bool | None = None

    @property
    def device_text(self) -> str:
        """The device profile with how it was chosen (``raspberry-pi-5 (declared, not detected)``)."""
        if not self.device:
            return "-"
        return f"{self.device} ({'declared, not detected' if self.declared else 'detected'})"


def _node(raw: Mapping[str, Any], available: Mapping[str, Mapping[str, float]]) -> FleetNode:
    labels: Mapping[str, str] = raw.get("Labels") or {}
    resources: Mapping[str, float] = raw.get("Resources") or {}
    node_id = str(raw.get("NodeID", ""))
    slots = float(resources.get(SLOT, 0.0))
    # Ray leaves out a resource with nothing available; a node it does not report at all is unknown
    free = float(available[node_id].get(SLOT, 0.0)) if node_id in available else None
    return FleetNode(
        node_id=node_id,
        is_head=bool(raw.get("IsHead")) or "node:__internal_head__" in resources,
        device=labels.get(DEVICE_LABEL),
        declared=labels.get(SOURCE_LABEL) == "declared",
        host=labels.get(HOST_LABEL) or raw.get("NodeManagerHostname"),
        ip=raw.get("NodeManagerAddress"),
        edgekit=labels.get(VERSION_LABEL),
        runtimes={k[len(RUNTIME_LABEL_PREFIX):]: v for k, v in labels.items() if k.startswith(RUNTIME_LABEL_PREFIX)},
        alive=bool(raw.get("Alive")),
        slots=slots,
        busy=None if not slots or free is None else free < slots,
    )


def list_nodes(*, include_dead: bool = False) -> list[FleetNode]:
    """The fleet's nodes (the connected one): head first, then by device and host."""
    ray = ray_module()
    if not ray.is_initialized():
        raise FleetError("not connected to a fleet; call edgekit.fleet.connect(ADDRESS) first")
    try:  # per-node free resources: a DeveloperAPI of Ray's state module, read only for busy/free
        from ray._private.state import available_resources_per_node

        available: Mapping[str, Mapping[str, float]] = available_resources_per_node()
    except Exception:  # noqa: BLE001 - busy/free then shows "-"
        available = {}
    nodes = [_node(raw, available) for raw in ray.nodes()]
    nodes = [n for n in nodes if n.alive or include_dead]
    return sorted(nodes, key=lambda n: (not n.is_head, n.device or "", n.host or "", n.node_id))


def wait_for_nodes(count: int, *, timeout: float = 30.0) -> list[FleetNode]:
    """Wait until ``count`` device nodes (nodes with a slot) are alive; for tests and scripts."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = [n for n in list_nodes() if n.slots]
        if len(nodes) >= count or time.monotonic() > deadline:
            return nodes
        time.sleep(0.2)
