"""Write a calibration: the spec table that extends a family's spec with fitted values and their provenance.

:func:`spec_table` turns a :class:`~edgekit.emulation.calibrate.Fit` (and its cross-validation) into
the table of ``devices/emulation/calibrated/<device>-<unit>.toml``: ``extends``, the fitted
``[latency]`` values with their sources, and the provenance in ``[calibration]``;
:func:`edgekit.tomlfile.toml_text` writes it.

Example::

    table = spec_table("edgetpu", fit(samples, base), cross_validate(samples, base),
                       data="coral-edgetpu.toml (11 published figures)", runtime="tflite-edgetpu",
                       date="2026-11-29", version=edgekit.__version__)
    Path("coral-edgetpu-edgetpu.toml").write_text(toml_text(table, header="fitted by edgekit"))
"""

from __future__ import annotations

from typing import Any

from edgekit.emulation.calibrate import CrossValidation, Fit

__all__ = ["spec_table"]

def spec_table(family: str, fit_: Fit, cv: CrossValidation | None, *, data: str, runtime: str, date: str,
               version: str) -> dict[str, Any]:
    """A spec table that ``extends`` spec ``family`` with the fitted values and their provenance ([calibration])."""
    p = fit_.params
    lat: dict[str, Any] = {"compute_efficiency_by_precision": {k: round(v, 4) for k, v in
                                                               p.compute_efficiency_by_precision.items()}}
    if p.op_efficiency:
        lat["op_efficiency"] = {k: round(v, 4) for k, v in p.op_efficiency.items()}
    for name in ("memory_efficiency", "dispatch_us", "layout_us", "invoke_us", "link_gb_s", "onchip_mb"):
        if name in fit_.fitted:
            lat[name] = round(float(getattr(p, name)), 4)
    lat["sources"] = dict.fromkeys(lat, f"fitted by `edgekit devices calibrate` to {data} (see [calibration])")
    cal: dict[str, Any] = {
        "data": data, "runtime": runtime, "figures": len(fit_.ratios), "fitted": list(fit_.fitted),
        "fit_median_error": round(fit_.median_error, 4), "fit_worst_error": round(fit_.worst_error, 4),
        "date": date, "edgekit": version,
        "method": "robust (soft-L1) least squares on log(predicted/measured), bounded: effective peak <= datasheet "
                  "peak, an op class's efficiency <= the dense one, bandwidth and link <= the datasheet's, costs >= 0, "
                  "on-chip activation memory <= the datasheet's (a grid); weak pull towards the hand-set values"}
    if "throughput_ratio" in fit_.fitted:
        cal["throughput_ratio"] = round(fit_.throughput_ratio, 4)
    if "postprocess_ms" in fit_.fitted:
        cal["postprocess_ms"] = round(fit_.postprocess_ms, 4)
    if cv is not None and len({s.network for s in cv.samples}) > 1:
        summ = cv.summary()
        cal.update({"loo_median_error": round(summ["after_median"], 4), "loo_worst_error": round(summ["after_worst"], 4),
                    "before_median_error": round(summ["before_median"], 4),
                    "before_worst_error": round(summ["before_worst"], 4),
                    "networks": sorted({s.network for s in cv.samples})})
    return {"extends": family, "latency": lat, "calibration": cal}
