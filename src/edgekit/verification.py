"""``load(..., verify=True)``: the placed runtime against the float32 reference, once per configuration.

The reference is ONNX Runtime for ONNX models and LiteRT for TFLite ones
(:data:`REFERENCE_RUNTIMES`); both run the same deterministic synthetic inputs
(:func:`synthetic_inputs`, seed 0), and every output must satisfy
``max |out - ref| <= max(atol, rtol x max |ref|)`` with the placed precision's
:data:`TOLERANCES` (an int8-quantized model's: int8; integer outputs may also differ by one
step of rounding). A pass is remembered in ``$EDGEKIT_CACHE/verified/`` under a hash of the
model's sha256, the runtime, its version, the accelerator and the precision (and the
reference's version and the tolerances), so it costs once; a mismatch raises
:class:`~edgekit.errors.AccuracyError` naming each output and its numbers.

Example::

    m = edgekit.load("model.onnx", runtime="mnn", verify=True)   # AccuracyError if MNN gets it wrong
    print(m.placement.notes)                                     # ('verified against onnxruntime ...',)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.cache import atomic_path, cache_dir
from edgekit.catalog import REFERENCE_RUNTIMES
from edgekit.errors import AccuracyError, EdgekitError, InferenceError, InvalidOptionError
from edgekit.models.formats import ModelFile
from edgekit.placement import Decision
from edgekit.registry import get_runtime
from edgekit.runtime import Session
from edgekit.tensors import TensorSpec, align_like, bind_inputs, concrete_dims, random_array

__all__ = ["REFERENCE_RUNTIMES", "TOLERANCES", "synthetic_inputs", "verify_placement"]


#: (atol, rtol) per placed precision; fp32 is also ``edgekit profile``'s parity tolerance (profiling.parity).
#: Reduced precisions are looser: verify catches wrong outputs, ``edgekit tune`` measures precision loss.
TOLERANCES: dict[str, tuple[float, float]] = {"fp32": (1e-6, 2e-4), "fp16": (1e-3, 1e-2), "bf16": (1e-2, 5e-2),
                                              "int8": (1e-2, 5e-2)}

_SEED = 0
_VERIFY_FORMAT = 2  # bump when what a cached verdict means changes


def synthetic_inputs(specs: Sequence[TensorSpec], seed: int = _SEED) -> dict[str, np.ndarray]:
    """Deterministic inputs for ``specs``: the same arrays for the same specs and seed, on every host.

    Floats uniform in [-1, 1); quantized integers over the dtype's whole range; other integers in
    [0, 10); bools a fair coin. Dynamic dimensions are 1, except the height and width of an
    image-like rank-4 input (channels 1, 3 or 4 first or last), which are 64.

    >>> x = synthetic_inputs([TensorSpec("x", (None, 3, None, None), np.dtype("float32"))])["x"]
    >>> x.shape, x.dtype, bool((x >= -1).all() and (x < 1).all())
    ((1, 3, 64, 64), dtype('float32'), True)
    """
    rng = np.random.default_rng(seed)
    return {spec.name: random_array(spec, rng, concrete_dims(spec, 64)) for spec in specs}


def _run(session: Session, feeds: dict[str, np.ndarray], who: str) -> dict[str, np.ndarray]:
    try:
        results = session.run(bind_inputs(session.inputs, feeds))
    except EdgekitError:
        raise
    except Exception as exc:
        raise InferenceError(f"{who} failed on the synthetic inputs of verify=True: {type(exc).__name__}: {exc}") from exc
    return {o.name: np.asarray(r) for o, r in zip(session.outputs, results)}


def _compare(out: dict[str, np.ndarray], ref: dict[str, np.ndarray], tol: tuple[float, float]) -> list[dict[str, Any]]:
    """One row per output: name, max_abs, rel (max_abs / peak of the reference), tolerance, ok, and why not."""
    pairs = ([(k, out[k], ref[k]) for k in ref] if set(out) == set(ref)
             else [(k, o, r) for (k, r), o in zip(ref.items(), out.values())])  # names differ: by position
    rows = []
    if len(out) != len(ref):
        rows.append({"output": "(all)", "ok": False, "why": f"{len(out)} outputs, the reference has {len(ref)}"})
    for name, o, r in pairs:
        a = align_like(o, r)
        if a is None:
            rows.append({"output": name, "ok": False, "why": f"shape {o.shape}, the reference's {r.shape}"})
            continue
        a64, r64 = a.astype(np.float64), r.astype(np.float64)
        peak = float(np.max(np.abs(r64))) if r64.size else 0.0
        worst = float(np.max(np.abs(a64 - r64))) if r64.size else 0.0
        limit = max(tol[0], tol[1] * peak, 1.0 if r.dtype.kind in "iu" else 0.0)  # integers: one step of rounding
        finite = bool(np.all(np.isfinite(a64)))
        rows.append({"output": name, "max_abs": worst, "rel": worst / peak if peak > 0 else float(worst > 0),
                     "peak": peak, "tolerance": limit, "ok": finite and worst <= limit, "integer": r.dtype.kind in "iu",
                     "why": "" if finite else "non-finite values"})
    return rows


def _verdict_path(key: dict[str, Any]) -> Path | None:
    """The verdict file for ``key`` in the (private) cache folder; None when the cache cannot be trusted or made."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    try:
        return cache_dir("verified") / f"{digest[:40]}.json"
    except InvalidOptionError:
        return None  # no verdict is trusted or kept: the comparison runs every time


