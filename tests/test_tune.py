"""``edgekit tune``: the accuracy gate, crashing candidates, the report, the plan, the budget, bad inputs.

Real runtimes on a tiny model (conv_relu). Two test adapters are registered as plugins
(``register_runtime``; the isolated worker imports them from this module by name): one returns
the right outputs plus 1e-2, from a memo, so it is *faster* than ONNX Runtime and wrong; the
other is correct but made to segfault by the profiler's fault hook (``EDGEKIT_PROFILE_FAULT``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import edgekit
from edgekit.cli import cli
from edgekit.errors import DeviceUnavailableError, InputError, InvalidOptionError
from edgekit.models.formats import ModelFile, open_model
from edgekit.plan import Config, Plan, check
from edgekit.registry import get_runtime, register_runtime, unregister_runtime
from edgekit.runtime import Runtime, RuntimeInfo, Session
from edgekit.testing.onnx_models import build_onnx
from edgekit.tuning import TuneReport, tune
from edgekit.tuning.accuracy import judge, output_metrics, parse_tolerance, rule_for
from edgekit.tuning.search import Settings
from edgekit.tuning.space import search_space

WRONG, CRASH = "tune-wrong", "tune-crash"
FAST = Settings(confirm_s=2.0, max_round_s=0.6)


def _info(name: str) -> RuntimeInfo:
    return RuntimeInfo(name, f"test runtime {name} (over onnxruntime)", "onnxruntime", ("onnxruntime",), "tune-test",
                       ("onnx",), priority=90, accelerators={"cpu": "onnxruntime's CPU"})


class _Shifted(Session):
    """ONNX Runtime's outputs plus ``shift``, remembered per input: faster than running, and wrong."""

    def __init__(self, inner: Session, shift: float) -> None:
        super().__init__(inner.inputs, inner.outputs, options=inner.options)
        self._inner, self._shift, self._memo = inner, np.float32(shift), {}

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        key = b"".join(np.ascontiguousarray(feeds[s.name]).tobytes() for s in self.inputs)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = [o + self._shift for o in self._inner.run(feeds)]
        return hit


class PlantedWrong(Runtime):
    name = WRONG
    default_info = _info(WRONG)

    def accelerators(self) -> list[str]:
        return ["cpu"]

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        return _Shifted(get_runtime("onnxruntime").open(model, threads=threads), 1e-2)


