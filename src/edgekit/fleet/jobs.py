"""Run one job per device of a fleet: route by label, never hang, retry a dead node once, Ctrl-C cancels.

:func:`run_on_devices` ships files through Ray's object store (read here once, ``ray.put`` as
bytes), and on the node writes them into a private temporary folder (names are checked: relative,
no ``..``), calls ``fn(files, *args, **kwargs)`` with ``files`` mapping each name to its local path,
and removes the folder afterwards. Each job takes the node's single measurement slot, so jobs for
one device queue on it while different devices run in parallel.

Outcomes, one per requested device, in the order asked:

=========== ========================================================================================
status      meaning
=========== ========================================================================================
ok          ``value`` is what ``fn`` returned; ``node``/``host`` say where it ran
unavailable no live node carries ``edgekit/device=NAME`` (at the start, or for ``unavailable_after`` s)
failed      ``fn`` raised (no retry: it would raise again; ``error`` is what it raised), or its node
            died and the one retry found no other node with the label, or died too; ``reason`` says which
cancelled   Ctrl-C arrived first; the remote job was cancelled
=========== ========================================================================================

A path into the node's private folder in ``reason`` (or in the message of ``error``, when it is an
edgekit error) is written as the path of the file shipped from here, so a message about an
``--input`` file names the file the user gave.

Example::

    def where(files, greeting):
        return greeting + " from " + open(files["hello.txt"]).read()

    for o in run_on_devices("10.0.0.5:6379", ["raspberry-pi-5", "jetson-orin"], where,
                            {"hello.txt": "hello.txt"}, args=("hi",)):
        print(o.device, o.status, o.value or o.reason)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from edgekit.errors import EdgekitError, InputError, InvalidOptionError, UnknownRuntimeError
from edgekit.fleet.cluster import DEVICE_LABEL, HOST_LABEL, SLOT, connect, list_nodes, ray_module

__all__ = ["JOB_FOLDER_PREFIX", "STATUSES", "USAGE_ERRORS", "Outcome", "paths_here", "run_on_devices",
           "safe_name", "usage_error"]

#: every outcome status, in the order reports list them
STATUSES = ("ok", "unavailable", "failed", "cancelled")
#: how the name of a job's private folder on the node begins
JOB_FOLDER_PREFIX = "edgekit-fleet-"


@dataclass
class Outcome:
    """What happened to one device's job."""

    device: str
    status: str
    value: Any = None
    reason: str | None = None
    node: str | None = None
    host: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    #: what ``fn`` raised when it raised (status ``failed``), e.g. an ``InputError``; None otherwise
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the job ran and ``value`` holds its result."""
        return self.status == "ok"


def safe_name(name: str) -> str:
    """``name`` as a relative POSIX path that stays inside a folder, or :class:`InputError`.

    >>> safe_name("model/model.onnx")
    'model/model.onnx'
    >>> safe_name("../etc/passwd")
    Traceback (most recent call last):
    ...
    edgekit.errors.InputError: file name '../etc/passwd' would be written outside the job's folder; ...
    """
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts or ":" in name or str(path) in ("", "."):
        raise InputError(f"file name {name!r} would be written outside the job's folder; "
                         "expected a relative name such as 'model.onnx' or 'inputs/x.npy'")
    return str(path)


def _payload(files: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]] | None
             ) -> dict[str, Path]:
    if files is None:
        return {}
    pairs = files.items() if isinstance(files, Mapping) else [(Path(p).name, p) for p in files]
    out: dict[str, Path] = {}
    for name, path in pairs:
        key = safe_name(name)
        if key in out:
            raise InputError(f"two files would be shipped as {key!r}; name them apart with a mapping {{name: path}}")
        if not Path(path).is_file():
            raise InputError(f"file to ship {str(path)!r} does not exist or is not a file")
        out[key] = Path(path)
    return out


def _job(fn: Callable[..., Any], names: list[str], args: tuple[Any, ...], kwargs: dict[str, Any],
         *blobs: bytes) -> dict[str, Any]:
    """Runs on the node: write the files into a private folder, call ``fn``, remove the folder."""
    import ray

    ctx = ray.get_runtime_context()
    labels = ctx.get_node_labels()
    folder = Path(tempfile.mkdtemp(prefix=JOB_FOLDER_PREFIX))
    try:
        files: dict[str, Path] = {}
        for name, blob in zip(names, blobs):
            target = (folder / safe_name(name)).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise InputError(f"file name {name!r} would be written outside the job's folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            files[name] = target
        value = fn(files, *args, **kwargs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"value": value, "node": ctx.get_node_id(), "device": labels.get(DEVICE_LABEL),
            "host": labels.get(HOST_LABEL) or socket.gethostname()}


def _live_devices() -> dict[str, int]:
    """Device label -> number of live nodes with a slot."""
    count: dict[str, int] = {}
    for n in list_nodes():
        if n.device and n.slots:
            count[n.device] = count.get(n.device, 0) + 1
    return count


@dataclass
class _Job:
    device: str
    started: float
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    missing_since: float | None = None


def paths_here(shipped: Mapping[str, str | os.PathLike[str]]) -> Callable[[str], str]:
    """A function that rewrites, in a message from a node, each path into the job's private folder as the path here
    of the file shipped under that name.

    >>> here = paths_here({"inputs/0/x.npy": "frames/x.npy"})
    >>> here("cannot read /tmp/edgekit-fleet-k2j_9/inputs/0/x.npy: truncated")
    'cannot read frames/x.npy: truncated'
    """
    folder = r"[^\s'\"=(\[]*" + re.escape(JOB_FOLDER_PREFIX) + r"[^/\\\s'\"]*[/\\]"
    # the replacement as a template: its backslashes (a Windows path) escaped, so that re inserts them as they are
    subs = [(re.compile(folder + r"[/\\]".join(map(re.escape, name.split("/")))), os.fspath(path).replace("\\", "\\\\"))
            for name, path in sorted(shipped.items(), key=lambda item: -len(item[0]))]

    def here(text: str) -> str:
        for pattern, template in subs:
            text = pattern.sub(template, text)
        return text

    return here


def _raised(exc: BaseException, here: Callable[[str], str]) -> BaseException | None:
    """What ``fn`` raised on the node (Ray's ``cause``); an edgekit error with the paths in its message as here."""
    cause = getattr(exc, "cause", None)
    if not isinstance(cause, BaseException):
        return None
    text = str(cause)
    if isinstance(cause, EdgekitError) and here(text) != text:
        try:
            local = type(cause)(here(text))
        except Exception:  # noqa: BLE001 - a subclass with another signature keeps the node's wording
            return cause
        local.__dict__.update(cause.__dict__)
        return local
    return cause


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_on_devices(address: str, devices: Sequence[str], fn: Callable[..., Any],
                   payload_files: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]] | None = None,
                   *, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
                   unavailable_after: float = 10.0, retries: int = 1,
                   on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run ``fn(files, *args, **kwargs)`` once on a node of each device; see the module docstring.

    ``"all"`` in ``devices`` stands for every distinct device in the fleet (each device runs once). ``fn`` must be importable
    on the nodes (edgekit's own functions are) or a closure Ray can pickle by value. ``on_outcome`` is called with
    each outcome as it is known (progress; it may change the outcome, e.g. parse its value).
    """
    ray = ray_module()
    connect(address)
    shipped = _payload(payload_files)
    here = paths_here(shipped)
    live = _live_devices()
    wanted = list(dict.fromkeys(d for name in devices for d in (sorted(live) if name == "all" else [name])))
    names = list(shipped)
    blob_refs = [ray.put(path.read_bytes()) for path in shipped.values()]
    remote = ray.remote(_job)
    call_args, call_kwargs = tuple(args), dict(kwargs or {})

    def submit(job: _Job) -> Any:
        job.attempts += 1
        return remote.options(num_cpus=0, resources={SLOT: 1}, label_selector={DEVICE_LABEL: job.device},
                              max_retries=0, name=f"edgekit-fleet:{job.device}").remote(
            fn, names, call_args, call_kwargs, *blob_refs)

    outcomes: dict[str, Outcome] = {}
    pending: dict[Any, _Job] = {}

    def record(outcome: Outcome) -> None:
        outcomes[outcome.device] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    def finish(job: _Job, status: str, **kw: Any) -> None:
        record(Outcome(job.device, status, attempts=job.attempts, failures=list(job.failures),
                       seconds=time.monotonic() - job.started, **kw))

    for device in wanted:
        if device not in live:
            record(Outcome(device, "unavailable", reason=(
                f"no node in the fleet carries {DEVICE_LABEL}={device} (devices present: {sorted(live) or 'none'}); "
                f"run `edgekit agent --address {address} --device {device}` on one")))
            continue
        job = _Job(device, time.monotonic())
        pending[submit(job)] = job

    last_check = time.monotonic()
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.25)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # fn raised: the same inputs would raise again
                    finish(job, "failed", reason=here(_reason(exc)), error=_raised(exc, here))
                except ray.exceptions.TaskCancelledError as exc:
                    finish(job, "cancelled", reason=_reason(exc))
                except ray.exceptions.RayError as exc:  # the node or its worker died mid-job
                    job.failures.append(f"attempt {job.attempts}: {_reason(exc)}")
                    if job.attempts <= retries:
                        pending[submit(job)] = job
                    else:
                        finish(job, "failed", reason=f"the node died mid-job on every attempt ({'; '.join(job.failures)})")
                else:
                    finish(job, "ok", value=res["value"], node=res["node"], host=res["host"])
            now = time.monotonic()
            if pending and now - last_check >= 1.0:
                last_check = now
                live = _live_devices()
                for ref, job in list(pending.items()):
                    if job.device in live:
                        job.missing_since = None
                        continue
                    job.missing_since = job.missing_since or now
                    if now - job.missing_since >= unavailable_after:
                        ray.cancel(ref, force=True)
                        del pending[ref]
                        gone = (f"no live node carries {DEVICE_LABEL}={job.device} any more "
                                f"(waited {unavailable_after:g} s)")
                        if job.failures:
                            finish(job, "failed", reason=f"{'; '.join(job.failures)}; retry impossible: {gone}")
                        else:
                            finish(job, "unavailable", reason=gone)
    except KeyboardInterrupt:
        for ref, job in pending.items():
            ray.cancel(ref, force=True)
            finish(job, "cancelled", reason="interrupted (Ctrl-C) before the job finished")
    return [outcomes[d] for d in wanted]


#: errors in what the caller passed, not in a device: a node that raises one would raise it anywhere
USAGE_ERRORS = (InputError, InvalidOptionError, UnknownRuntimeError)


def usage_error(outcomes: Sequence[Any]) -> EdgekitError | None:
    """The error every device that ran failed with (``outcomes``: :class:`Outcome` s, or anything with their
    ``status`` and ``error``, e.g. a tune run's :class:`~edgekit.fleet.plans.DevicePlan` s), when it is one of
    :data:`USAGE_ERRORS` and the same on all
    (class and message): a mistake in what was passed, which a local run reports as a usage error. None when a
    device measured, failed otherwise, or no device ran (all unavailable or cancelled).

    >>> bad = InputError("input 'x': the given array has shape (1, 3), expected [1, 4]")
    >>> usage_error([Outcome("a", "failed", error=bad), Outcome("b", "unavailable")]) is bad
    True
    >>> usage_error([Outcome("a", "failed", error=bad), Outcome("b", "ok")]) is None
    True
    """
    ran = [o for o in outcomes if o.status in ("ok", "failed")]
    if not ran:
        return None
    first = ran[0].error
    for o in ran:
        if not (isinstance(o.error, USAGE_ERRORS) and type(o.error) is type(first) and str(o.error) == str(first)):
            return None
    return first if isinstance(first, EdgekitError) else None