def _cached_pass(path: Path, key: dict[str, Any]) -> bool:
    """True when ``path`` is a pass this code wrote for exactly ``key`` (a plain, small JSON file)."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 16:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("verdict") == "pass" and data.get("key") == key


def verify_placement(decision: Decision, model: ModelFile) -> tuple[str, ...]:
    """Compare the placed session with the float32 reference (see the module docstring); notes for the Placement.

    Raises :class:`~edgekit.errors.AccuracyError` when an output is out of tolerance.
    """
    p = decision.placement
    ref_name = REFERENCE_RUNTIMES.get(model.format)
    if ref_name is None:
        return (f"verify: skipped: edgekit has no float32 reference runtime for {model.format} models (it has one for "
                f"{sorted(REFERENCE_RUNTIMES)})",)
    if p.runtime == ref_name and p.accelerator == "cpu" and p.precision == "fp32" and not p.emulated:
        return (f"verify: skipped: {ref_name} on cpu in fp32 is itself the float32 reference",)
    ref = get_runtime(ref_name)
    if not ref.is_installed():
        return (f"verify: skipped: the reference runtime {ref_name} is not installed ({ref.info.install_hint})",)
    from edgekit.models.precision import model_precision

    computed = "int8" if model_precision(model) == "int8" else p.precision  # a quantized model computes in int8
    tol = TOLERANCES.get(computed, TOLERANCES["fp32"])
    key = {"format": _VERIFY_FORMAT, "model_sha256": model.sha256(), "runtime": p.runtime, "version": p.version,
           "accelerator": p.accelerator, "precision": p.precision, "emulated": p.emulated, "reference": ref_name,
           "reference_version": ref.version(), "atol": tol[0], "rtol": tol[1], "seed": _SEED}
    path = _verdict_path(key)
    if path is not None and _cached_pass(path, key):
        return (f"verify: passed against {ref_name} {key['reference_version']} earlier (cached verdict {path.name})",)
    feeds = synthetic_inputs(decision.session.inputs)
    got = _run(decision.session, feeds, f"{p.runtime} (verify=True)")
    ref_session = ref.open(model)
    try:
        ref_feeds = feeds if {s.name for s in ref_session.inputs} == set(feeds) else dict(
            zip([s.name for s in ref_session.inputs], feeds.values()))  # names differ (a converted model): by position
        want = _run(ref_session, ref_feeds, f"the reference {ref_name}")
    finally:
        ref_session.close()
    rows = _compare(got, want, tol)
    where = f"{p.runtime} {p.version or ''} on {p.accelerator} ({p.precision})"
    if not all(r["ok"] for r in rows):
        lines = [f"{where} disagrees with the float32 reference {ref_name} {key['reference_version']} on "
                 f"{model.path.name} (synthetic inputs, seed {_SEED}):"]
        for r in rows:
            if "max_abs" not in r:
                lines.append(f"  output {r['output']!r}: {r['why']} -- MISMATCH")
                continue
            lines.append(f"  output {r['output']!r}: max abs error {r['max_abs']:.3g}, relative error {r['rel']:.3g} "
                         f"(of the reference's peak {r['peak']:.3g}), tolerance {r['tolerance']:.3g} "
                         f"(atol {tol[0]:g} or rtol {tol[1]:g} x peak" + (" or 1 step: integer output)" if r["integer"] else ")")
                         + (f", {r['why']}" if r["why"] else "") + (" -- ok" if r["ok"] else " -- MISMATCH"))
        lines.append("Expected every output within tolerance. Fix: choose another runtime or precision (e.g. "
                     f"edgekit.load(model, runtime={ref_name!r}) or precision='fp32'), or run `edgekit tune "
                     f"{model.path.name}` to find the fastest configuration whose outputs match.")
        raise AccuracyError("\n".join(lines))
    worst = max((r.get("max_abs", 0.0) for r in rows), default=0.0)
    if path is not None:
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"verdict": "pass", "key": key, "outputs": rows}, indent=1), encoding="utf-8")
        except OSError:
            pass  # an unwritable cache costs another comparison next time, nothing else
    return (f"verify: outputs match {ref_name} {key['reference_version']} (float32 reference) within tolerance, "
            f"max abs error {worst:.3g}",)
