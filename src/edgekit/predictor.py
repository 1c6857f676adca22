"""The Predictor users hold, and :func:`load`, which makes one.

Thread safety: a session whose runtime allows concurrent runs (``Session.thread_safe``:
ONNX Runtime's ``InferenceSession.run``, OpenVINO with one infer request per thread)
is called directly; any other (LiteRT's Interpreter, OpenCV's Net, MNN's Module) is
serialised with a lock held by the Predictor.

``load(..., verify=True)`` checks once that the chosen runtime computes what the float32
reference computes (:mod:`edgekit.verification`).

Example::

    with edgekit.load("model.onnx", runtime="onnxruntime", threads=2) as m:
        out = m(np.zeros((1, 3, 224, 224), np.float32))   # {'logits': array(...)}
        print(m.inputs, m.placement)

    m = edgekit.load("model.onnx", plan="plan.toml")        # the configuration `edgekit tune` chose
    m = edgekit.load("model.onnx", runtime="mnn", verify=True)   # AccuracyError if MNN gets it wrong
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError, InferenceError, InvalidOptionError
from edgekit.models.formats import ModelFile, open_model
from edgekit.placement import Decision, Placement, place
from edgekit.plan import Plan
from edgekit.runtime import OpProfile, Session, default_threads
from edgekit.tensors import TensorSpec, bind_inputs

__all__ = ["Predictor", "load"]

class Predictor:
    """A loaded model: ``run`` (or call) it with inputs, get ``{output name: array}``."""

    def __init__(self, session: Session, placement: Placement, model: ModelFile) -> None:
        self._session = session
        self._placement = placement
        self._model = model
        self._inputs = list(session.inputs)
        self._output_names = [o.name for o in session.outputs]
        self._lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if session.thread_safe else threading.Lock()
        )
        self._closed = False

    @property
    def inputs(self) -> list[TensorSpec]:
        """The model's inputs, in order."""
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        """The model's outputs, in order."""
        return list(self._session.outputs)

    @property
    def placement(self) -> Placement:
        """Runtime, version, accelerator actually used, precision, options, and the decision trail."""
        return self._placement

    @property
    def model(self) -> ModelFile:
        """The model file this predictor runs."""
        return self._model

    @property
    def session(self) -> Session:
        """The adapter's session."""
        return self._session

    def run(self, inputs: Any = None, /, **named: Any) -> dict[str, np.ndarray]:
        """Run once. ``inputs``: dict by name, list/tuple in order, or one array; or keyword arguments."""
        if self._closed:
            raise InferenceError(f"this Predictor for {self._model.path.name} is closed; load the model again.")
        if named:
            if inputs is not None:
                raise InvalidOptionError("pass inputs either positionally or as keywords, not both.")
            inputs = named
        feeds = bind_inputs(self._inputs, inputs)
        with self._lock:
            try:
                results = self._session.run(feeds)
            except EdgekitError:
                raise
            except Exception as exc:
                raise InferenceError(
                    f"{self._placement.runtime} failed running {self._model.path.name}: {type(exc).__name__}: {exc}. "
                    f"Inputs were " + ", ".join(f"{k}: {v.dtype}{tuple(v.shape)}" for k, v in feeds.items()) + "."
                ) from exc
        return dict(zip(self._output_names, results))

    __call__ = run

    def estimate(self) -> Any:
        """Predicted latency on the real device (emulated placements only): total, per partition, per op.

        >>> edgekit.load("det.onnx", device="coral-edgetpu", emulate=True, calibration=xs).estimate().total_ms  # doctest: +SKIP
        """
        estimate = self._session.estimate()
        if estimate is None:
            raise InvalidOptionError(
                f"estimate() predicts device latency for emulated placements only, and {self._model.path.name} runs "
                f"on {self._placement}. Load it with emulate=True and a device, e.g. edgekit.load(path, "
                "device='coral-edgetpu', emulate=True), or measure this host with `edgekit profile`.")
        return estimate

    def op_profile(self, skip: int = 0) -> OpProfile:
        """Per-operator times of the runs so far, leaving out the first ``skip`` (load with ``profile_ops=True``).

        >>> m = edgekit.load("det.onnx", profile_ops=True); m(x); m(x)       # doctest: +SKIP
        >>> max(m.op_profile(skip=1).ops, key=lambda op: op.time_us).type    # doctest: +SKIP
        'Conv'
        """
        profile = self._session.op_profile(skip)
        if profile is None:
            raise InvalidOptionError(
                f"no operator times for {self._model.path.name} on {self._placement.runtime}: load it with "
                "profile_ops=True, on a runtime that can time operators (onnxruntime, openvino, opencv).")
        return profile

    def close(self) -> None:
        """Release the runtime's resources; further runs raise."""
        if not self._closed:
            self._closed = True
            with self._lock:
                self._session.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(str(s) for s in self._inputs)
        return f"<Predictor {self._model.path.name} ({ins}) on {self._placement}>"


