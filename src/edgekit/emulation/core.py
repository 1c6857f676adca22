"""Prepare a model for emulation on a device profile: target, partition, numerics, latency model.

:func:`prepare` picks the profile's target to emulate, checks the model against its
constraints (precision, static shapes, size), partitions the graph with the unit's operator
list, rewrites the model so a reference runtime computes with the device's numerics, and
returns an :class:`Emulation` that :mod:`edgekit.runtimes.emulated` runs and that predicts
latency (:meth:`Emulation.estimate`).

Target choice: with ``accelerator=``/``unit=``, the matching targets; otherwise the profile's
accelerator targets (units that are not CPUs), or all its targets when it has no accelerator.
Of those, in order, the first whose runtime reads the model's format (as placement and
``edgekit check --device`` decide) and whose precision rules accept the model (an int8-only
target accepts a float model only with ``calibration=``). When no target reads the format as
it is (an ONNX model on coral-edgetpu, whose only accelerator target is LiteRT), the first
whose precision rules accept it is emulated as if the model were converted, and
``Emulation.converted`` says so. Every target passed over is kept in the trail with its
reason; ``strict=True`` raises at the first precision rejection (a target whose runtime
cannot read the format is no fallback) and on any op left to the CPU.

Example::

    emu = prepare(open_model("det.onnx"), "snapdragon-8-gen-3", input_shapes={"x": (1, 3, 640, 640)})
    emu.target.describe(), emu.precision, emu.estimate().total_ms
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.cache import cache_dir, cached_file
from edgekit.catalog import runtime_info
from edgekit.device_schema import DeviceProfile, Target, Unit
from edgekit.emulation.graph import Graph, Plan, onnx_graph, partition, tflite_graph
from edgekit.emulation.latency import Estimate, calibration_notes, estimate_plan
from edgekit.emulation.spec import AcceleratorSpec, accelerator_spec, load_spec
from edgekit.errors import CLI_OPTIONS, InvalidOptionError, UnsupportedModelError, cli_wording, option
from edgekit.models.formats import ModelFile

__all__ = ["DEFAULT_DEVICE", "Emulation", "estimate_latency", "prepare"]

#: the profile emulated when none is given (``edgekit.load(path, runtime="emulated")``)
DEFAULT_DEVICE = "generic-x86-64"


@dataclass
class Emulation:
    """A model prepared for one target of a device profile."""

    model: ModelFile
    profile: DeviceProfile
    target: Target
    unit: Unit
    cpu_unit: Unit
    spec: AcceleratorSpec
    cpu_spec: AcceleratorSpec
    precision: str
    run_path: Path  # what the reference runtime loads
    analysis_path: Path  # the graph that was partitioned (FLOPs are counted on it)
    graph: Graph
    plan: Plan
    trail: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    input_shapes: dict[str, tuple[int, ...]] | None = None
    converted: str | None = None  # set when the target's runtime would need the model converted first
    _estimate: Estimate | None = None

    @property
    def on_cpu_unit(self) -> bool:
        """True when the emulated target is the profile's CPU itself (nothing is offloaded)."""
        return self.unit.kind == "cpu"

    def estimate(self) -> Estimate:
        """Predicted latency of one inference on the device (see :mod:`edgekit.emulation.latency`)."""
        if self._estimate is None:
            from edgekit.models.flops import count_onnx, count_tflite

            counted = (count_onnx(self.analysis_path, self.input_shapes) if self.graph.fmt == "onnx"
                       else count_tflite(self.analysis_path))
            flops: list[int | None] = [None] * len(self.graph.nodes)
            if len(counted.ops) == len(self.graph.nodes):
                flops = [o.flops for o in counted.ops]
            self._estimate = estimate_plan(self.plan, flops, self.unit, self.cpu_unit, self.precision, self.spec,
                                           self.cpu_spec, device=self.profile.name, target=self.target.describe())
        return self._estimate

    def explain(self, limit: int = 40) -> list[str]:
        """Which ops run on the emulated accelerator, which fall back to the CPU, and why."""
        g, plan = self.graph, self.plan
        real = [n for n in g.nodes if n.op != "Constant"]
        if self.on_cpu_unit:
            return [f"all {len(real)} ops run on {self.unit.name} ({self.unit.title}): the target is the CPU"]
        free = self.spec.latency.free_ops
        acc = [n for n in real if plan.on_accelerator[n.index]]
        parts = [p for p in plan.partitions if p.on_accelerator]
        types = ", ".join(f"{t} x{c}" for t, c in Counter(n.op for n in acc if n.op not in free).most_common())
        folded = sum(1 for n in acc if n.op in free)
        lines = [f"{len(acc) - folded} of {sum(1 for n in real if n.op not in free)} ops run on {self.unit.name} "
                 f"({self.spec.title}) in {len(parts)} partition(s) [{self.spec.partition} partitioning]"
                 + (f": {types}" if types else "") + (f" (+{folded} folded: Q/DQ, reshapes)" if folded else "")]
        for p in parts:
            names = [g.nodes[i].name for i in p.nodes if g.nodes[i].op != "Constant" and g.nodes[i].op not in free]
            names = names or [g.nodes[i].name for i in p.nodes]
            lines.append(f"{self.unit.name} partition {p.index}: {len(names)} ops, {names[0]!r} .. {names[-1]!r}")
        falls = [(n, r) for n, r in plan.unsupported() if n.op != "Constant" and n.op not in free]
        for n, reason in falls[:limit]:
            lines.append(f"falls back to CPU: {n.name!r} ({n.op}): {reason}")
        if len(falls) > limit:
            lines.append(f"... and {len(falls) - limit} more CPU ops (Predictor.session.emulation.plan has them all)")
        return lines


