"""The search: screen every configuration briefly, halve the field, confirm the winner with a tight CI.

Every measurement runs one candidate in the profiler's isolated worker
(:func:`edgekit.profiling.engine.measure_config`): a crash, a hang (``timeout``) or a load error
makes that candidate ``failed``, never the run. Steps, all within ``budget_s`` (wall time, the
reference included; a measurement that has started is finished, so a run may end a few seconds
late):

1. **reference**: the float32 reference runtime's outputs on every input sample, once. With a
   bundle (``task=``, :mod:`edgekit.tuning.task`) every gated candidate's outputs also go through
   the bundle's post-processing and are compared with the reference's results.
2. **screen** every (runtime, accelerator, precision) with the runtime's defaults at the thread
   count ``load()`` would use (the profile target's, else every core) for ``screen_s`` (0.3 s;
   earlier when the p50's CI is within ±2 % after 30 samples), running the accuracy gate on every
   sample. A result cached by an earlier run (:mod:`edgekit.tuning.store`) stands in for a screening.
3. **explore** around the best of the ``knob_groups`` (2) fastest (runtime, accelerator) groups —
   those within ``knob_margin`` (1.5x) of the fastest —, coordinate by coordinate: the other
   thread counts at its precision, then each one-knob variation at the best thread count, screened
   the same way. (A group whose defaults all failed gets its knob variations screened too: a
   setting may rescue it.) Everything else is ``pruned`` unmeasured, with the reason.
4. **successive halving** over the candidates that passed: keep the best ``1/eta`` (eta 3, at
   least 2), measure them again ``eta`` times longer (up to ``max_round_s``, 2 s), until 2 remain.
5. **confirm** the two finalists, then the default configuration (what ``load()`` runs without a
   plan), with the profiler's adaptive stopping: up to ``confirm_s`` (8 s) each, until the p50's
   95 % CI is within ±``rel_tol`` (2 %). The finalist with the better confirmed figure is chosen;
   it is *confirmed* when its CI got that tight. ``reserve`` (30 %) of the budget is kept for this
   step; a budget too small for it leaves the best so far unconfirmed.

At least one candidate is screened whatever the budget (there is always a best so far, unless
none runs). ``strategy="exhaustive"`` measures every candidate with the confirmation settings
instead (the benchmark's yardstick). Objectives: ``latency`` ranks by p50, ``throughput`` by the
mean latency (sequential inferences per second = 1000 / mean ms), ``memory`` by the worker's
peak RSS (ties by p50). Ctrl-C stops the search; what was measured comes back with ``partial``.

Example::

    outcome = Search(space, samples, tolerances, Settings(budget_s=60)).run()
    outcome.chosen.candidate.config.describe(), outcome.chosen.confirmed
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.plan import Config
from edgekit.profiling.engine import measure_config
from edgekit.profiling.inputs import load_arrays, save_arrays
from edgekit.profiling.stats import StoppingRule
from edgekit.tuning import store
from edgekit.tuning.accuracy import Accuracy, Tolerances, judge, measure_outputs
from edgekit.tuning.space import Candidate, SearchSpace
from edgekit.tuning.task import TaskCheck

__all__ = ["OBJECTIVES", "Measurement", "Outcome", "Search", "Settings", "Trial"]

OBJECTIVES = ("latency", "throughput", "memory")
Event = Callable[[dict[str, Any]], None]


@dataclass
class Settings:
    """The search's parameters (see the module docstring)."""

    budget_s: float = 120.0
    objective: str = "latency"
    strategy: str = "halving"  # or "exhaustive"
    screen_s: float = 0.3
    eta: int = 3
    max_round_s: float = 2.0
    knob_groups: int = 2
    knob_margin: float = 1.5
    confirm_s: float = 8.0
    rel_tol: float = 0.02
    reserve: float = 0.3
    timeout: float = 60.0
    cache: bool = True