def load(
    model: str | os.PathLike[str] | ModelFile,
    *,
    runtime: str | None = None,
    device: str | os.PathLike[str] | None = None,
    accelerator: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
    strict: bool = False,
    emulate: bool = False,
    timeout: float | None = None,
    profile_ops: bool = False,
    plan: Plan | str | os.PathLike[str] | None = None,
    verify: bool = False,
    **options: Any,
) -> Predictor:
    """Load ``model`` into a runtime and return a :class:`Predictor`.

    ``runtime``: a registered name (``edgekit runtimes`` lists them); without one, the first
    installed runtime that reads the format is used. ``device``: a profile name, a path to a
    profile ``.toml``, or ``"auto"``; its targets choose runtime, accelerator and precision
    (``"auto"`` first looks for a plan ``edgekit tune`` cached for this model and device, used
    when runtime, accelerator, precision, threads and options are left to edgekit).
    ``plan``: a deployment plan (file or :class:`~edgekit.plan.Plan`): its chosen configuration
    runs when the plan applies here; otherwise a warning says why and placement falls back
    (``strict=True``: PlanError). ``Placement.explain()`` says which plan was used, or why none.
    ``strict=True`` also refuses every fallback: to a later device target, and inside a runtime that would
    switch to the CPU on its own (OpenCV's opencl on a device it will not use).
    ``threads`` defaults to the number of cores. Remaining keyword ``options`` go to the runtime.
    ``emulate=True`` (or ``runtime="emulated"``) runs the model as ``device``'s accelerator would, on this
    CPU (see :mod:`edgekit.runtimes.emulated`); ``Predictor.estimate()`` then predicts device latency.
    ``timeout`` (seconds) loads and runs the model in a worker process (:mod:`edgekit.worker_session`): a load
    or run that takes longer raises InferenceTimeoutError, a runtime crash a typed error; without it, in-process.
    ``profile_ops=True`` turns on the runtime's per-operator timer (``Predictor.op_profile()``).
    ``verify=True`` compares the placed runtime with the float32 reference once (see the module docstring)
    and raises AccuracyError on a mismatch.

    Placement decides (:func:`edgekit.placement.place`); this is the one place that builds a Predictor.

    >>> m = load("model.tflite", runtime="openvino", precision="fp32")   # doctest: +SKIP
    >>> m = load("model.onnx", plan="plan.toml", verify=True)            # doctest: +SKIP
    """
    mf = model if isinstance(model, ModelFile) else open_model(model)
    if threads is not None:
        default_threads(threads)  # a bad value fails here, before any worker or runtime starts
    if timeout is not None:
        from edgekit.worker_session import open_in_worker

        decision: Decision = open_in_worker(mf, timeout, dict(
            options, runtime=runtime, device=device, accelerator=accelerator, threads=threads, precision=precision,
            strict=strict, emulate=emulate, profile_ops=profile_ops, plan=plan))
    else:
        decision = place(mf, runtime=runtime, device=device, accelerator=accelerator, threads=threads,
                         precision=precision, strict=strict, emulate=emulate, profile_ops=profile_ops, options=options,
                         plan=plan)
    placement = decision.placement
    if verify:
        from edgekit.verification import verify_placement

        try:
            placement = dataclasses.replace(placement, notes=placement.notes + verify_placement(decision, mf))
        except BaseException:
            decision.session.close()
            raise
    return Predictor(decision.session, placement, mf)