# --- choosing the target ---------------------------------------------------------------------------

def _format_reason(t: Target, fmt: str) -> str | None:
    """Why ``t``'s runtime cannot take a ``fmt`` model (as placement and ``edgekit check`` say it), or None."""
    info = runtime_info(t.runtime)
    if info is None or fmt in info.formats + info.converts:  # a plugin without a catalog entry: not refused here
        return None
    return f"{t.runtime} does not read {fmt} models (it reads {list(info.formats + info.converts)})"


def _precision_reason(t: Target, unit: Unit, mprec: str, precision: str | None, quantize: bool) -> str | None:
    allowed = t.constraints.precisions
    if t.precision == "int8" and mprec != "int8" and not quantize:
        fix = ("quantize it first (`edgekit quantize`)" if cli_wording() else
               "pass calibration=[samples...] to quantize it, or load an int8-quantized model")
        return f"it computes int8 only and the model is {mprec}: {fix}"
    if mprec == "int8" and "int8" not in unit.peak_gops:
        return f"the model is int8-quantized and unit {unit.name!r} computes only {list(unit.precisions)}"
    if allowed and mprec not in allowed and not (quantize and "int8" in allowed):
        return f"the model is {mprec} and this target accepts only {list(allowed)} models"
    if precision and mprec != "int8" and precision not in unit.peak_gops:
        return f"{option('precision', precision)} was asked and unit {unit.name!r} computes {list(unit.precisions)}"
    return None


def _choose(profile: DeviceProfile, fmt: str, mprec: str, accelerator: str | None, unit: str | None,
            precision: str | None, quantize: bool, strict: bool) -> tuple[Target, list[tuple[str, str]], str | None]:
    """``(target, trail, converted)``: the target to emulate, every earlier one passed over with why, and a note
    when the target's runtime would need the model converted (no target reads it as it is)."""
    targets = [t for t in profile.targets if (accelerator is None or t.accelerator == accelerator.lower())
               and (unit is None or t.unit == unit)]
    if not targets:
        raise InvalidOptionError(
            f"device {profile.name!r} has no target with" + (f" accelerator={accelerator!r}" if accelerator else "")
            + (f" unit={unit!r}" if unit else "") + f"; its targets are {[t.describe() for t in profile.targets]}.")
    if accelerator is None and unit is None:
        offload = [t for t in targets if profile.unit(t.unit).kind != "cpu"]
        targets = offload or targets
    if precision is not None:  # precision= picks among targets that differ only by it (QNN int8 / fp16)
        targets = [t for t in targets if t.precision == precision] or targets
    passed: dict[str, str] = {}  # target -> why it was passed over, in the profile's order
    for t in targets:
        unreadable = _format_reason(t, fmt)
        if unreadable:  # passed over, and said why; not a fallback (placement skips these targets too)
            passed[t.describe()] = unreadable
            continue
        reason = _precision_reason(t, profile.unit(t.unit), mprec, precision, quantize)
        if reason is None:
            return t, list(passed.items()), None
        passed[t.describe()] = reason
        if strict:
            break
    else:  # no target reads the model as it is: emulate the first that would after a conversion, and say so
        for i, t in enumerate(targets):
            why = _format_reason(t, fmt)
            if why and _precision_reason(t, profile.unit(t.unit), mprec, precision, quantize) is None:
                earlier = {u.describe() for u in targets[:i]}
                note = (f"{why}: no target of {profile.name} reads {fmt} models as they are, so {t.describe()} is "
                        f"emulated as if the model were converted; convert it (`edgekit convert`) to deploy it there")
                return t, [(d, r) for d, r in passed.items() if d in earlier], note
    lines = "\n".join(f"  {d}: {r}" for d, r in passed.items())
    raise UnsupportedModelError(
        f"device {profile.name!r}: no {'accelerator ' if accelerator is None and unit is None else ''}target can take "
        f"this {mprec} model{' (strict=True stops at the first)' if strict else ''}:\n{lines}\n"
        "Pass calibration= to quantize for an int8-only accelerator, or accelerator=/unit= to emulate another target "
        "(e.g. accelerator='cpu').")


