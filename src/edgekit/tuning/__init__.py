"""``edgekit tune``: find the fastest configuration that is still correct on this device, and prove it.

* :func:`tune` (``tuner``): the whole run — inputs, search space, reference, search, report, plan;
* ``space``: the candidate configurations (runtime x accelerator x precision x threads x knobs);
* ``search``: screening, successive halving and confirmation, each candidate in an isolated worker;
* ``accuracy``: the gate against the float32 reference; ``task``: its task-aware half for bundles
  (results through the bundle's post-processing); ``store``: measurements kept across runs;
* ``report``: :class:`TuneReport` as JSON, a terminal table and HTML with a latency-vs-error plot.

Importing this package imports no runtime library.

Example::

    from edgekit.tuning import tune
    report = tune("det.onnx", budget=60, output="det.plan.toml")
    print(report.chosen.runtime, report.speedup_vs_default)
"""

from __future__ import annotations

from edgekit.tuning.report import TuneReport
from edgekit.tuning.tuner import tune

__all__ = ["TuneReport", "tune"]
