"""What calibration fits to: published figures and profile reports as :class:`Sample` s, each with its network's
cost table (:mod:`edgekit.emulation.costs`), and which figures a unit is calibrated to.

A figure becomes a sample on the structurally equivalent network edgekit builds without weights
(latency depends on topology and shapes, not on weight values): :func:`figure_samples`. A row of an
``edgekit profile --device`` report, or of a fleet report, becomes one on its own model:
:func:`report_samples`. One runtime per unit (:func:`select_runtime`: one chip's runtimes differ by up
to 3x) and, where a unit has enough, latencies over throughputs (:func:`select_metric`).

Example::

    kept, _ = select_metric(select_runtime(load_figures("coral-edgetpu", buildable=NETWORKS).figures, profile)[0])
    samples, skipped = figure_samples(kept, profile, builder)      # builder(network, size) -> ONNX path
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.emulation.costs import CostTable, cost_table
from edgekit.emulation.latency import estimate_plan
from edgekit.emulation.spec import accelerator_spec, load_spec

if TYPE_CHECKING:
    from edgekit.device_schema import DeviceProfile
    from edgekit.emulation.figures import Figure

__all__ = ["MIN_LATENCY_NETWORKS", "RUNTIMES", "Sample", "figure_samples", "report_samples", "select_metric",
           "select_runtime", "unit_table"]


@dataclass(frozen=True)
class Sample:
    """One published or measured latency of a network on a unit, with the network's cost table."""

    network: str
    precision: str
    metric: str  # "latency" or "throughput" (figures.METRICS)
    ms: float
    table: CostTable
    unit: str
    label: str  # runtime / source, for tables
    includes: str = ""  # "postprocess": the published timing includes host post-processing the graph lacks



def unit_table(path: Path, profile: DeviceProfile, unit: str, precision: str,
               input_shapes: Mapping[str, Sequence[int]] | None = None) -> CostTable:
    """The cost table of the ONNX graph at ``path`` on ``profile``'s ``unit`` computing in ``precision``.

    The graph alone is read (a model built without weights will do): every op the unit's spec takes goes to
    it; an int8 figure is taken as a fully quantized network (as the vendor compiled it).
    """
    import onnx

    from edgekit.emulation.graph import onnx_graph, partition
    from edgekit.models.flops import count_onnx

    prof_unit = profile.unit(unit)
    cpu_unit = next((u for u in profile.units if u.kind == "cpu"), prof_unit)
    spec = accelerator_spec(profile, unit)
    cpu_spec = accelerator_spec(profile, cpu_unit.name) if cpu_unit.kind == "cpu" else load_spec("cpu")
    graph = onnx_graph(onnx.load(str(path), load_external_data=False))
    plan = partition(graph, spec, accelerator_is_cpu=prof_unit.kind == "cpu")
    counted = count_onnx(path, input_shapes)
    flops: list[int | None] = [o.flops for o in counted.ops] if len(counted.ops) == len(graph.nodes) else [
        None] * len(graph.nodes)
    est = estimate_plan(plan, flops, prof_unit, cpu_unit, precision, spec, cpu_spec)
    return cost_table(plan, est, prof_unit, cpu_unit, spec)


def figure_samples(figures: Iterable[Figure], profile: DeviceProfile,
                   builder: Callable[[str, int], Path]) -> tuple[list[Sample], list[tuple[Figure, str]]]:
    """``(samples, skipped)``: a sample per figure whose precision the unit computes; ``builder(network, size)``
    returns the path of the network's ONNX graph (built without weights: latency depends on shapes only)."""
    samples: list[Sample] = []
    skipped: list[tuple[Figure, str]] = []
    tables: dict[tuple[str, int, str, str], CostTable] = {}
    for f in figures:
        peaks = profile.unit(f.unit).peak_gops
        if f.precision not in peaks:
            skipped.append((f, f"{f.where}: precision {f.precision!r} is not one the latency model computes on "
                               f"{f.unit} {sorted(peaks)}" + (" (8-bit weights with 16-bit activations)"
                                                            if f.precision == "w8a16" else "")))
            continue
        key = (f.network, f.size, f.unit, f.precision)
        if key not in tables:
            tables[key] = unit_table(builder(f.network, f.size), profile, f.unit, f.precision)
        samples.append(Sample(f.network, f.precision, f.metric, f.ms, tables[key], f.unit, f.runtime,
                              f.includes))
    return samples, skipped


