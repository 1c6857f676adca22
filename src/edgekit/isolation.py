"""Run a function in its own Python process, so a crash or a hang cannot take the caller down.

Native runtimes segfault on some models (OpenCV DNN does) and some hang. :func:`run_isolated`
imports ``"package.module:function"`` in a fresh interpreter (``sys.executable``), calls it
with the pickled ``args``/``kwargs`` and returns its (pickled) result. What goes wrong comes
back as an :class:`IsolatedFailure` value instead of an exception:

* ``kind="crash"``   the process died: a signal (segfault -> ``returncode`` -11, ``signal`` SIGSEGV) or an exit;
* ``kind="timeout"`` it ran past ``timeout`` seconds; its whole process group was killed;
* ``kind="error"``   the function raised; ``error_type``/``message`` say what (edgekit errors keep their class name).

The child runs in its own session (Ctrl-C in a terminal reaches only the parent). When the
parent is interrupted while waiting, it forwards SIGINT to the child, gives it ``grace``
seconds to return what it has (a function may catch KeyboardInterrupt and return partial
results) and raises :class:`IsolatedInterrupted` carrying that result.

The function may report progress: if it takes a keyword ``report``, it receives a callable
that sends any JSON-serialisable value to ``on_message`` in the parent, while it runs.
Everything the child writes to stdout/stderr (runtimes are chatty) is kept, and its tail is
attached to failures. ``faulthandler`` is on in the child, so a crash shows its stack.

Every child (these workers, and :func:`python_command` for other helpers such as MNN's converter)
starts in Python's isolated mode (``-I``): the current folder is not on ``sys.path``, so a
``json.py`` or ``numpy.py`` lying beside a model cannot run, and ``PYTHON*`` variables are
ignored; the parent's import path is passed on explicitly, after the standard library and
site-packages. A child dies with its parent: ``PR_SET_PDEATHSIG`` on Linux, and everywhere a
thread that exits when the parent process is gone.

This is the one isolation mechanism of edgekit: profiling, load timeouts and probing use it.

Example::

    res = run_isolated("edgekit.profiling.worker:measure", (job,), timeout=60)
    if isinstance(res, IsolatedFailure):
        print(res.kind, res.describe())
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["IsolatedFailure", "IsolatedInterrupted", "python_command", "run_isolated"]

_TAIL = 2000


@dataclass(frozen=True)
class IsolatedFailure:
    """Why an isolated call returned no result."""

    kind: str  # "crash" | "timeout" | "error"
    message: str
    returncode: int | None = None
    signal: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    output_tail: str = ""
    elapsed_s: float = 0.0

    def describe(self) -> str:
        """One line for a report."""
        if self.kind == "error":
            return f"{self.error_type}: {self.message}"
        return self.message


class IsolatedInterrupted(KeyboardInterrupt):
    """The parent was interrupted; ``result`` is what the child returned in its grace period (or a failure)."""

    def __init__(self, result: Any) -> None:
        super().__init__("interrupted")
        self.result = result


#: run first in every child: import path from the parent (never the current folder), die with the parent
_PREAMBLE = r"""
import json as _json, os as _os, sys as _sys
def _edgekit_setup():
    import ctypes, signal, threading, time
    spec = _json.loads(_os.environ.pop("EDGEKIT_CHILD_SETUP"))
    _sys.path[:0] = [p for p in spec["first"] if p not in _sys.path]
    _sys.path.extend(p for p in spec["last"] if p not in _sys.path)
    parent = spec["parent"]
    if _sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    def watch():
        while True:
            if _os.getppid() != parent:
                _os._exit(70)
            time.sleep(0.5)
    if _os.getppid() != parent:  # the parent died before the signal was armed
        _os._exit(70)
    threading.Thread(target=watch, daemon=True, name="edgekit-parent-watch").start()
_edgekit_setup()
del _edgekit_setup
"""

_CHILD = r"""
import faulthandler, importlib, json, os, pickle, sys, traceback
faulthandler.enable()
job_path, out_path, fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(job_path, "rb") as f:
    target, args, kwargs = pickle.load(f)
pipe = os.fdopen(fd, "w", buffering=1)
def report(msg):
    try:
        pipe.write(json.dumps(msg, default=str) + "\n")
    except (OSError, ValueError):
        pass
try:
    mod, _, attr = target.partition(":")
    fn = getattr(importlib.import_module(mod), attr)
    import inspect
    if "report" in inspect.signature(fn).parameters:
        kwargs = dict(kwargs, report=report)
    result = ("ok", fn(*args, **kwargs))
except BaseException as exc:
    result = ("error", (type(exc).__name__, str(exc), traceback.format_exc()))
tmp = out_path + ".tmp"
with open(tmp, "wb") as f:
    pickle.dump(result, f)
