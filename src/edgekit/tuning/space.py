"""The configurations ``edgekit tune`` may choose from, for one model on this host (or a device profile).

Where the runtimes come from:

* with a device profile (``device=`` a name, a ``.toml`` or ``"auto"``): its targets, in order,
  grouped by (runtime, accelerator). A target is left out, with the reason in
  :attr:`SearchSpace.skipped`, when its runtime is not registered or not installed, cannot read
  the model's format, emulates instead of running (``estimate``), or needs a setting a plan cannot
  carry (a delegate, a plugin, an option other than ``threads`` and the runtime's ``tunables``);
* without one: every installed runtime that edgekit picks by default and that reads the format
  (natively or by converting), on its default accelerator;
* ``runtimes=`` restricts either to the named runtimes (naming one also admits a runtime that is
  not picked by default).

Each (runtime, accelerator) group is crossed with:

* **threads**: 1, 2, 4, … up to the cores of this host, the core count itself, and the
  ``threads`` a profile target names (``threads=`` replaces the list);
* **precision**: for a float model, what the runtime computes in on that accelerator
  (``Runtime.precisions``) except int8; for an int8 (quantized) model, ``int8`` alone, on
  runtimes that declare the ``int8`` capability. int8 candidates for a float model are not made:
  quantizing changes the model file and a plan names the model it was tuned on (a note says so);
* **options**: the runtime's defaults (no option set), plus each tunable knob
  (``Runtime.tunables``; the first value of each is the adapter's default) set to each of its
  other values, one knob at a time. Crossing every knob with every other is exponential (MNN
  alone: 4 x 3 x 2); one at a time is linear, and the search explores knobs only around the
  configurations that screened fastest.

Example::

    space = search_space(open_model("det.onnx"))
    len(space.candidates), space.default.describe()
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgekit.models.formats import ModelFile
from edgekit.plan import Config

__all__ = ["Candidate", "SearchSpace", "default_config", "search_space", "thread_counts"]


@dataclass(frozen=True)
class Candidate:
    """One configuration to try; ``kind`` "base" (runtime defaults) or "knob" (one option changed)."""

    id: str
    config: Config
    kind: Literal["base", "knob"] = "base"
    knob: str | None = None  # the option a "knob" candidate changes

    @property
    def group(self) -> tuple[str, str]:
        """(runtime, accelerator): candidates that share an adapter and a device."""
        return self.config.runtime, self.config.accelerator

    @property
    def base_key(self) -> tuple[str, str, str, int]:
        """(runtime, accelerator, precision, threads): the base configuration a knob candidate varies."""
        c = self.config
        return c.runtime, c.accelerator, c.precision, c.threads


@dataclass
class SearchSpace:
    """Every candidate, the configuration ``load()`` would use without a plan, and what was left out and why."""

    model: ModelFile
    device: str | None  # the device profile's name, None without one
    candidates: list[Candidate]
    default: Config | None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (runtime or target, why it is not searched)
    notes: list[str] = field(default_factory=list)
    #: (runtime, accelerator) -> the thread count load() would use there (the target's, else every core)
    first_threads: dict[tuple[str, str], int] = field(default_factory=dict)


def thread_counts(cores: int | None = None, extra: Sequence[int] = ()) -> list[int]:
    """1, 2, 4, … below ``cores``, ``cores`` itself, and ``extra`` (a profile's threads), sorted.

    >>> thread_counts(6, extra=[3])
    [1, 2, 3, 4, 6]
    """
    n = cores or os.cpu_count() or 1
    out = {n, *extra}
    k = 1
    while k < n:
        out.add(k)
        k *= 2
    return sorted(t for t in out if t >= 1)


def _precisions(rt: Any, accelerator: str, int8_model: bool) -> tuple[list[str], str | None]:
    """Precisions to try on ``rt``/``accelerator``, or ([], why not)."""
    if int8_model:
        if not rt.has("int8"):
            return [], f"{rt.name} does not declare the 'int8' capability and the model is quantized"
        return ["int8"], None
    try:
        allowed = list(rt.precisions(accelerator))
    except Exception as exc:  # noqa: BLE001 - a runtime that cannot say is tried in fp32 only
        return ["fp32"], f"{rt.name}: could not list its precisions ({type(exc).__name__}: {exc}); fp32 only"
    return [p for p in allowed if p != "int8"] or ["fp32"], None


def default_config(model: ModelFile, device: str | None = None) -> Config | None:
    """What ``edgekit.load(model)`` runs without a plan; ``None`` when no installed runtime reads the model.

    Without a device: :func:`edgekit.placement.choose_runtime`, its default accelerator and
    precision, every core, no options. With one: the first target of the profile that
    :func:`search_space` keeps, in the target's precision and threads (default every core).
    """
    if device is not None:
        return search_space(model, device).default
    from edgekit.errors import EdgekitError
    from edgekit.models.precision import model_precision
    from edgekit.placement import choose_runtime

    try:
        rt = choose_runtime(model, None)
    except EdgekitError:
        return None
    precs, _ = _precisions(rt, rt.default_accelerator, model_precision(model) == "int8")
    return Config(rt.name, rt.default_accelerator, precs[0] if precs else "fp32", os.cpu_count() or 1, {})


@dataclass
class _Group:
    """One (runtime, accelerator) to search: from a profile target, or a runtime on its default accelerator."""

    rt: Any
    accelerator: str
    threads: list[int] = field(default_factory=list)  # what the profile's targets name
    target: str | None = None  # the first target's description
    precision: str | None = None  # the first target's precision
    options: dict[str, Any] = field(default_factory=dict)  # the first target's speed settings


def _groups(model: ModelFile, device: str | None, runtimes: Sequence[str] | None,
            skipped: list[tuple[str, str]]) -> tuple[str | None, list[_Group]]:
    """The profile's name (None without one) and the groups to search."""
    from edgekit.profiling.targets import resolve_runtime
    from edgekit.registry import get_runtime, iter_runtimes, runtime_names

    wanted = list(dict.fromkeys(runtimes or []))
    unknown = [name for name in wanted if name not in runtime_names()]
    if unknown:
        get_runtime(unknown[0])  # raises UnknownRuntimeError: the known names and the closest one
    out: list[_Group] = []
    if device is None:
        if wanted:
            rts = []
            for name in wanted:
                rt, missing = resolve_runtime(name)
                if rt is None:
                    skipped.append((name, missing))
                else:
                    rts.append(rt)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rts = [rt for rt in iter_runtimes() if rt.picked_by_default]
        for rt in rts:
            unusable = _unusable(rt, model)
            if unusable:
                skipped.append((rt.name, unusable))
            else:
                out.append(_Group(rt, rt.default_accelerator))
        return None, out
    from edgekit.devices import detect, get_profile

    profile = detect().profile if device == "auto" else get_profile(device)
    seen: dict[tuple[str, str], _Group] = {}
    for t in profile.targets:
        label = t.describe()
        if wanted and t.runtime not in wanted:
            continue
        rt, found = resolve_runtime(t.runtime)
        why: str | None = found or _unusable(rt, model)
        extra = sorted(set(t.options) - {"threads"} - set(rt.tunables if rt is not None else ()))
        if not why and (t.delegate or t.plugin or extra):
            what = "a delegate library" if t.delegate else "a plugin" if t.plugin else f"option(s) {extra}"
            why = f"it needs {what}, which a plan cannot carry (a plan sets only speed settings)"
        if why:
            skipped.append((label, why))
            continue
        threads = [int(t.options["threads"])] if isinstance(t.options.get("threads"), int) else []
        group = seen.get((t.runtime, t.accelerator))
        if group is not None:  # another precision of the same runtime and accelerator: one group
            group.threads.extend(threads)
            continue
        opts = {k: v for k, v in t.options.items() if k != "threads"}
        group = seen[(t.runtime, t.accelerator)] = _Group(rt, t.accelerator, threads, label, t.precision, opts)
        out.append(group)
    return profile.name, out


def _unusable(rt: Any, model: ModelFile) -> str | None:
    if not rt.can_read(model.format):
        return f"it does not read {model.format} models"
    if not rt.is_installed():
        return f"not installed: {rt.info.install_hint}"
    if rt.has("estimate"):
        return "it emulates a device instead of running the model"
    return rt.not_ready(model.format)


def search_space(model: ModelFile, device: str | None = None, *, runtimes: Sequence[str] | None = None,
                 threads: Sequence[int] | None = None) -> SearchSpace:
    """Every candidate configuration for ``model`` (see the module docstring for how they are made).

    >>> from edgekit.models.formats import open_model
    >>> from edgekit.models.sample import sample_model
    >>> space = search_space(open_model(sample_model("onnx")), runtimes=["onnxruntime"], threads=[1])
    >>> [c.config.describe() for c in space.candidates][:2]
    ['onnxruntime/cpu fp32 threads=1', 'onnxruntime/cpu fp32 threads=1 optimization=extended']
    """
    from edgekit.models.precision import model_precision

    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    int8 = model_precision(model) == "int8"
    if not int8:
        notes.append("int8 is not searched for a float model: quantizing makes another model file, and a plan names "
                     "the model it was tuned on. Quantize first (`edgekit quantize`), then tune the int8 model.")
    name, groups = _groups(model, device, runtimes, skipped)
    candidates: list[Candidate] = []
    default: Config | None = None
    first: dict[tuple[str, str], int] = {}
    for g in groups:
        precs, why = _precisions(g.rt, g.accelerator, int8)
        if why and precs:
            notes.append(why)
        elif why:
            skipped.append((g.target or g.rt.name, why))
        if not precs:
            continue
        if device is not None and default is None:  # load(device=...) without a plan: the first usable target
            prec = g.precision if g.precision in precs else precs[0]
            default = Config(g.rt.name, g.accelerator, prec, g.threads[0] if g.threads else os.cpu_count() or 1,
                             dict(g.options), g.target)
        counts = sorted(set(threads)) if threads else thread_counts(extra=g.threads)
        wanted = g.threads[0] if g.threads else os.cpu_count() or 1
        first[(g.rt.name, g.accelerator)] = wanted if wanted in counts else counts[-1]
        option_sets: list[tuple[str | None, dict[str, Any]]] = [(None, {})]
        option_sets += [(knob, {knob: v}) for knob, values in g.rt.tunables.items() for v in values[1:]]
        for knob, opts in option_sets:
            for prec in precs:
                for t in counts:
                    cid = f"c{len(candidates) + 1:02d}"
                    candidates.append(Candidate(cid, Config(g.rt.name, g.accelerator, prec, t, dict(opts), g.target),
                                                "base" if knob is None else "knob", knob))
    if device is None:
        default = default_config(model)
    return SearchSpace(model, name, candidates, default, skipped, notes, first)