def _cpu_unit(profile: DeviceProfile, fallback: Unit) -> Unit:
    return next((u for u in profile.units if u.kind == "cpu"), fallback)


# --- preparing the model ---------------------------------------------------------------------------

def _cache_file(model: ModelFile, key: str, suffix: str) -> Path:
    digest = hashlib.sha256(f"{model.sha256()}|{key}".encode()).hexdigest()[:24]
    return cache_dir("emulated") / f"{model.path.stem}-{digest}{suffix}"


def _write_onnx(proto: Any, dst: Path) -> Path:
    import onnx

    return cached_file(dst, lambda tmp: onnx.save(proto, str(tmp)))[0]


def _ort_basic(src: Path, dst: Path) -> Path:
    """ONNX Runtime's level-1 optimisations (constant folding, Conv+BN fusion...), which run before EP partitioning."""
    import onnxruntime as ort

    def optimise(tmp: Path) -> None:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.log_severity_level = 3
        so.optimized_model_filepath = str(tmp)
        ort.InferenceSession(str(src), sess_options=so, providers=["CPUExecutionProvider"])

    return cached_file(dst, optimise)[0]


def _calibration_key(calibration: Any) -> str:
    import numpy as np

    h = hashlib.sha256()
    for sample in calibration:
        values = sample.values() if isinstance(sample, dict) else (sample if isinstance(sample, (list, tuple))
                                                                  else [sample])
        for v in values:
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def prepare(model: ModelFile, device: Any = None, *, accelerator: str | None = None, unit: str | None = None,
            precision: str | None = None, strict: bool = False, calibration: Any = None,
            input_shapes: dict[str, Any] | None = None) -> Emulation:
    """Prepare ``model`` (ONNX or TFLite) for emulation on ``device`` (name, path or profile; default generic-x86-64)."""
    from edgekit.devices import get_profile
    from edgekit.models.precision import model_precision

    if model.format not in ("onnx", "tflite"):
        raise UnsupportedModelError(f"the emulated runtime runs ONNX and TFLite models, not {model.format} "
                                    f"({model.path.name}). Convert it first (`edgekit convert`).")
    if isinstance(device, str) and device == "auto":
        from edgekit.devices import detect

        profile = detect().profile
    else:
        profile = get_profile(device if device is not None else DEFAULT_DEVICE)
    mprec = model_precision(model)
    quantize = calibration is not None and mprec != "int8"
    ignored_calibration = calibration is not None and not quantize
    if quantize and model.format != "onnx":
        raise UnsupportedModelError(f"calibration= quantizes ONNX models only; {model.path.name} is TFLite. Quantize "
                                    "it with the TFLite converter (full-integer quantization) and load the int8 model.")
    calibration = list(calibration) if quantize else None
    target, trail, converted = _choose(profile, model.format, mprec, accelerator, unit, precision, quantize, strict)
    t_unit = profile.unit(target.unit)
    cpu_unit = _cpu_unit(profile, t_unit)
    spec = accelerator_spec(profile, t_unit.name)
    cpu_spec = accelerator_spec(profile, cpu_unit.name) if cpu_unit.kind == "cpu" else load_spec("cpu")
    acc_prec = "int8" if (mprec == "int8" or quantize) and "int8" in t_unit.peak_gops else (
        precision if precision and mprec != "int8" else target.precision)
    if acc_prec == "int8" and mprec != "int8" and not quantize:
        acc_prec = next((p for p in t_unit.precisions if p != "int8"), "fp32")
    notes: list[str] = [converted] if converted else []
    if ignored_calibration:
        notes.append("calibration= was ignored: the model is already int8-quantized")
    shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()} or None
    if model.format == "onnx":
        emu = _prepare_onnx(model, profile, target, t_unit, spec, acc_prec, shapes, calibration, notes)
    else:
        emu = _prepare_tflite(model, profile, target, t_unit, spec, acc_prec, shapes, notes)
    run_path, analysis_path, graph, plan = emu
    result = Emulation(model, profile, target, t_unit, cpu_unit, spec, cpu_spec, acc_prec, run_path, analysis_path,
                       graph, plan, trail, notes, shapes, converted)
    falls = [(n, r) for n, r in plan.unsupported() if n.op != "Constant"]
    if strict and falls and not result.on_cpu_unit:
        listed = "\n".join(f"  {n.name!r} ({n.op}): {r}" for n, r in falls)
        raise UnsupportedModelError(
            f"strict=True: {len(falls)} op(s) of {model.path.name} would fall back from {t_unit.name} to the CPU on "
            f"{profile.name}:\n{listed}\nReplace or remove them, or pass strict=False to emulate the CPU fallback.",
            operators=tuple(dict.fromkeys(n.op for n, _ in falls)))
    _memory_note(result)
    notes.extend(spec.notes)
    if t_unit.kind != "cpu":  # which latency parameters were fitted, to what (or that they are hand-set)
        notes.extend(calibration_notes(spec, t_unit.name))
    return result