@dataclass
class Measurement:
    """One measurement of a candidate (ms, MiB)."""

    p50_ms: float
    p50_ci_ms: tuple[float, float] | None
    mean_ms: float
    peak_rss_mb: float | None
    n: int
    stop_reason: str
    ci_half_width: float | None = None


@dataclass
class Trial:
    """What the search knows about one candidate."""

    candidate: Candidate
    status: str = "pruned"  # chosen | ok | rejected-accuracy | failed | pruned
    reason: str | None = "not measured"
    measurement: Measurement | None = None
    accuracy: Accuracy | None = None
    precision_used: str | None = None
    version: str | None = None
    rounds: int = 0
    cached: bool = False
    confirmed: bool = False
    passed: bool = False  # measured and through the gate


@dataclass
class Outcome:
    """What the search found; ``chosen``/``runner_up``/``default`` are trials (``default`` may be outside the space)."""

    trials: list[Trial]
    chosen: Trial | None
    runner_up: Trial | None
    default: Trial | None
    reference: Config
    reference_version: str | None
    partial: bool
    elapsed_s: float
    measured: int
    rounds: list[dict[str, Any]] = field(default_factory=list)


def score(m: Measurement, objective: str) -> tuple[float, float]:
    """Lower is better: (the objective's figure, p50 as tie-break).

    >>> score(Measurement(2.0, None, 3.0, 50.0, 10, "ci"), "throughput")
    (3.0, 2.0)
    """
    first = {"latency": m.p50_ms, "throughput": m.mean_ms}.get(objective, m.peak_rss_mb or math.inf)
    return first, m.p50_ms


