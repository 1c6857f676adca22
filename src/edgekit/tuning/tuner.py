"""``edgekit.tune()``: find the fastest configuration that is still correct here, prove it, and write a plan.

Order of work: the model is opened and the inputs are made (an :class:`~edgekit.errors.InputError`
comes before anything is measured); the search space is built (:mod:`edgekit.tuning.space`);
the float32 reference runs once; the search (:mod:`edgekit.tuning.search`) screens, halves and
confirms; the report (:mod:`edgekit.tuning.report`) lists every candidate. When a winner was
found and the run was not interrupted, a deployment plan (:class:`edgekit.plan.Plan`) is written
to ``output`` (never over an existing file without ``force=True``, even when the winner is not
confirmed: the report says so) and, when the winner is confirmed, kept in the plan cache so that
``edgekit.load(model, device="auto")`` uses it.

Inputs: ``None`` (random data, two samples, seeds ``seed`` and ``seed + 1``: the report says
"random inputs"); ``--input``-style strings (``"x=frame.npy"``, ``"photos/"``: a folder gives one
sample per file); a dict ``{input name: array}`` (one sample); or a list of such dicts.

Bundles (``bundle=`` a folder or ``.zip``, ``edgekit tune --bundle B``): the bundle's model is
tuned; ``inputs`` are images (files, folders of them, or BGR uint8 arrays) that go through the
bundle's pre-processing (:meth:`edgekit.pipeline.Pipeline.preprocess`) before they feed the model;
none given: one deterministic synthetic image (:func:`edgekit.tuning.task.synthetic_image`; the
report says "synthetic image"). The gate then also compares results: each candidate's raw outputs
and the reference's go through the bundle's post-processing (:meth:`~edgekit.pipeline.Pipeline.postprocess`)
and must agree (:mod:`edgekit.tuning.task`: detections and text boxes by label and box IoU >= 0.9,
classification by the top-1 class, segmentation by mask IoU >= 0.9; ``--tolerance iou=0.8``).
``embed=True`` also writes the plan into the bundle folder as ``plans/<device>.toml`` (a folder
bundle and a ``device`` are needed; an existing plan is replaced only with ``force=True``).

Errors: no candidate can run (or none passes the gate) -> :class:`~edgekit.errors.DeviceUnavailableError`
listing every candidate and why; a bad objective, budget or tolerance -> InvalidOptionError;
a reference that cannot run the model -> InferenceError.

Example::

    report = edgekit.tune("det.onnx", inputs=["images/"], budget=120, output="det.plan.toml")  # doctest: +SKIP
    report.chosen.runtime, report.speedup_vs_default, report.confirmed                         # doctest: +SKIP
    report = edgekit.tune(bundle="bundles/blazeface", inputs=["faces/"], device="auto", embed=True)  # doctest: +SKIP
    report.chosen.accuracy["min_iou"], report.chosen.accuracy["unmatched_reference"]           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DeviceUnavailableError, InputError, InvalidOptionError
from edgekit.models.formats import ModelFile, open_model
from edgekit.plan import Config, Plan
from edgekit.profiling.engine import REFERENCE_RUNTIME
from edgekit.tuning.accuracy import describe_rules, parse_tolerance
from edgekit.tuning.report import CandidateReport, TuneReport
from edgekit.tuning.search import OBJECTIVES, Outcome, Search, Settings, Trial
from edgekit.tuning.space import search_space

__all__ = ["bundle_samples", "check_model_or_bundle", "embed_target", "prepare_samples", "reference_config", "tune"]

RANDOM_SAMPLES = 2
Inputs = str | os.PathLike[str] | Sequence[str] | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def prepare_samples(model: ModelFile, inputs: Inputs, *, shapes: Mapping[str, Sequence[int]] | None = None,
                    seed: int = 0) -> tuple[list[dict[str, np.ndarray]], str, bool]:
    """(samples, description, random?) for ``inputs`` (see the module docstring); InputError when they do not fit."""
    from edgekit.profiling.inputs import adapt_layout, input_sample_args, input_specs, make_inputs, random_input

    specs = input_specs(model)
    if inputs is None or (isinstance(inputs, (list, tuple)) and not inputs):
        samples = [make_inputs(specs, seed=seed + k, shapes=shapes)[0] for k in range(RANDOM_SAMPLES)]
        return samples, f"random inputs (seeds {seed}..{seed + RANDOM_SAMPLES - 1})", True
    dicts: list[Mapping[str, Any]] | None = None
    if isinstance(inputs, Mapping):
        dicts = [inputs]
    elif isinstance(inputs, (list, tuple)) and all(isinstance(i, Mapping) for i in inputs):
        dicts = list(inputs)  # type: ignore[arg-type]
    if dicts is None:
        items = [str(inputs)] if isinstance(inputs, (str, os.PathLike)) else [str(i) for i in inputs]  # type: ignore[union-attr]
        sets = input_sample_args(items)
        samples = [make_inputs(specs, given=s, seed=seed, shapes=shapes)[0] for s in sets]
        return samples, f"{len(samples)} sample(s) from --input {' '.join(items)}", False
    by_name = {s.name: s for s in specs}
    rng = np.random.default_rng(seed)
    samples = []
    for d in dicts:
        unknown = sorted(set(d) - set(by_name))
        if unknown:
            raise InputError(f"inputs= names {unknown}, but the model has no input of that name; its inputs are "
                             f"{list(by_name)}. Key the arrays by those names.")
        samples.append({s.name: adapt_layout(s, np.asarray(d[s.name])) if s.name in d
                        else random_input(s, rng, (shapes or {}).get(s.name)) for s in specs})
    return samples, f"{len(samples)} sample(s) given as arrays", False


def _frames(inputs: Any) -> tuple[list[np.ndarray], str, bool]:
    """(BGR frames, description, synthetic?) for a bundle: image files/folders, arrays, or a synthetic image."""
    from edgekit.pipeline.preprocess import check_frame
    from edgekit.profiling.inputs import IMAGE_SUFFIXES, input_sample_args
    from edgekit.tuning.task import synthetic_image

    if inputs is None or (isinstance(inputs, (list, tuple)) and not len(inputs)):
        return [synthetic_image()], "1 synthetic image (320x240, shapes drawn with OpenCV) through the bundle's " \
            "pre-processing", True
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and all(isinstance(i, np.ndarray) for i in inputs):
        return [check_frame(f) for f in inputs], f"{len(inputs)} frame(s) given as arrays through the bundle's " \
            "pre-processing", False
    if isinstance(inputs, Mapping) or not isinstance(inputs, (str, os.PathLike, list, tuple)) or \
            (isinstance(inputs, (list, tuple)) and not all(isinstance(i, (str, os.PathLike)) for i in inputs)):
        raise InputError("with a bundle, inputs are images: file or folder paths (--input photo.jpg, --input "
                         "photos/) or BGR uint8 arrays; the bundle's pre-processing makes the model's tensors. Got "
                         f"{type(inputs).__name__}.")
    import cv2

    items = [str(inputs)] if isinstance(inputs, (str, os.PathLike)) else [str(i) for i in inputs]
    frames = []
    for sample in input_sample_args(items):
        if len(sample) != 1 or sample[0][1].suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"--input {' '.join(items)}: with --bundle each sample is one image ({', '.join(IMAGE_SUFFIXES)}"
                             f"), got {[str(p) for _, p in sample]}. The bundle's pre-processing makes the model's "
                             "tensors; pass images, or tune the model file itself with arrays.")
        frame = cv2.imread(str(sample[0][1]), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"--input {sample[0][1]}: OpenCV cannot read this image; expected a readable "
                             f"{'/'.join(IMAGE_SUFFIXES)} file.")
        frames.append(frame)
    return frames, f"{len(frames)} image(s) from --input {' '.join(items)} through the bundle's pre-processing", False


def bundle_samples(bundle: str | os.PathLike[str], inputs: Any, reference: str | None
                   ) -> tuple[ModelFile, list[dict[str, np.ndarray]], str, bool, Any]:
    """(model, samples, description, synthetic?, TaskCheck) for a bundle: frames pre-processed by its pipeline.

    The pipeline is loaded on the reference runtime (the model's float32 truth) only to validate the
    bundle against the model, pre-process the frames and, later, post-process raw outputs.
    """
    from edgekit.pipeline.bundle import load_bundle, resolve_bundle
    from edgekit.pipeline.config import read_bundle_config
    from edgekit.tuning.task import TaskCheck

    root = resolve_bundle(bundle)
    cfg = read_bundle_config(root)
    mf = open_model(cfg.model)
    ref = reference_config(mf, reference)
    frames, described, synthetic = _frames(inputs)
    pipe = load_bundle(root, runtime=ref.runtime, accelerator=ref.accelerator, threads=1)
    try:
        pairs = [pipe.preprocess(f) for f in frames]
        name = pipe.config.pre.input or pipe.config.inputs[0].name
    finally:
        pipe.close()  # post-processing does not use the predictor
    samples = [{name: tensor} for tensor, _ in pairs]
    import hashlib

    source = hashlib.sha256(b"".join(np.ascontiguousarray(f).tobytes() for f in frames)).hexdigest()
    return mf, samples, described, synthetic, TaskCheck(pipe, [tf for _, tf in pairs], source)


def check_model_or_bundle(model: Any, bundle: Any, embed: bool, how: str = "`edgekit tune MODEL` or "
                          "`edgekit tune --bundle B`") -> None:
    """InvalidOptionError unless exactly one of ``model`` and ``bundle`` is given, and ``embed`` only with a bundle;
    ``how`` shows the two command lines (``--fleet`` ones for the fleet)."""
    if (model is None) == (bundle is None):
        raise InvalidOptionError(f"give either a model or bundle= ({how}), not "
                                 f"{'both' if model is not None else 'neither'}: with a bundle the model is the "
                                 "bundle's.")
    if embed and bundle is None:
        raise InvalidOptionError("embed=True (--embed) writes plans into a bundle; pass bundle= (--bundle B).")


def embed_target(bundle: str | os.PathLike[str], device: str | None) -> Path:
    """The bundle folder ``--embed`` writes into; InvalidOptionError for a .zip or without a device."""
    from edgekit.pipeline.bundle import resolve_bundle

    p = Path(bundle).expanduser()
    if p.is_file() and p.name != "edgekit.toml":
        raise InvalidOptionError(f"--embed: {p} is an archive; a plan is written into a bundle folder only. Unpack "
                                 "it, or re-create it with the plan: `edgekit tune --bundle ... -o plan.toml` then "
                                 "`edgekit bundle create MODEL --preset NAME --plan plan.toml --output B.zip`.")
    if device is None:
        raise InvalidOptionError("--embed needs --device NAME (or auto): a bundle keeps one plan per device profile "
                                 "as plans/<device>.toml, and a plan made without a device names none.")
    return resolve_bundle(p)


def reference_config(model: ModelFile, reference: str | None) -> Config:
    """The float32 reference: ``reference`` or the format's own runtime (the profiler's ``REFERENCE_RUNTIME``:
    onnxruntime for ONNX, litert for TFLite), on its default accelerator, one thread."""
    from edgekit.registry import get_runtime

    name = reference or REFERENCE_RUNTIME.get(model.format)
    if name is None:
        raise InvalidOptionError(f"no reference runtime is known for {model.format} models; pass reference= "
                                 "(--reference RUNTIME) naming one that runs this model in float32.")
    rt = get_runtime(name)
    if not rt.can_read(model.format):
        raise InvalidOptionError(f"reference runtime {name!r} cannot read {model.format} models ({model.path.name}); "
                                 f"it reads {list(rt.formats)}. Pass --reference with one that does.")
    rt.require()
    return Config(name, rt.default_accelerator, "fp32", 1, {})


def tune(model: str | os.PathLike[str] | ModelFile | None = None, *, bundle: str | os.PathLike[str] | None = None,
         embed: bool = False, device: str | None = None, inputs: Inputs = None,
         budget: float = 120.0, objective: str = "latency", tolerance: Any = None, reference: str | None = None,
         output: str | os.PathLike[str] | None = None, force: bool = False, runtimes: Sequence[str] | None = None,
         threads: Sequence[int] | None = None, shapes: Mapping[str, Sequence[int]] | None = None, seed: int = 0,
         cache: bool = True, cache_plan: bool = True, strategy: str = "halving", timeout: float = 60.0,
         settings: Settings | None = None, on_event: Callable[[dict[str, Any]], None] | None = None) -> TuneReport:
    """Search the configurations of ``model`` on this host (or ``device``) and return the :class:`TuneReport`.

    ``budget`` seconds in all; ``objective`` latency | throughput | memory; ``tolerance``
    ``[OUTPUT:]KEY=VALUE`` items (:mod:`edgekit.tuning.accuracy`); ``reference`` a runtime name;
    ``output`` the plan file; ``bundle`` a bundle whose model is tuned with a task-aware gate through
    its post-processing (then no ``model``), ``embed`` writes the plan into it; ``runtimes``/``threads`` restrict the space; ``cache`` reuses (and
    keeps) measurements of earlier runs; ``cache_plan`` keeps a confirmed plan for ``load(device="auto")``.
    See the module docstring for the steps and errors.

    >>> report = tune("det.onnx", budget=60, output="det.plan.toml")     # doctest: +SKIP
    >>> report = tune(bundle="bundles/blazeface", inputs="faces/", budget=60)  # doctest: +SKIP
    """
    check_model_or_bundle(model, bundle, embed)
    embed_root = embed_target(bundle, device) if embed and bundle is not None else None
    if objective not in OBJECTIVES:
        raise InvalidOptionError(f"objective {objective!r} is not one of {list(OBJECTIVES)}; pass e.g. "
                                 "objective='latency'.")
    if strategy not in ("halving", "exhaustive"):
        raise InvalidOptionError(f"strategy {strategy!r} is not one of ['halving', 'exhaustive']; the default "
                                 "'halving' is the search, 'exhaustive' measures every candidate fully.")
    if not budget > 0:
        raise InvalidOptionError(f"budget must be a positive number of seconds, got {budget!r}; pass e.g. budget=120.")
    tolerances = parse_tolerance(tolerance)
    if output is not None and Path(output).expanduser().exists() and not force:
        raise InvalidOptionError(f"{output} already exists; a plan is never overwritten by accident. Choose another "
                                 "file name, or pass force=True (`--force`) to replace it.")
    task = None
    synthetic = False
    if bundle is not None:
        mf, samples, described, synthetic, task = bundle_samples(bundle, inputs, reference)
        random = False
    else:
        assert model is not None
        mf = model if isinstance(model, ModelFile) else open_model(model)
        samples, described, random = prepare_samples(mf, inputs, shapes=shapes, seed=seed)
    space = search_space(mf, device, runtimes=runtimes, threads=threads)
    embed_path = None
    if embed_root is not None:
        from edgekit.pipeline.config import PLANS_DIR

        embed_path = embed_root / PLANS_DIR / f"{space.device}.toml"
        if embed_path.exists() and not force:
            raise InvalidOptionError(f"--embed: {embed_path} already exists; a plan is never overwritten by accident. "
                                     "Pass force=True (`--force`) to replace it.")
    if not space.candidates:
        why = "; ".join(f"{what}: {reason}" for what, reason in space.skipped) or "no runtime is registered"
        raise DeviceUnavailableError(
            f"no configuration of {mf.path.name} can be searched here ({why}). Expected at least one installed runtime "
            f"that reads {mf.format} models: install one (`edgekit runtimes` lists them) or name another --device.")
    ref = reference_config(mf, reference)
    s = dataclasses.replace(settings or Settings(), budget_s=float(budget), objective=objective, strategy=strategy,
                            timeout=timeout, cache=cache)
    outcome = Search(space, samples, tolerances, s, ref, on_event=on_event, task=task).run()
    if outcome.chosen is None and not outcome.partial:
        rows = [f"  {t.candidate.id} {t.candidate.config.describe()}: {t.status}: {t.reason}" for t in outcome.trials]
        shown = rows[:60] + ([f"  ... and {len(rows) - 60} more"] if len(rows) > 60 else [])
        raise DeviceUnavailableError(
            f"no configuration of {mf.path.name} both ran and matched the float32 reference "
            f"({ref.describe()}) on {described}:\n" + "\n".join(shown) + "\nExpected at least one that runs and passes "
            "the accuracy gate: fix what the failures say, loosen the gate (--tolerance), or try other runtimes.")
    report = build_report(mf, space.device, outcome, s, described, random, tolerances, space.skipped, space.notes)
    if bundle is not None and task is not None:
        report.bundle = {"path": str(bundle), "kind": task.kind, "check": task.describe(tolerances),
                         "synthetic_image": synthetic}
        report.notes.append(f"bundle {bundle}: the gate also compared {task.describe(tolerances)}")
        if synthetic:
            report.notes.append("the accuracy gate ran on a synthetic image (no --input): pass real images for a "
                                "gate that means more")
    if outcome.chosen is not None and not outcome.partial:
        plan = make_plan(mf, space.device, outcome, objective, described)
        if output is not None:
            report.plan = str(plan.write(output, force=force))
        if embed_path is not None:
            report.plan_embedded = str(plan.write(embed_path, force=force))
        if cache_plan and report.confirmed:
            from edgekit.plan_cache import cache_plan as keep

            report.plan_cached = str(keep(plan))
    return report


def _entry(t: Trial, kind: str | None = None) -> CandidateReport:
    c, m = t.candidate.config, t.measurement
    return CandidateReport(
        id=t.candidate.id, runtime=c.runtime, accelerator=c.accelerator, precision=c.precision, threads=c.threads,
        options=dict(c.options), status=t.status, kind=kind or t.candidate.kind, reason=t.reason,
        p50_ms=m.p50_ms if m else None, p50_ci_ms=list(m.p50_ci_ms) if m and m.p50_ci_ms else None,
        mean_ms=m.mean_ms if m else None, throughput_ips=1000.0 / m.mean_ms if m and m.mean_ms > 0 else None,
        peak_rss_mb=m.peak_rss_mb if m else None, samples=m.n if m else None, rounds=t.rounds, cached=t.cached,
        confirmed=t.confirmed, precision_used=t.precision_used, version=t.version, target=c.target,
        accuracy=t.accuracy.to_dict() if t.accuracy else None)


def _speedup(chosen: Trial | None, default: Trial | None, objective: str) -> float | None:
    if chosen is None or default is None or chosen.measurement is None or default.measurement is None:
        return None
    a, b = chosen.measurement, default.measurement
    figure = {"latency": (b.p50_ms, a.p50_ms), "throughput": (b.mean_ms, a.mean_ms),
              "memory": (b.peak_rss_mb, a.peak_rss_mb)}[objective]
    return figure[0] / figure[1] if figure[0] and figure[1] else None


def build_report(mf: ModelFile, device: str | None, o: Outcome, s: Settings, inputs: str, random: bool,
                 tolerances: Any, skipped: list[tuple[str, str]], notes: list[str]) -> TuneReport:
    """The :class:`TuneReport` of a search's outcome."""
    from edgekit._version import __version__
    from edgekit.plan import host_facts

    default = _entry(o.default, "default" if o.default.candidate.id == "default" else None) if o.default else None
    cpu, cores, machine = host_facts()
    notes = list(notes) + ([] if s.cache else ["the measurement cache was not used (cache=False / --no-cache)"])
    if random:
        notes.append("the accuracy gate ran on random inputs: pass real ones (--input) for a gate that means more")
    return TuneReport(
        model={"name": mf.path.name, "path": str(mf.path), "format": mf.format, "sha256": mf.sha256()},
        device=device, objective=s.objective, inputs=inputs, random_inputs=random,
        reference={"runtime": o.reference.runtime, "version": o.reference_version, "config": o.reference.describe()},
        chosen=_entry(o.chosen) if o.chosen else None, runner_up=_entry(o.runner_up) if o.runner_up else None,
        default=default, speedup_vs_default=_speedup(o.chosen, o.default, s.objective),
        confirmed=bool(o.chosen and o.chosen.confirmed and not o.partial), partial=o.partial, budget_s=s.budget_s,
        elapsed_s=o.elapsed_s, candidates=[_entry(t) for t in o.trials],
        search={"strategy": s.strategy, "screen_s": s.screen_s, "eta": s.eta, "max_round_s": s.max_round_s,
                "knob_groups": s.knob_groups, "knob_margin": s.knob_margin, "confirm_s": s.confirm_s,
                "rel_tol": s.rel_tol, "reserve": s.reserve, "timeout_s": s.timeout, "measured": o.measured,
                "cached": sum(t.cached for t in o.trials), "rounds": o.rounds},
        tolerance=describe_rules(tolerances), skipped=[{"what": w, "why": y} for w, y in skipped], notes=notes,
        provenance={"edgekit": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
                    "cpu": cpu, "cores": cores, "machine": machine},
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def make_plan(mf: ModelFile, device: str | None, o: Outcome, objective: str, inputs: str) -> Plan:
    """The deployment plan for the outcome's chosen configuration (its runner-up and the default with their p50)."""
    assert o.chosen is not None and o.chosen.measurement is not None
    c, m = o.chosen, o.chosen.measurement
    acc = {k: v for k, v in (c.accuracy.summary() if c.accuracy else {}).items() if v is not None}
    acc["reference"] = o.reference.describe()
    acc["confirmed"] = c.confirmed
    figures: dict[str, Any] = {"p50_ci_ms": m.p50_ci_ms, "accuracy": acc, "objective": objective, "inputs": inputs}
    for name, t in (("runner_up", o.runner_up), ("default", o.default)):
        if t is not None and t.measurement is not None:
            figures[name], figures[f"{name}_p50_ms"] = t.candidate.config, t.measurement.p50_ms
    return Plan.for_here(c.candidate.config, mf, device=device, p50_ms=m.p50_ms, runtimes=[o.reference.runtime],
                         **figures)