def _prepare_onnx(model: ModelFile, profile: DeviceProfile, target: Target, t_unit: Unit, spec: AcceleratorSpec,
                  acc_prec: str, shapes: dict[str, tuple[int, ...]] | None, calibration: list[Any] | None,
                  notes: list[str]) -> tuple[Path, Path, Graph, Plan]:
    import onnx

    from edgekit.emulation.precision import dynamic_inputs, fix_input_shapes, quantize_onnx, round_through
    from edgekit.models.model_io import onnx_io

    proto = onnx.load(str(model.path))
    base, key = model.path, ""
    if shapes:
        proto = fix_input_shapes(proto, shapes)
        key = f"shapes={sorted(shapes.items())}"
        base = _write_onnx(proto, _cache_file(model, key, ".onnx"))
    dyn = dynamic_inputs(proto)
    if target.constraints.static_shapes and dyn:
        raise UnsupportedModelError(
            f"{target.describe()} on {profile.name} needs static shapes and input(s) {dyn} of {model.path.name} are "
            f"dynamic: fix them with e.g. {_shapes_hint(proto, dyn)}, or re-export the model with fixed shapes.")
    if calibration is not None:
        key += f"|quantized={_calibration_key(calibration)}"
        source = base
        base = cached_file(_cache_file(model, key, ".onnx"),
                           lambda tmp: quantize_onnx(source, tmp, calibration, onnx_io(source)[0]))[0]
        notes.append(f"quantized to int8 with {len(calibration)} calibration sample(s) (static QDQ, ONNX Runtime)")
    try:
        analysis = _ort_basic(base, _cache_file(model, key + "|ort-basic", ".onnx"))
        graph_proto = onnx.load(str(analysis))
    except Exception as exc:  # noqa: BLE001 - analysis on the unoptimised graph is still meaningful
        notes.append(f"ONNX Runtime's basic optimisation failed ({type(exc).__name__}); the unoptimised graph is "
                     "partitioned")
        analysis, graph_proto = base, onnx.load(str(base))
    graph = onnx_graph(graph_proto)
    plan = partition(graph, spec, int8_only=acc_prec == "int8", accelerator_is_cpu=t_unit.kind == "cpu")
    run = base
    if acc_prec in ("fp16", "bf16"):
        on = {graph.nodes[i].name for i in range(len(graph.nodes)) if plan.on_accelerator[i]}
        digest = hashlib.sha256("|".join(sorted(on)).encode()).hexdigest()[:12]
        dst = _cache_file(model, f"{key}|{acc_prec}|{digest}", ".onnx")
        run = cached_file(dst, lambda tmp: onnx.save(round_through(graph_proto, on, acc_prec), str(tmp)))[0]
        notes.append(f"{acc_prec}: weights and activations of the {len(on)} accelerator ops are rounded through "
                     f"{acc_prec}; CPU-fallback ops compute in fp32")
    return run, analysis, graph, plan


