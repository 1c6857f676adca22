"""Accuracy parity: one runtime's outputs against the reference runtime's, on the same inputs.

Outputs are matched by name (by position when the names differ, as they may between a
model's ONNX and TFLite twins); a 4-D output laid out NHWC on one side and NCHW on the
other is transposed to match. Per output, in float64:

* ``max_abs``  = max |out - ref|
* ``max_rel``  = max |out - ref| / max(|ref|, tiny), tiny = 1e-6 x max |ref| (no division by ~0)
* ``scaled_err`` = max |out - ref| / max |ref|: the error relative to the output's own scale
* ``cosine``   = <out, ref> / (|out| |ref|) over the flattened tensors
* ``argmax_agreement``: for classifier-shaped outputs (``[N, C]``, C > 1), the fraction of
  rows whose argmax agrees.

The worst value over all outputs is reported. A result is within tolerance when, for every
output, ``max |out - ref| <= max(atol, rtol x max |ref|)``, all values are finite and the
argmax always agrees. An element-wise relative rule would flag every fp32 runtime on real
models (near-zero outputs differ by 1e-5 from summation order alone), so the rule is scaled
by the output's magnitude. Measured here (``scaled_err``, random inputs): fp32 runtimes
against the reference 1e-7..4e-5 (PP-OCR det, BlazeFace, the sample); OpenVINO in bf16
1.4e-3 (sample) to 0.44 (PP-OCR det). Defaults ``rtol=2e-4, atol=1e-6`` sit between the two;
pass looser ones for quantized models.

Example::

    p = compare_outputs({"probs": a}, {"probs": b}, reference="onnxruntime/onnx")
    p.max_abs, p.within_tolerance
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgekit.profiling.results import Parity
from edgekit.tensors import align_like
from edgekit.verification import TOLERANCES

__all__ = ["ATOL", "RTOL", "compare_outputs"]

ATOL, RTOL = TOLERANCES["fp32"]  # the same float32 tolerance as load(verify=True)


def _pairs(out: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if set(out) == set(ref):
        return [(k, out[k], ref[k]) for k in ref]
    return [(k, o, r) for (k, r), o in zip(ref.items(), out.values())]


def compare_outputs(out: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray], *, reference: str,
                    atol: float = ATOL, rtol: float = RTOL) -> Parity:
    """Compare ``out`` with ``ref`` (see the module docstring for the measures)."""
    def fail(note: str) -> Parity:
        return Parity(reference, None, None, None, None, None, False, atol, rtol, note=note)

    if not out or not ref:
        return fail("no outputs to compare")
    if len(out) != len(ref):
        return fail(f"{len(out)} outputs against the reference's {len(ref)}")
    max_abs = max_rel = scaled = 0.0
    cosine, agree = 1.0, None
    ok = True
    for name, o, r in _pairs(out, ref):
        a = align_like(np.asarray(o), np.asarray(r))
        if a is None:
            return fail(f"output {name!r} has shape {np.shape(o)}, the reference {np.shape(r)}")
        a64, r64 = a.astype(np.float64), np.asarray(r, dtype=np.float64)
        diff = np.abs(a64 - r64)
        if diff.size == 0:
            continue
        if not np.all(np.isfinite(a64)):
            ok = False
        worst, peak = float(np.nanmax(diff)), float(np.max(np.abs(r64)))
        max_abs = max(max_abs, worst)
        tiny = 1e-6 * peak or 1e-30
        max_rel = max(max_rel, float(np.nanmax(diff / np.maximum(np.abs(r64), tiny))))
        scaled = max(scaled, worst / peak if peak > 0 else (0.0 if worst == 0 else np.inf))
        ok = ok and worst <= max(atol, rtol * peak)
        na, nr = float(np.linalg.norm(a64)), float(np.linalg.norm(r64))
        if na > 0 and nr > 0:
            cosine = min(cosine, float(np.dot(a64.ravel(), r64.ravel()) / (na * nr)))
        elif na != nr:
            cosine = 0.0
        if r64.ndim == 2 and r64.shape[1] > 1:
            rows = float(np.mean(np.argmax(a64, axis=1) == np.argmax(r64, axis=1)))
            agree = rows if agree is None else min(agree, rows)
    within = ok and (agree is None or agree == 1.0)
    return Parity(reference, max_abs, max_rel, scaled, cosine, agree, within, atol, rtol)
