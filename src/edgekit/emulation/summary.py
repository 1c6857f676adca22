"""Predicted device latency beside measured host latency, for ``edgekit profile --emulate``.

Example::

    lines = predicted_vs_measured("det.onnx", "snapdragon-8-gen-3", report)
    print("\\n".join(lines))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["predicted_vs_measured"]


def predicted_vs_measured(model: str | os.PathLike[str], device: str, report: Any = None,
                          input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[str]:
    """Text lines: the latency model's prediction for ``device`` and each measured row of ``report``."""
    from edgekit.emulation.core import prepare
    from edgekit.errors import EdgekitError
    from edgekit.models.formats import open_model

    mf = open_model(model)
    lines = [f"device latency for {mf.path.name} on {device}:"]
    try:
        shapes = {k: tuple(v) for k, v in (input_shapes or {}).items()} or None
        emu = prepare(mf, device, input_shapes=shapes)
        est = emu.estimate()
        parts = ", ".join(f"{p.unit}{'' if p.on_accelerator else ' (cpu)'} {p.time_s * 1e3:.3f} ms"
                          for p in est.partitions)
        lines.append(f"  predicted (emulated {emu.target.describe()}, {emu.precision}): {est.total_ms:.3f} ms"
                     f"  [{parts}]")
    except EdgekitError as exc:
        lines.append(f"  predicted: not available ({exc})".replace("\n", " "))
    for r in getattr(report, "results", []) or []:
        single = len(getattr(report, "models", [])) <= 1
        if r.latency is not None and (single or r.model in (mf.path.name, str(mf.path))):
            lines.append(f"  measured on this host, {r.id}: p50 {r.latency.p50:.3f} ms")
    return lines