def _shapes_hint(proto: Any, dynamic: list[str]) -> str:
    """How to fix the ``dynamic`` inputs, with an example shape each (dynamic dims 1, image sides 224), in the
    caller's wording: ``input_shapes={'x': (1, 3, 224, 224)}`` or ``--shape x=1x3x224x224``."""
    import numpy as np

    from edgekit.tensors import TensorSpec, concrete_dims

    example: dict[str, tuple[int, ...]] = {}
    for vi in proto.graph.input:
        if vi.name in dynamic:
            dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                         for d in vi.type.tensor_type.shape.dim)
            example[vi.name] = concrete_dims(TensorSpec(vi.name, dims, np.dtype("float32")), 224)
    flag = f" {CLI_OPTIONS['input_shapes']} "
    return option("input_shapes", example, cli_value=flag.join(f"{k}={'x'.join(map(str, v))}" for k, v in example.items()))


def _prepare_tflite(model: ModelFile, profile: DeviceProfile, target: Target, t_unit: Unit, spec: AcceleratorSpec,
                    acc_prec: str, shapes: dict[str, tuple[int, ...]] | None,
                    notes: list[str]) -> tuple[Path, Path, Graph, Plan]:
    from edgekit.emulation.precision import round_tflite_weights
    from edgekit.models.model_io import tflite_io

    if shapes:
        raise InvalidOptionError(f"{option('input_shapes')} fixes ONNX inputs only here; re-export the TFLite model "
                                 "with fixed shapes.")
    dyn = [s.name for s in tflite_io(model.path)[0] if s.is_dynamic]
    if target.constraints.static_shapes and dyn:
        raise UnsupportedModelError(f"{target.describe()} on {profile.name} needs static shapes and input(s) {dyn} of "
                                    f"{model.path.name} are dynamic: re-export the model with fixed input shapes.")
    graph = tflite_graph(model.path)
    plan = partition(graph, spec, int8_only=acc_prec == "int8", accelerator_is_cpu=t_unit.kind == "cpu")
    run = model.path
    if acc_prec in ("fp16", "bf16"):
        consts = {t for i, n in enumerate(graph.nodes) if plan.on_accelerator[i] for t in n.inputs
                  if t and graph.is_const(t)}
        digest = hashlib.sha256("|".join(sorted(consts)).encode()).hexdigest()[:12]
        run = cached_file(_cache_file(model, f"{acc_prec}|{digest}", ".tflite"),
                          lambda tmp: round_tflite_weights(model.path, tmp, consts, acc_prec))[0]
        notes.append(f"{acc_prec}: the weights of accelerator ops are rounded through {acc_prec}; TFLite activations "
                     "are not rounded (edgekit does not insert casts into flatbuffers), so the numeric error shown "
                     "is a lower bound")
    return run, model.path, graph, plan


def _memory_note(emu: Emulation) -> None:
    weights = emu.graph.weight_bytes()
    if emu.precision in ("fp16", "bf16"):
        weights //= 2
    elif emu.precision == "int8":  # integer weights and biases; float scales are negligible
        weights = sum(t.nbytes for t in emu.graph.tensors.values() if t.const and t.dtype is not None
                      and t.dtype.kind in "iu")
    mem = emu.unit.memory_gb
    size = f"model parameters {weights / 1e6:.2f} MB ({emu.precision})"
    if mem:
        verdict = "fit" if weights <= mem * 1e9 else "do NOT fit"
        emu.notes.append(f"{size} {verdict} in {emu.unit.name}'s {mem * 1e3:g} MB of memory")
    else:
        emu.notes.append(size)
    limit = emu.target.constraints.max_memory_mb
    if limit and weights > limit * 1e6:
        emu.notes.append(f"over this target's max_memory_mb = {limit:g}")


def estimate_latency(model: str | os.PathLike[str] | ModelFile, device: Any = None, **options: Any) -> Estimate:
    """Predicted latency of ``model`` on ``device`` without running it (options as :func:`prepare`).

    >>> estimate_latency("mobilenet_v2_int8.onnx", "coral-edgetpu").total_ms    # doctest: +SKIP
    2.7
    """
    from edgekit.models.formats import open_model

    mf = model if isinstance(model, ModelFile) else open_model(model)
    return prepare(mf, device, **options).estimate()