class CrashTwin(PlantedWrong):
    """Correct (no shift), but its worker segfaults before loading (EDGEKIT_PROFILE_FAULT)."""

    name = CRASH
    default_info = _info(CRASH)

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        return _Shifted(get_runtime("onnxruntime").open(model, threads=threads), 0.0)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache, the fault hook armed for CRASH, both test runtimes registered; the model path."""
    folder = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(folder / "cache"))
        mp.setenv("EDGEKIT_PROFILE_FAULT", f"{CRASH}=segv")
        register_runtime(PlantedWrong, replace=True)
        register_runtime(CrashTwin, replace=True)
        try:
            yield build_onnx("conv_relu", folder / "conv_relu.onnx")
        finally:
            unregister_runtime(WRONG)
            unregister_runtime(CRASH)


@pytest.fixture(scope="module")
def tuned(env: Path) -> tuple[TuneReport, Path]:
    plan = env.parent / "plan.toml"
    report = tune(env, runtimes=["onnxruntime", WRONG, CRASH], threads=[1], budget=30, output=plan, settings=FAST)
    return report, plan


def _by_runtime(report: TuneReport, name: str) -> list[Any]:
    return [c for c in report.candidates if c.runtime == name]


def test_the_gate_rejects_a_faster_wrong_runtime_and_never_chooses_it(tuned: tuple[TuneReport, Path]) -> None:
    report, _ = tuned
    wrong = _by_runtime(report, WRONG)
    assert wrong and all(c.status == "rejected-accuracy" for c in wrong), [(c.status, c.reason) for c in wrong]
    assert all(c.accuracy and not c.accuracy["passed"] and c.accuracy["max_abs"] == pytest.approx(1e-2, rel=1e-3)
               for c in wrong)
    assert "max |out - ref|" in (wrong[0].reason or "")
    assert report.chosen is not None and report.chosen.runtime == "onnxruntime"
    assert report.runner_up is None or report.runner_up.runtime != WRONG


def test_a_crashing_candidate_is_failed_and_the_run_completes(tuned: tuple[TuneReport, Path]) -> None:
    report, _ = tuned
    crash = _by_runtime(report, CRASH)
    assert crash and all(c.status == "failed" for c in crash)
    assert "crash" in (crash[0].reason or "") and "SIGSEGV" in (crash[0].reason or "")
    assert report.chosen is not None and not report.partial


def test_json_report_has_the_documented_keys(tuned: tuple[TuneReport, Path]) -> None:
    report, plan = tuned
    data = json.loads(report.to_json())
    assert {"chosen", "candidates", "default", "speedup_vs_default", "plan"} <= set(data)
    assert {"runtime", "accelerator", "precision", "threads", "options", "p50_ms"} <= set(data["chosen"])
    assert data["chosen"]["p50_ms"] > 0 and data["plan"] == str(plan)
    assert all({"status", "p50_ms", "accuracy"} <= set(c) for c in data["candidates"])
    assert {c["status"] for c in data["candidates"]} <= {"chosen", "ok", "rejected-accuracy", "failed", "pruned"}
    assert [c["status"] for c in data["candidates"]].count("chosen") == 1
    assert data["default"]["runtime"] == "onnxruntime" and data["default"]["p50_ms"] > 0
    assert data["speedup_vs_default"] > 0 and data["random_inputs"] is True and "random" in data["inputs"]
    html = edgekit.tuning.report.to_html(report)
    assert "<svg" in html and "random inputs" in html and "<script" not in html


def test_the_plan_is_written_and_reads_back(tuned: tuple[TuneReport, Path], env: Path) -> None:
    report, path = tuned
    plan = Plan.read(path)
    c = report.chosen
    assert c is not None
    assert plan.chosen == Config(c.runtime, c.accelerator, c.precision, c.threads, c.options)
    assert plan.p50_ms == pytest.approx(c.p50_ms) and plan.accuracy["passed"] is True
    assert plan.default is not None and plan.default.runtime == "onnxruntime"
    assert check(plan, open_model(env)) == []
    with pytest.raises(InvalidOptionError, match="already exists"):  # before anything is measured
        tune(env, runtimes=["onnxruntime"], output=path, on_event=_no_events)


def test_a_confirmed_plan_is_cached_for_device_auto(tuned: tuple[TuneReport, Path], env: Path) -> None:
    report, _ = tuned
    if not report.confirmed:
        pytest.skip("the winner was not confirmed on this busy host, so its plan was not cached")
    assert report.plan_cached and Path(report.plan_cached).is_file()
    with edgekit.load(env, device="auto") as m:
        assert m.placement.plan is not None and m.placement.runtime == report.chosen.runtime  # type: ignore[union-attr]


def test_a_second_run_screens_from_the_cache(tuned: tuple[TuneReport, Path], env: Path) -> None:
    again = tune(env, runtimes=["onnxruntime"], threads=[1], budget=30, settings=FAST, cache_plan=False)
    assert any(c.cached for c in again.candidates if c.runtime == "onnxruntime")
    assert again.chosen is not None and again.chosen.rounds >= 2  # the winner is measured again in this run


def _no_events(ev: dict[str, Any]) -> None:
    raise AssertionError(f"nothing should be measured, got {ev}")


def test_inputs_that_do_not_fit_fail_before_any_measurement(env: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="shape"):
        tune(env, inputs={"x": np.zeros((1, 3, 9, 9), np.float32)}, on_event=_no_events)
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    with pytest.raises(InputError):
        tune(env, inputs=[f"x={tmp_path / 'bad.npy'}"], on_event=_no_events)
    with pytest.raises(InputError, match="no input"):
        tune(env, inputs={"nope": np.zeros((1, 3, 8, 8), np.float32)}, on_event=_no_events)


def test_a_folder_of_inputs_is_one_sample_each(env: Path, tmp_path: Path) -> None:
    from edgekit.tuning.tuner import prepare_samples

    for k in range(3):
        np.save(tmp_path / f"s{k}.npy", np.full((1, 3, 8, 8), k, np.float32))
    samples, text, random = prepare_samples(open_model(env), [f"x={tmp_path}"])
    assert len(samples) == 3 and not random and [float(s["x"].max()) for s in samples] == [0.0, 1.0, 2.0]


def test_no_candidate_that_runs_is_a_typed_error_listing_them(env: Path) -> None:
    with pytest.raises(DeviceUnavailableError) as info:
        tune(env, runtimes=[CRASH], threads=[1], budget=10, cache=False)
    assert f"{CRASH}/cpu fp32 threads=1: failed: crash" in str(info.value)


def test_budget_too_small_is_unconfirmed_with_exit_code_3(env: Path) -> None:
    res = CliRunner().invoke(cli, ["tune", str(env), "--runtime", "onnxruntime", "--threads", "1", "--budget", "0.5",
                                   "--no-cache", "--format", "json", "-q"])
    assert res.exit_code == 3, res.output
    data = json.loads(res.stdout)
    assert data["chosen"] is not None and data["confirmed"] is False and data["plan_cached"] is None


def test_ctrl_c_returns_a_partial_report(env: Path) -> None:
    def interrupt(ev: dict[str, Any]) -> None:
        if ev["event"] == "candidate":
            raise KeyboardInterrupt

    report = tune(env, runtimes=["onnxruntime"], threads=[1], budget=30, cache=False, on_event=interrupt)
    assert report.partial and report.exit_code == 130 and report.plan is None


# --- units: space, gate, tolerance -----------------------------------------------------------------

def test_the_space_varies_one_knob_at_a_time(env: Path) -> None:
    space = search_space(open_model(env), runtimes=["onnxruntime"], threads=[1, 2])
    tunables = get_runtime("onnxruntime").tunables
    knobs = [c for c in space.candidates if c.kind == "knob"]
    assert all(len(c.config.options) == 1 for c in knobs)
    assert len(space.candidates) == 2 * (1 + sum(len(v) - 1 for v in tunables.values()))
    assert space.default == Config("onnxruntime", "cpu", "fp32", space.default.threads, {})  # type: ignore[union-attr]
    assert any("int8" in n for n in space.notes)


def test_reduced_precision_uses_cosine_and_classes() -> None:
    ref = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    close = ref + 1e-3
    metrics = {"y": output_metrics(close, ref)}
    assert not judge(metrics, "fp32", {}, 1).passed  # 1e-3 is far beyond fp32's parity bound
    assert judge(metrics, "bf16", {}, 1).passed
    swapped = ref.copy()
    swapped[0, [ref[0].argmax(), ref[0].argmin()]] = swapped[0, [ref[0].argmin(), ref[0].argmax()]]
    verdict = judge({"y": output_metrics(swapped, ref)}, "fp16", {"*": {"cosine": 0.0}}, 1)
    assert not verdict.passed and "argmax" in (verdict.failed or "")


def test_tolerance_items() -> None:
    tol = parse_tolerance(["rtol=1e-3", "y:cosine=0.99"])
    assert rule_for("y", "fp16", tol).cosine == 0.99 and rule_for("z", "fp16", tol).cosine == 0.999
    assert rule_for("z", "fp32", tol).rtol == 1e-3
    with pytest.raises(InvalidOptionError, match="KEY=VALUE"):
        parse_tolerance(["loose"])
