"""Where a model runs: the chosen runtime, accelerator, precision and options, and why.

Placement decides; :func:`edgekit.load` builds. :func:`place` returns a :class:`Decision` —
the opened session and the :class:`Placement` that explains it — by one of four strategies:

* a deployment plan (``plan=``, :mod:`edgekit.plan`): its chosen configuration, when the plan
  applies here (:func:`place_by_plan`); ``device="auto"`` uses a cached plan for the model and
  the detected device when one applies and the caller left runtime, accelerator, precision,
  threads and options to edgekit. A plan that does not apply is never used silently: a warning
  names every reason, ``Placement.trail`` keeps them, and placement falls back to what it does
  without a plan (``strict=True`` raises :class:`~edgekit.errors.PlanError` instead);
* no device profile: :func:`choose_runtime` takes the named runtime or the first installed
  one (catalog ``priority``: onnxruntime, litert, openvino, mnn, opencv) that reads the
  model's format natively, then one that converts it;
* a device profile: its targets are tried in order and each rejection is kept in
  ``Placement.trail`` (:func:`place_on_device`);
* emulation: the profile's accelerator is emulated on this CPU (:func:`place_emulated`).

Example::

    decision = place(open_model("face.tflite"), device="raspberry-pi-5")
    print(decision.placement.explain())
    decision.session.close()

    decision = place(open_model("det.onnx"), plan="plan.toml")
    decision.placement.plan       # 'plan.toml (tuned 2026-11-29 on Intel Xeon, p50 1.23 ms)'
"""

from edgekit.placement.decision import Decision, Placement, Rejection
from edgekit.placement.device import place_emulated, place_on_device
from edgekit.placement.place import choose_runtime, place, place_by_plan

__all__ = ["Decision", "Placement", "Rejection", "choose_runtime", "place", "place_by_plan", "place_emulated",
           "place_on_device"]
