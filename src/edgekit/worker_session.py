"""Predictors whose runtime lives in a worker process, so that a load or a run can be given a time limit.

``edgekit.load(path, timeout=s)`` returns an ordinary :class:`~edgekit.predictor.Predictor`
whose session is an :class:`IsolatedSession` (:func:`open_in_worker` makes the Decision): the
model is placed, loaded and run in a worker started by :func:`~edgekit.isolation.run_isolated`
(edgekit's one isolation mechanism, also used by ``edgekit profile`` and the crash probes). Inputs are checked in the caller as usual,
sent to the worker over a private, authenticated Unix socket, and the outputs come back.

* a load (worker start, runtime import, model load) or a run that takes longer than
  ``timeout`` seconds raises :class:`~edgekit.errors.InferenceTimeoutError`, and the
  worker is killed;
* a runtime that crashes (segfault, abort) raises :class:`~edgekit.errors.InferenceError`
  (for a run) or :class:`~edgekit.errors.UnsupportedModelError` (for the load) naming the signal;
* after a timeout or a crash, the next run starts a fresh worker (loading again within ``timeout``).

Without ``timeout`` nothing here is imported or run: the in-process path costs nothing
extra. With it, each run pays a round trip through the socket (pickled arrays: about
0.1 ms plus a copy of the inputs and outputs).

Example::

    with edgekit.load("det.onnx", timeout=5.0) as m:
        try:
            out = m(x)
        except edgekit.InferenceTimeoutError:
            ...                                    # the worker was killed; the next call restarts it
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import queue
import secrets
import signal
import threading
import time
from typing import Any

import numpy as np

from edgekit.errors import (
    EdgekitError,
    InferenceError,
    InferenceTimeoutError,
    InvalidOptionError,
    UnsupportedModelError,
)
from edgekit.models.formats import ModelFile, open_model
from edgekit.placement import Decision, place
from edgekit.runtime import Session

__all__ = ["IsolatedSession", "open_in_worker", "serve"]

#: keyword arguments of edgekit.load that placement takes itself; the rest are runtime options
_PLACE_KEYS = ("runtime", "device", "accelerator", "threads", "precision", "strict", "emulate", "profile_ops", "plan")


def _portable(exc: BaseException) -> EdgekitError:
    """An edgekit error that survives pickling (the class and message of ``exc``)."""
    if isinstance(exc, EdgekitError):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # noqa: BLE001 - an error with unpicklable attributes: keep class name and text
            pass
        return InferenceError(f"{type(exc).__name__}: {exc}")
    return InferenceError(f"{type(exc).__name__}: {exc}")


def serve(model: str, load_kwargs: dict[str, Any], authkey: bytes, report: Any = None) -> None:
    """Worker side (runs under ``run_isolated``): place and open ``model``, then answer run requests until closed."""
    from multiprocessing.connection import Listener

    with Listener(family="AF_UNIX", authkey=authkey) as listener:
        report({"address": listener.address, "pid": os.getpid()})
        orphan = threading.Timer(60, os._exit, (3,))  # the caller never connected (it died): do not linger
        orphan.daemon = True
        orphan.start()
        conn = listener.accept()
        orphan.cancel()
    with conn:
        try:
            kwargs = {k: v for k, v in load_kwargs.items() if k in _PLACE_KEYS}
            options = {k: v for k, v in load_kwargs.items() if k not in _PLACE_KEYS}
            decision = place(open_model(model), **kwargs, options=options)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, typed
            conn.send(("error", _portable(exc)))
            return
        session = decision.session
        try:
            conn.send(("ready", session.inputs, session.outputs, decision.placement))
            while True:
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):  # the caller went away
                    return
                if kind == "close":
                    return
                try:  # inputs were checked by the caller's Predictor
                    result: Any = ("ok", session.run(payload))
                except Exception as exc:  # noqa: BLE001
                    result = ("error", _portable(exc))
                conn.send(result)
        finally:
            session.close()


class IsolatedSession(Session):
    """A session whose runtime runs in a worker process; every load and run is bounded by ``timeout``."""

    thread_safe = False  # one connection: the Predictor serialises runs

    def __init__(self, model: ModelFile, load_kwargs: dict[str, Any], timeout: float) -> None:
        self._model, self._kwargs, self.timeout = model, load_kwargs, timeout
        self._conn: Any = None
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue[Any] = queue.Queue()
        self.restarts = -1
        self._start()

    # -- worker lifecycle -------------------------------------------------------------------
    def _supervise(self, authkey: bytes, events: queue.Queue[Any]) -> None:
        from edgekit.isolation import run_isolated

        try:
            result = run_isolated("edgekit.worker_session:serve", (str(self._model.path), self._kwargs, authkey),
                                  on_message=events.put, on_spawn=self._spawned)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting caller
            result = exc
        events.put(("exit", result))

    def _spawned(self, pid: int) -> None:
        self._pid = pid

    def _start(self) -> None:
        from multiprocessing.connection import Client

        self.restarts += 1
        self._pid = None
        authkey = secrets.token_bytes(32)
        self._events = events = queue.Queue[Any]()
        self._thread = threading.Thread(target=self._supervise, args=(authkey, events), daemon=True,
                                        name=f"edgekit-worker-{self._model.path.name}")
        deadline = time.monotonic() + self.timeout
        self._thread.start()
        try:
            msg = events.get(timeout=self.timeout)
        except queue.Empty:
            msg = None
        if not isinstance(msg, dict):
            self._stop(kill=True)
            if msg is None:
                raise self._timeout_error("starting the worker and loading the model")
            raise UnsupportedModelError(f"edgekit's worker process for {self._model.path.name} ended before it "
                                        f"was ready: {_describe(msg[1])}.")
        try:
            self._conn = Client(msg["address"], family="AF_UNIX", authkey=authkey)
            ready = self._conn.poll(max(0.0, deadline - time.monotonic()))
            reply = self._conn.recv() if ready else None
        except (EOFError, OSError):
            reply = ("crashed",)
        if reply is None:
            self._stop(kill=True)
            raise self._timeout_error("loading the model")
        if reply[0] != "ready":
            failure = self._stop(kill=reply[0] != "error")
            if reply[0] == "error":
                raise reply[1]
            raise UnsupportedModelError(
                f"{self._runtime_name()} crashed loading {self._model.path.name} in edgekit's worker process "
                f"({_describe(failure)}): the model is damaged or this runtime cannot handle it. Try another "
                "runtime, or re-export the model.")
        _, inputs, outputs, placement = reply
        self.placement = dataclasses.replace(
            placement, notes=placement.notes + (f"runs in a worker process; loads and runs time out after "
                                                f"{self.timeout:g} s",))
        Session.__init__(self, inputs, outputs, accelerator=placement.accelerator, precision=placement.precision,
                         options=dict(placement.options, timeout=self.timeout))

    def _stop(self, *, kill: bool) -> Any:
        """End the worker (politely unless ``kill``); return what ``run_isolated`` reported."""
        if self._conn is not None:
            if not kill:
                try:
                    self._conn.send(("close", None))
                except OSError:
                    pass
            self._conn.close()
            self._conn = None
        deadline = time.monotonic() + 5
        while kill and self._pid is None and self._thread is not None and self._thread.is_alive() \
                and time.monotonic() < deadline:  # a timeout before the process even started: wait for its pid
            time.sleep(0.005)
        if kill and self._pid is not None:
            try:
                os.killpg(self._pid, signal.SIGKILL)  # the worker leads its own process group
            except (ProcessLookupError, PermissionError):
                pass
        self._pid = None
        result = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            while True:
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
                if isinstance(event, tuple) and event[0] == "exit":
                    result = event[1]
            self._thread = None
        return result

    def _runtime_name(self) -> str:
        placement = getattr(self, "placement", None)
        return str(placement.runtime if placement else self._kwargs.get("runtime") or "the runtime")

    def _timeout_error(self, what: str) -> InferenceTimeoutError:
        return InferenceTimeoutError(
            f"{self._runtime_name()} took longer than the {self.timeout:g} s timeout {what} for "
            f"{self._model.path.name}; its worker process was killed. Pass a larger timeout= if the model is "
            "just slow, or check the model and inputs (the next call starts a fresh worker).")

    # -- Session ------------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._conn is None:
            self._start()
        try:
            self._conn.send(("run", feeds))
            done = self._conn.poll(self.timeout)
            reply = self._conn.recv() if done else None
        except KeyboardInterrupt:  # Ctrl-C: do not wait for a native run that cannot be interrupted
            self._stop(kill=True)
            raise
        except (EOFError, OSError):
            failure = self._stop(kill=True)
            raise InferenceError(
                f"{self._runtime_name()} crashed running {self._model.path.name} in edgekit's worker process "
                f"({_describe(failure)}). Inputs were "
                + ", ".join(f"{k}: {v.dtype}{tuple(v.shape)}" for k, v in feeds.items())
                + ". The next call starts a fresh worker.") from None
        if reply is None:
            self._stop(kill=True)
            raise self._timeout_error("running the model")
        if reply[0] == "error":
            raise reply[1]
        return reply[1]

    def close(self) -> None:
        self._stop(kill=False)


def _describe(failure: Any) -> str:
    describe = getattr(failure, "describe", None)
    return describe() if callable(describe) else str(failure or "no result")


def open_in_worker(mf: ModelFile, timeout: Any, load_kwargs: dict[str, Any]) -> Decision:
    """``edgekit.load(..., timeout=)``: a Decision whose session lives in a worker process.

    ``load_kwargs`` are ``edgekit.load``'s keyword arguments (placement's and the runtime's options).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise InvalidOptionError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    session = IsolatedSession(mf, load_kwargs, float(timeout))
    return Decision(session, session.placement)
