"""Measure models on this device across runtimes: the engine behind ``edgekit profile``.

* :func:`profile` (``engine``) measures; it never prints and reports progress through a callback.
* :class:`ProfileReport` (``results``) holds what was measured; JSON schema in ``schema``.
* :func:`run_isolated` (``isolate``) runs a function in its own process: a crash or a hang
  becomes an :class:`IsolatedFailure` value. Profiling, load timeouts and probing share it.
* ``stats`` (percentiles, CI, stopping rule), ``parity``, ``inputs``, ``ops``, ``compare``,
  ``render`` (table, CSV, Markdown) and ``html`` (self-contained report with SVG plots).

Importing this package imports no runtime library.

Example::

    from edgekit.profiling import profile
    report = profile("det.onnx", runtimes=["onnxruntime", "openvino"], duration=5)
    Path("run.json").write_text(report.to_json())
"""

from __future__ import annotations

from edgekit.profiling.engine import profile
from edgekit.profiling.isolate import IsolatedFailure, IsolatedInterrupted, run_isolated
from edgekit.profiling.results import SCHEMA_VERSION, ProfileReport, RuntimeResult

__all__ = [
    "SCHEMA_VERSION", "IsolatedFailure", "IsolatedInterrupted", "ProfileReport", "RuntimeResult", "profile",
    "run_isolated",
]