class Search:
    """One tuning run over ``space``; :meth:`run` returns the :class:`Outcome`."""

    def __init__(self, space: SearchSpace, samples: list[dict[str, np.ndarray]], tolerances: Tolerances,
                 settings: Settings, reference: Config, *, on_event: Event | None = None,
                 task: TaskCheck | None = None) -> None:
        self.space, self.samples, self.tol, self.s, self.ref_config = space, samples, tolerances, settings, reference
        self.emit = on_event or (lambda e: None)
        self.task = task
        self.trials = [Trial(c) for c in space.candidates]
        self.digest = store.inputs_digest(samples) + (f"-task-{task.key}" if task is not None else "")
        self.t0 = time.perf_counter()
        self.overhead = 0.6  # seconds a measurement costs beyond its duration (process, import, load), learned
        self.measured = 0
        self.rounds: list[dict[str, Any]] = []
        self.refs: list[dict[str, np.ndarray]] = []
        self.ref_version: str | None = None
        self.work = Path(".")
        self.sample_paths: list[Path] = []

    # -- bookkeeping ---------------------------------------------------------------------------
    def left(self) -> float:
        return self.s.budget_s - (time.perf_counter() - self.t0)

    def _key(self, t: Trial) -> tuple[float, float]:
        assert t.measurement is not None
        return score(t.measurement, self.s.objective)

    def _passed(self, trials: list[Trial]) -> list[Trial]:
        return sorted((t for t in trials if t.passed), key=self._key)

    # -- one measurement -----------------------------------------------------------------------
    def _run(self, config: Config, tag: str, duration: float, *, gate: bool, rule: StoppingRule,
             min_time: float = 0.0) -> tuple[Any, list[dict[str, np.ndarray]]]:
        work = self.work
        outs = [work / f"{tag}-out0.npz"] + [work / f"{tag}-out{k}.npz" for k in range(1, len(self.samples))]
        pairs = list(zip(self.sample_paths[1:], outs[1:])) if gate else []
        t0 = time.perf_counter()
        row = measure_config(self.space.model, config, inputs=self.sample_paths[0], outputs=outs[0], gate=pairs,
                             duration=duration, warmup=3, rule=rule, min_time=min_time, timeout=self.s.timeout,
                             job_id=tag)
        self.measured += 1
        if row.status == "ok" and row.latency is not None:
            spent = time.perf_counter() - t0 - row.latency.measure_s
            self.overhead = 0.7 * self.overhead + 0.3 * max(spent, 0.05)
        if row.status in ("partial", "interrupted"):
            raise KeyboardInterrupt
        outputs = [load_arrays(p) for p in (outs if gate else outs[:1]) if p.exists()]
        return row, outputs

    def _measure(self, t: Trial, duration: float, *, gate: bool, final: bool = False) -> bool:
        rule = StoppingRule(rel_tol=self.s.rel_tol)
        c = t.candidate
        row, outputs = self._run(c.config, f"{c.id}-r{t.rounds}", duration, gate=gate, rule=rule,
                                 min_time=0.5 if final and duration >= 1.0 else 0.0)
        t.rounds += 1
        t.version = row.version or t.version
        if row.status != "ok" or row.latency is None:
            t.status, t.passed, t.measurement = "failed", False, None
            t.reason = f"{row.status}: {(row.error or 'no latency samples').strip()[:400]}"
            self.emit({"event": "candidate", "id": c.id, "config": c.config.describe(), "status": t.status,
                       "reason": t.reason})
            return False
        lat, mem = row.latency, row.memory
        peaks = [v for v in ((mem.peak_load_mb, mem.peak_run_mb) if mem else ()) if v is not None]
        t.measurement = Measurement(lat.p50, lat.p50_ci, lat.mean, max(peaks) if peaks else None, lat.n,
                                    lat.stop_reason, lat.ci_half_width)
        t.precision_used = row.precision or c.config.precision
        if gate:
            metrics, why = measure_outputs(outputs, self.refs)
            t.accuracy = judge(metrics, t.precision_used, self.tol, len(self.samples), why)
            if self.task is not None and why is None:
                t.accuracy = self.task.apply(t.accuracy, self.task.measure(outputs, self.refs, self.tol), self.tol)
        t.passed = bool(t.accuracy and t.accuracy.passed)
        if t.accuracy is not None and not t.accuracy.passed:
            t.status, t.reason = "rejected-accuracy", t.accuracy.failed
        else:
            t.status, t.reason = "ok", None
        if final:
            t.confirmed = lat.ci_half_width is not None and lat.ci_half_width <= self.s.rel_tol
        if self.s.cache and t.accuracy is not None:
            store.save(self._cache_key(t), {"p50_ms": lat.p50, "p50_ci_ms": lat.p50_ci, "mean_ms": lat.mean,
                                            "peak_rss_mb": t.measurement.peak_rss_mb, "n": lat.n,
                                            "stop_reason": lat.stop_reason, "precision_used": t.precision_used,
                                            "runtime_version": t.version, "accuracy": t.accuracy.to_dict()})
        self.emit({"event": "candidate", "id": c.id, "config": c.config.describe(), "status": t.status,
                   "p50_ms": lat.p50, "round": t.rounds, "reason": t.reason})
        return t.passed

    def _cache_key(self, t: Trial) -> str:
        from edgekit.registry import get_runtime

        version = get_runtime(t.candidate.config.runtime).version()
        return store.entry_key(self.space.model, t.candidate.config, version=version, inputs_digest=self.digest,
                               objective=self.s.objective)

    def _from_cache(self, t: Trial) -> bool:
        if not self.s.cache:
            return False
        try:
            entry = store.load(self._cache_key(t))
            if entry is None:
                return False
            ci = entry.get("p50_ci_ms")
            measurement = Measurement(float(entry["p50_ms"]), (float(ci[0]), float(ci[1])) if ci else None,
                                      float(entry["mean_ms"]), entry.get("peak_rss_mb"), int(entry["n"]),
                                      str(entry["stop_reason"]))
            acc = Accuracy.from_dict(entry["accuracy"])
            if self.task is not None and acc.task is None and acc.passed:
                return False  # measured without the task-aware check
        except Exception:  # noqa: BLE001 - an entry that cannot be read is no entry
            return False
        t.measurement = measurement
        t.precision_used, t.version, t.cached = entry.get("precision_used"), entry.get("runtime_version"), True
        t.accuracy = judge(acc.outputs, t.precision_used or t.candidate.config.precision, self.tol, acc.samples,
                           None if acc.outputs or acc.passed else acc.failed)
        if self.task is not None:
            t.accuracy = self.task.apply(t.accuracy, acc.task, self.tol)
        t.passed = t.accuracy.passed
        t.status, t.reason = ("ok", "screened from the cache") if t.passed else ("rejected-accuracy", t.accuracy.failed)
        t.rounds = 1
        return True

    # -- the steps -----------------------------------------------------------------------------
    def _reference(self) -> None:
        from edgekit.errors import InferenceError

        self.emit({"event": "stage", "stage": "reference", "config": self.ref_config.describe()})
        row, outputs = self._run(self.ref_config, "reference", 0.0, gate=True, rule=StoppingRule(rel_tol=0.0))
        if row.status != "ok" or len(outputs) != len(self.samples):
            raise InferenceError(
                f"the float32 reference {self.ref_config.describe()} could not run {self.space.model.path.name} "
                f"({row.status}: {row.error}); every candidate's outputs are compared with it. Pass another "
                "reference runtime (--reference RUNTIME / reference=), one that runs this model in float32.")
        self.refs, self.ref_version = outputs, row.version

    def _screen(self, trials: list[Trial]) -> None:
        for t in trials:
            if self._from_cache(t):
                self.emit({"event": "candidate", "id": t.candidate.id, "config": t.candidate.config.describe(),
                           "status": t.status, "p50_ms": t.measurement.p50_ms if t.measurement else None,
                           "cached": True})
                continue
            if self.left() < self.s.budget_s * self.s.reserve + self.overhead + self.s.screen_s and \
                    any(x.passed for x in self.trials):
                t.reason = "not screened: the budget ran out (--budget)"
                continue
            self._measure(t, self.s.screen_s, gate=True)

    def _explore(self) -> None:
        """Steps 2 and 3: each group's precisions at its first thread count, then threads and knobs around the best."""
        first = self.space.first_threads
        base = [t for t in self.trials if t.candidate.kind == "base"]
        knobs = [t for t in self.trials if t.candidate.kind == "knob"]
        self._screen([t for t in base if t.candidate.config.threads == first.get(t.candidate.group)])
        best: dict[tuple[str, str], Trial] = {}
        for t in self._passed(base):
            best.setdefault(t.candidate.group, t)
        ranked = sorted(best.values(), key=self._key)
        keep = [t for t in ranked[: self.s.knob_groups] if self._key(t)[0] <= self._key(ranked[0])[0] * self.s.knob_margin]
        around: list[Trial] = []
        for b in keep:  # threads at the best precision, then the knobs at the best thread count
            c = b.candidate.config
            self._screen([t for t in base if t.candidate.group == b.candidate.group and t is not b
                          and t.candidate.config.precision == c.precision])
            best_of = self._passed([t for t in base if t.candidate.group == b.candidate.group
                                        and t.candidate.config.precision == c.precision])[0]
            around.append(best_of)
        for group in dict.fromkeys(t.candidate.group for t in base):  # a group whose defaults all failed: try knobs
            tried = [t for t in base if t.candidate.group == group and t.rounds]
            if group not in best and tried and all(t.status == "failed" for t in tried):
                around.append(tried[0])
        self.emit({"event": "stage", "stage": "explore", "around": [t.candidate.config.describe() for t in around]})
        keys = {t.candidate.base_key for t in around}
        self._screen([t for t in knobs if t.candidate.base_key in keys])
        names = ", ".join(t.candidate.config.describe() for t in around) or "none"
        for t in self.trials:
            if not t.rounds and t.reason == "not measured":
                t.reason = f"not screened: threads and settings were explored only around the fastest ({names})"

    def _halving(self) -> list[Trial]:
        pool = self._passed(self.trials)
        duration, r = self.s.screen_s, 1
        while len(pool) > 2:
            keep = max(2, math.ceil(len(pool) / self.s.eta))
            for t in pool[keep:]:
                t.status, t.reason = "pruned", f"halving round {r}: not among the {keep} best of {len(pool)}"
            pool = pool[:keep]
            if keep <= 2:
                break
            duration = min(duration * self.s.eta, self.s.max_round_s)
            if self.left() - self.s.budget_s * self.s.reserve < keep * (duration + self.overhead):
                self.rounds.append({"round": r, "kept": keep, "duration_s": duration, "measured": False})
                break
            self.emit({"event": "stage", "stage": f"round {r}", "kept": keep, "duration_s": duration})
            self.rounds.append({"round": r, "kept": keep, "duration_s": duration, "measured": True})
            for t in pool:
                self._measure(t, duration, gate=False)
            pool = self._passed(pool)
            r += 1
        return pool

    def _confirm(self, finalists: list[Trial], default: Trial | None) -> None:
        todo = finalists + ([default] if default is not None and default not in finalists else [])
        self.emit({"event": "stage", "stage": "confirm", "candidates": [t.candidate.config.describe() for t in todo]})
        for i, t in enumerate(todo):
            each = (self.left() - self.overhead * (len(todo) - i)) / (len(todo) - i)
            duration = min(self.s.confirm_s, each)
            if duration < 0.5:
                t.reason = (t.reason or "") + (" " if t.reason else "") + "(not confirmed: the budget ran out)"
                continue
            self._measure(t, duration, gate=t.accuracy is None, final=True)

    def _exhaustive(self) -> None:
        for t in self.trials:
            self._measure(t, self.s.confirm_s, gate=True, final=True)

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Search (see the module docstring); Ctrl-C returns what was measured, ``partial``."""
        partial = False
        default = self._default_trial()
        with tempfile.TemporaryDirectory(prefix="edgekit-tune-") as tmp:
            self.work = Path(tmp)
            for k, sample in enumerate(self.samples):
                path = self.work / f"sample{k}.npz"
                save_arrays(path, sample)
                self.sample_paths.append(path)
            finalists: list[Trial] = []
            try:
                self._reference()
                if self.s.strategy == "exhaustive":
                    self._exhaustive()
                    finalists = self._passed(self.trials)[:2]
                    if default is not None and default not in self.trials:
                        self._measure(default, self.s.confirm_s, gate=True, final=True)
                else:
                    self.emit({"event": "stage", "stage": "screen"})
                    self._explore()
                    finalists = self._halving()[:2]
                    self._confirm(finalists, default)
            except KeyboardInterrupt:
                partial = True
        return self._outcome(finalists, default, partial)

    def _default_trial(self) -> Trial | None:
        d = self.space.default
        if d is None:
            return None
        same = next((t for t in self.trials if _same(t.candidate.config, d)), None)
        return same or Trial(Candidate("default", d))

    def _outcome(self, finalists: list[Trial], default: Trial | None, partial: bool) -> Outcome:
        confirmed_ones = [t for t in finalists if t.passed and t.confirmed]
        ranked = sorted(confirmed_ones, key=self._key) + sorted((t for t in self._passed(self.trials)
                                                                if t not in confirmed_ones), key=self._key)
        chosen = ranked[0] if ranked else None
        runner = next((t for t in ranked[1:]), None)
        for t in self.trials:
            if t.status == "ok" and t not in (chosen, runner) and t is not default:
                t.status = "pruned"
                t.reason = "; ".join(filter(None, [t.reason, "passed the gate; not a finalist"]))
        if chosen is not None:
            chosen.status = "chosen"
        return Outcome(self.trials, chosen, runner, default, self.ref_config, self.ref_version, partial,
                       time.perf_counter() - self.t0, self.measured, self.rounds)


def _same(a: Config, b: Config) -> bool:
    return (a.runtime, a.accelerator, a.precision, a.threads, a.options) == \
        (b.runtime, b.accelerator, b.precision, b.threads, b.options)
