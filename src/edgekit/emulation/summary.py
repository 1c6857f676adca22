"""Predicted device latency beside measured host latency, for ``edgekit profile --emulate``.

The prediction is for the target :func:`edgekit.emulation.core.prepare` picks — the one
``edgekit.load(model, device=..., emulate=True)`` emulates, whose runtime reads the model (the
targets ``edgekit check --device`` does not find unsupported) — and the lines say which target
that is and why each earlier one was passed over. A dynamic ONNX input takes the shape the
profile measured (``report``), so a static-shape accelerator gets a prediction.

Example::

    lines = predicted_vs_measured("det.onnx", "snapdragon-8-gen-3", report)
    print("\\n".join(lines))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["measured_shapes", "predicted_vs_measured"]


def measured_shapes(model: Any, report: Any) -> dict[str, tuple[int, ...]]:
    """The shapes ``report`` fed to the dynamic inputs of ``model`` (an ONNX :class:`ModelFile`); {} otherwise."""
    from edgekit.models.model_io import model_io

    io = model_io(model) if model.format == "onnx" else None
    dynamic = {s.name for s in (io[0] if io else []) if s.is_dynamic}
    infos = [m for m in getattr(report, "models", None) or [] if m.path == str(model.path) or m.name == model.path.name]
    return {i["name"]: tuple(int(d) for d in i["shape"]) for m in infos[:1] for i in m.inputs if i["name"] in dynamic}


def predicted_vs_measured(model: str | os.PathLike[str], device: str, report: Any = None,
                          input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[str]:
    """Text lines: the latency model's prediction for ``device`` (which target, why the earlier ones were passed
    over, for which input shapes) and each measured row of ``report``.

    ``input_shapes`` fixes dynamic ONNX inputs; by default those of ``report``'s inputs (:func:`measured_shapes`).
    """
    from edgekit.emulation.core import prepare
    from edgekit.errors import EdgekitError, option
    from edgekit.models.formats import open_model

    mf = open_model(model)
    lines = [f"device latency for {mf.path.name} on {device}:"]
    shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    from_report = not shapes and report is not None
    if from_report:
        shapes = measured_shapes(mf, report)
    try:
        emu = prepare(mf, device, input_shapes=shapes or None)
        est = emu.estimate()
        parts = ", ".join(f"{p.unit}{'' if p.on_accelerator else ' (cpu)'} {p.time_s * 1e3:.3f} ms"
                          for p in est.partitions)
        lines.append(f"  predicted (emulated {emu.target.describe()}, {emu.precision}): {est.total_ms:.3f} ms"
                     f"  [{parts}]")
        lines.extend(f"  passed over {target}: {reason}" for target, reason in emu.trail)
        if emu.converted:
            lines.append(f"  note: {emu.converted}")
        if shapes:
            given = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in shapes.items())
            how = "as measured on this host" if from_report else "as given"
            lines.append(f"  for input shape(s) {given} ({how}; {option('input_shapes')} to change)")
    except EdgekitError as exc:
        lines.append(f"  predicted: not available ({exc})".replace("\n", " "))
    for r in getattr(report, "results", []) or []:
        single = len(getattr(report, "models", [])) <= 1
        if r.latency is not None and (single or r.model in (mf.path.name, str(mf.path))):
            lines.append(f"  measured on this host, {r.id}: p50 {r.latency.p50:.3f} ms")
    return lines