def report_samples(report: Mapping[str, Any], profile: DeviceProfile,
                   search: Sequence[Path] = ()) -> tuple[list[Sample], list[str]]:
    """``(samples, skipped reasons)`` from an ``edgekit profile --device X --format json`` report of ``profile``,
    or from a fleet report (``edgekit profile --fleet``): its rows measured on device ``profile``.

    Each ``ok`` row gives its p50 for its model, re-opened from the report's path or, when that path is not here
    (a fleet node's private copy, a moved report), from a file of the same name and sha256 in ``search``;
    ValueError when the report was measured on another device (or a fleet report has no row of this one).
    """
    from edgekit.emulation.core import prepare
    from edgekit.models.formats import open_model

    prov = report.get("provenance") or {}
    rows = list(report.get("results", []))
    fleet = prov.get("fleet")
    if isinstance(fleet, dict):
        devices = sorted({str(r.get("device")) for r in rows if r.get("device")})
        rows = [r for r in rows if r.get("device") == profile.name]
        if not rows:
            raise ValueError(f"the fleet report has no row measured on device {profile.name!r} (its devices: "
                             f"{', '.join(devices) or 'none'}): calibrate one of those, or profile "
                             f"{profile.name} with `edgekit profile --fleet ... --device {profile.name}`.")
    elif prov.get("device") != profile.name:
        raise ValueError(f"the report was measured on device {prov.get('device')!r}, not {profile.name!r}: calibrate "
                         f"with a report of `edgekit profile --device {profile.name}` run on that device.")
    paths: dict[str, str] = {}
    for m in report.get("models", []):
        found = _model_file(m, search)
        if found:
            paths[str(m.get("name"))] = paths[str(m.get("path"))] = found
    samples: list[Sample] = []
    skipped: list[str] = []
    for row in rows:
        rid = row.get("id", "?")
        p50 = (row.get("latency") or {}).get("p50")
        if row.get("status") != "ok" or not p50:
            skipped.append(f"{rid}: status {row.get('status')!r}, no p50")
            continue
        target = str(row.get("target") or "")
        unit = target.rsplit(" on ", 1)[-1].split()[0] if " on " in target else ""
        path = paths.get(str(row.get("model")))
        if not unit or unit not in {u.name for u in profile.units}:
            skipped.append(f"{rid}: no unit of {profile.name} in its target {target!r}")
            continue
        if not path:
            skipped.append(f"{rid}: its model {row.get('model')!r} cannot be re-opened (not at the report's path, "
                           "and no file of that name and sha256 beside the report or here); run the calibration "
                           "where the model is")
            continue
        try:
            prec = row.get("precision")
            emu = prepare(open_model(path), profile, unit=unit,
                          precision=prec if prec in profile.unit(unit).peak_gops and prec != "int8" else None)
            table = cost_table(emu.plan, emu.estimate(), emu.unit, emu.cpu_unit, emu.spec)
        except Exception as exc:  # noqa: BLE001 - one row that cannot be emulated is skipped, with why
            skipped.append(f"{rid}: cannot emulate {Path(path).name} on {unit}: {type(exc).__name__}: {exc}")
            continue
        samples.append(Sample(Path(path).stem, emu.precision, "latency", float(p50), table, unit, rid))
    return samples, skipped


def _model_file(model: Mapping[str, Any], search: Sequence[Path]) -> str | None:
    """The report's model file: at its path, else a file of its name and sha256 in ``search``."""
    from edgekit.cache import file_sha256

    path, name, digest = model.get("path"), Path(str(model.get("name") or "")).name, model.get("sha256")
    if path and Path(path).is_file():
        return str(path)
    for folder in search:
        cand = folder / name
        if name and cand.is_file() and (not digest or file_sha256(cand) == digest):
            return str(cand)
    return None


#: a figure's runtime as published -> the edgekit runtime that runs it
RUNTIMES = {"onnx": "onnxruntime", "onnxruntime": "onnxruntime", "tflite": "litert", "tflite-edgetpu": "litert",
            "litert": "litert", "hailort": "hailort", "rknn": "rknn"}


def select_runtime(figures: Iterable[Figure], profile: DeviceProfile,
                   runtime: str | None = None) -> tuple[list[Figure], list[tuple[Figure, str]]]:
    """``(kept, skipped)``: the figures of one runtime per unit, the one edgekit's targets use on that unit.

    The same network, precision and chip differ by up to 3x between runtimes (Qualcomm AI Hub: SqueezeNet int8
    0.15 ms with TFLite, 0.45 ms with ONNX Runtime on the Snapdragon 8 Gen 3), which no one parameter set of the
    model can explain; so a unit is calibrated to the runtime its targets run (``runtime`` picks another).
    """
    figs = list(figures)
    chosen: dict[str, str] = {}
    for unit in dict.fromkeys(f.unit for f in figs):
        names = [f.runtime for f in figs if f.unit == unit]
        if runtime is not None:
            chosen[unit] = runtime
            continue
        order = [t.runtime for t in profile.targets if t.unit == unit]
        ranked = sorted(set(names), key=lambda r: (order.index(RUNTIMES[r]) if RUNTIMES.get(r) in order else
                                                   len(order), -names.count(r), r))
        chosen[unit] = ranked[0]
    kept = [f for f in figs if f.runtime == chosen[f.unit]]
    skipped = [(f, f"{f.where}: runtime {f.runtime!r}; {f.unit} is calibrated to {chosen[f.unit]!r} figures (the "
                   "runtime its targets run; one chip's runtimes differ by up to 3x)") for f in figs
               if f.runtime != chosen[f.unit]]
    return kept, skipped


#: a unit with latency figures for at least this many networks is calibrated on latencies alone: more networks
#: than a latency fit has parameters (compute efficiency per precision, depthwise, memory, dispatch, layout,
#: invoke, link), so the latencies determine them without the throughputs of a pipelined stream
MIN_LATENCY_NETWORKS = 8


def select_metric(figures: Iterable[Figure]) -> tuple[list[Figure], list[tuple[Figure, str]]]:
    """``(kept, skipped)``: a unit's throughput figures are left out when its latency figures cover
    :data:`MIN_LATENCY_NETWORKS` networks or more (the model predicts latency; a throughput is 1000 / FPS of a
    pipelined stream, another quantity, often from another compiler release); otherwise all are kept."""
    figs = list(figures)
    enough = {u for u in {f.unit for f in figs}
              if len({f.network for f in figs if f.unit == u and f.metric == "latency"}) >= MIN_LATENCY_NETWORKS}
    kept = [f for f in figs if f.unit not in enough or f.metric == "latency"]
    skipped = [(f, f"{f.where}: a throughput figure; {f.unit} has latency figures for {MIN_LATENCY_NETWORKS} "
                   "networks or more, the quantity the latency model predicts, and is calibrated to those")
               for f in figs if f.unit in enough and f.metric != "latency"]
    return kept, skipped


