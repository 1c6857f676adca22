"""Measure models on this device across runtimes: the engine behind ``edgekit profile``.

* :func:`profile` (``engine``) measures; it never prints and reports progress through a callback.
* :class:`ProfileReport` (``results``) holds what was measured; JSON schema in ``schema``.
* each runtime is measured in its own process (:mod:`edgekit.isolation`): a crash or a hang
  becomes an error row.
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
from edgekit.profiling.results import SCHEMA_VERSION, ProfileReport, RuntimeResult

__all__ = ["SCHEMA_VERSION", "ProfileReport", "RuntimeResult", "profile"]