os.replace(tmp, out_path)
"""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def python_command(code: str) -> tuple[list[str], dict[str, str]]:
    """``(argv, extra environment)`` that run ``code`` in a fresh interpreter as edgekit's workers run.

    Isolated mode (nothing imported from the current folder), the parent's import path after the
    standard library (edgekit's own folder first, so the child imports this edgekit), and the child
    dies with this process.

    >>> argv, env = python_command("print(1)")
    >>> argv[1], "EDGEKIT_CHILD_SETUP" in env
    ('-I', True)
    """
    here = os.path.abspath(os.getcwd())
    package_root = str(Path(__file__).resolve().parents[1])
    last = [os.path.abspath(p) for p in sys.path if p and os.path.abspath(p) != here and os.path.isdir(p)]
    setup = {"first": [package_root], "last": last, "parent": os.getpid()}
    # -u: output reaches the log even when native code then crashes (what it printed says why)
    return [sys.executable, "-I", "-u", "-c", _PREAMBLE + code], {"EDGEKIT_CHILD_SETUP": json.dumps(setup)}


def run_isolated(
    target: str,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    on_message: Callable[[Any], None] | None = None,
    grace: float = 5.0,
    env: dict[str, str] | None = None,
    strict_exit: bool = False,
    on_spawn: Callable[[int], None] | None = None,
) -> Any:
    """Call ``target`` (``"module:function"``) in a fresh process; return its result or an IsolatedFailure.

    ``timeout`` in seconds (``None``: no limit). ``env`` entries are added to the child's environment.
    ``strict_exit``: a child killed by a signal after it returned (native code that corrupted the heap
    often aborts only at interpreter exit) is a ``"crash"`` too, not its result. ``on_spawn`` is called
    with the child's pid (it leads its own process group) as soon as it exists, e.g. to kill it from
    another thread.
    Raises :class:`IsolatedInterrupted` when the caller is interrupted (Ctrl-C / SIGINT).
    """
    with tempfile.TemporaryDirectory(prefix="edgekit-iso-") as tmp:
        job, out, log = Path(tmp, "job.pkl"), Path(tmp, "result.pkl"), Path(tmp, "output.log")
        with open(job, "wb") as f:
            pickle.dump((target, tuple(args), dict(kwargs or {})), f)
        rfd, wfd = os.pipe()
        argv, setup = python_command(_CHILD)
        child_env = dict(os.environ, **(env or {}), **setup)
        t0 = time.perf_counter()
        with open(log, "wb") as logf:
            try:
                proc = subprocess.Popen(
                    [*argv, str(job), str(out), str(wfd)],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    pass_fds=(wfd,), start_new_session=True, env=child_env,
                )
            finally:
                os.close(wfd)
        if on_spawn is not None:
            on_spawn(proc.pid)
        reader = os.fdopen(rfd, "r")
        try:
            status = _wait(proc, reader, t0, timeout, on_message)
        except KeyboardInterrupt:
            _interrupt(proc, reader, grace, on_message)
            raise IsolatedInterrupted(_collect(proc, out, log, t0, "interrupted")) from None
        finally:
            reader.close()
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
        return _collect(proc, out, log, t0, status, strict_exit)


def _drain(reader: Any, on_message: Callable[[Any], None] | None, wait: float) -> bool:
    """Read available progress lines; False at end of stream."""
    ready, _, _ = select.select([reader], [], [], wait)
    if not ready:
        return True
    line = reader.readline()
    if not line:
        return False
    if on_message is not None:
        try:
            on_message(json.loads(line))
        except json.JSONDecodeError:
            pass
    return True


def _wait(proc: subprocess.Popen[bytes], reader: Any, t0: float, timeout: float | None,
          on_message: Callable[[Any], None] | None) -> str:
    open_ = True
    while True:
        left = None if timeout is None else timeout - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            _kill_group(proc)
            proc.wait()
            return "timeout"
        if open_:
            open_ = _drain(reader, on_message, 0.1 if left is None else min(0.1, left))
        else:
            try:
                proc.wait(0.1 if left is None else min(0.1, left))
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is not None:
            while open_ and _drain(reader, on_message, 0):  # messages written just before exit
                pass
            return "done"


def _interrupt(proc: subprocess.Popen[bytes], reader: Any, grace: float,
               on_message: Callable[[Any], None] | None) -> None:
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    end = time.perf_counter() + grace
    while proc.poll() is None and time.perf_counter() < end:
        try:
            if not _drain(reader, on_message, 0.05):
                proc.wait(max(0.0, min(0.05, end - time.perf_counter())))
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
    if proc.poll() is None:
        _kill_group(proc)
        proc.wait()


def _collect(proc: subprocess.Popen[bytes], out: Path, log: Path, t0: float, status: str,
             strict_exit: bool = False) -> Any:
    elapsed = time.perf_counter() - t0
    tail = _tail(log)
    if status == "timeout":
        return IsolatedFailure("timeout", f"no result within the {elapsed:.1f} s timeout; the process was killed",
                               output_tail=tail, elapsed_s=elapsed)
    code = proc.returncode
    if strict_exit and status == "done" and code is not None and code < 0 and out.exists():
        sig = _signal_name(code)
        return IsolatedFailure("crash", f"the process was killed by {sig} (return code {code}) after it returned",
                               returncode=code, signal=sig, output_tail=tail, elapsed_s=elapsed)
    if out.exists():
        try:
            with open(out, "rb") as f:
                kind, value = pickle.load(f)
        except Exception as exc:  # noqa: BLE001 - a result that does not unpickle is a failure of the child
            return IsolatedFailure("error", f"unreadable result: {exc}", error_type=type(exc).__name__,
                                   output_tail=tail, elapsed_s=elapsed)
        if kind == "ok":
            return value
        etype, msg, tb = value
        return IsolatedFailure("error", msg, returncode=proc.returncode, error_type=etype, traceback=tb,
                               output_tail=tail, elapsed_s=elapsed)
    code = proc.returncode
    if code is not None and code < 0:
        sig = _signal_name(code)
        what = f"the process was killed by {sig} (return code {code})"
        if sig == "SIGKILL" and status != "interrupted":
            what += (": probably out of memory (the kernel's out-of-memory killer sends SIGKILL); the model or its "
                     "inputs may need more memory than is free — try smaller inputs (--shape) or fewer threads")
        if status == "interrupted":
            what = f"interrupted: {what}"
        return IsolatedFailure("crash", what, returncode=code, signal=sig, output_tail=tail, elapsed_s=elapsed)
    return IsolatedFailure("crash", f"the process exited with code {code} without a result", returncode=code,
                           output_tail=tail, elapsed_s=elapsed)
