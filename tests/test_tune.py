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
from edgekit.cli.codes import NOTHING
from edgekit.errors import DeviceUnavailableError, InputError, InvalidOptionError
from edgekit.models.formats import ModelFile, open_model
from edgekit.plan import Config, Plan, check
from edgekit.registry import get_runtime, register_runtime, unregister_runtime
from edgekit.runtime import Runtime, RuntimeInfo, Session
from edgekit.testing.bundles import write_bundle
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
    res = CliRunner().invoke(cli, ["tune", str(env), "--runtime", CRASH, "--threads", "1", "--budget", "10",
                                   "--no-cache", "-q"])
    assert res.exit_code == NOTHING and "failed: crash" in res.output and "Traceback" not in res.output, res.output


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


# --- bundles: the task-aware check through the bundle's post-processing ---------------------------

SHIFT = "tune-boxshift"


class BoxShift(PlantedWrong):
    """ONNX Runtime's outputs plus 3: within a loose element-wise bound (atol=10), but boxes 3 px too large."""

    name = SHIFT
    default_info = _info(SHIFT)

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        return _Shifted(get_runtime("onnxruntime").open(model, threads=threads), 3.0)


def _tiny_ssd(folder: Path) -> Path:
    """A detection bundle around a project-built SSD-like model: 32x32 RGB in, 4 anchors (stride 16), one class.

    Each 16x16 quadrant's mean colour gives a box centred on its anchor, (4 + 16 R) x (4 + 16 G) px, with
    logit 20 R - 6: reddish quadrants are detections.
    """
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.testing.onnx_models import save_onnx

    w = np.zeros((5, 3, 1, 1), np.float32)
    w[2, 0], w[3, 1], w[4, 0] = 16.0, 16.0, 20.0
    b = np.array([0, 0, 4, 4, -6], np.float32)
    nodes = [helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
             helper.make_node("Conv", ["pooled", "w", "b"], ["raw"]),
             helper.make_node("Reshape", ["raw", "shape"], ["flat"]),
             helper.make_node("Transpose", ["flat"], ["rows"], perm=[0, 2, 1]),
             helper.make_node("Split", ["rows", "split"], ["boxes", "scores"], axis=2)]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([1, 5, 4], np.int64), "shape"),
             numpy_helper.from_array(np.array([4, 1], np.int64), "split")]
    graph = helper.make_graph(nodes, "tiny_ssd", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                  [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 4, 4]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4, 1])], inits)
    folder.mkdir(parents=True)
    save_onnx(graph, folder / "tiny_ssd.onnx")
    anchors = {"strides": [16], "aspect_ratios": [1.0], "interpolated_scale_aspect_ratio": 0.0}
    write_bundle(folder, folder / "tiny_ssd.onnx",
                 inputs=[{"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}],
                 preprocess={"color": "rgb", "resize": "stretch", "mean": 0, "std": 255, "layout": "NCHW"},
                 postprocess={"kind": "ssd", "boxes": "boxes", "scores": "scores", "box_scale": [32.0] * 4,
                              "score_threshold": 0.5, "nms": "plain", "iou_threshold": 0.3, "max_detections": 10,
                              "labels": ["thing"], "anchors": anchors})
    return folder


@pytest.fixture(scope="module")
def ssd_bundle(env: Path) -> Iterator[Path]:
    register_runtime(BoxShift, replace=True)
    try:
        yield _tiny_ssd(env.parent / "ssd_bundle")
    finally:
        unregister_runtime(SHIFT)


BUNDLE_FAST = Settings(screen_s=0.2, confirm_s=1.0, max_round_s=0.3)


@pytest.fixture(scope="module")
def bundle_tuned(ssd_bundle: Path) -> TuneReport:
    # a loose element-wise bound: only the task-aware check can catch the shifted boxes
    return tune(bundle=ssd_bundle, runtimes=["onnxruntime", SHIFT], threads=[1], budget=12, settings=BUNDLE_FAST,
                tolerance=["atol=10"], cache_plan=False)


def test_bundle_report_has_the_task_aware_figures(bundle_tuned: TuneReport) -> None:
    report = bundle_tuned
    assert report.chosen is not None and report.chosen.runtime == "onnxruntime"
    acc = report.chosen.accuracy or {}
    assert acc["task"] == "detection" and acc["min_iou"] == pytest.approx(1.0)
    assert acc["unmatched_reference"] == 0 and acc["unmatched_candidate"] == 0 and acc["reference_count"] >= 1
    assert "synthetic image" in report.inputs and any("synthetic image" in n for n in report.notes)
    assert report.bundle is not None and report.bundle["kind"] == "ssd" and "IoU >= 0.9" in report.bundle["check"]
    data = json.loads(report.to_json())
    assert data["chosen"]["accuracy"]["min_iou"] == pytest.approx(1.0)


def test_bundle_gate_rejects_wrong_boxes_through_the_post_processing(bundle_tuned: TuneReport) -> None:
    wrong = _by_runtime(bundle_tuned, SHIFT)
    assert wrong and all(c.status == "rejected-accuracy" for c in wrong), [(c.status, c.reason) for c in wrong]
    acc = wrong[0].accuracy or {}
    assert acc["max_abs"] == pytest.approx(3.0, rel=1e-3)  # within atol=10: the raw gate alone would pass it
    assert acc["min_iou"] < 0.9 and "task check (ssd post-processing)" in (wrong[0].reason or "")
    assert "unmatched at IoU >= 0.9" in (wrong[0].reason or "")


def test_bundle_cli_usage_embed_and_iou_tolerance(ssd_bundle: Path, tmp_path: Path) -> None:
    import cv2

    runner = CliRunner()
    model = ssd_bundle / "tiny_ssd.onnx"
    both = runner.invoke(cli, ["tune", str(model), "--bundle", str(ssd_bundle)])
    assert both.exit_code == 2 and "not both" in both.output
    neither = runner.invoke(cli, ["tune"])
    assert neither.exit_code == 2 and "neither" in neither.output
    (tmp_path / "b.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an (empty) archive
    with pytest.raises(InvalidOptionError, match="archive"):
        tune(bundle=tmp_path / "b.zip", embed=True, device="auto", on_event=_no_events)
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:24, :32] = (0, 0, 230)  # a red top-left quadrant: one detection
    cv2.imwrite(str(tmp_path / "red.png"), frame)
    loose = tune(bundle=ssd_bundle, inputs=[str(tmp_path / "red.png")], runtimes=[SHIFT], threads=[1], budget=3,
                 tolerance=["atol=10", "iou=0.2"], settings=BUNDLE_FAST, cache=False, cache_plan=False)
    assert loose.chosen is not None and loose.chosen.runtime == SHIFT  # iou=0.2 lets the shifted box in
    acc = loose.chosen.accuracy or {}
    assert 0.2 <= acc["min_iou"] < 0.9 and acc["reference_count"] == 1 and "red.png" in loose.inputs
    res = runner.invoke(cli, ["tune", "--bundle", str(ssd_bundle), "--input", str(tmp_path / "red.png"), "--runtime",
                              "onnxruntime", "--threads", "1", "--budget", "3", "--device", "auto", "--embed",
                              "--format", "json", "-q", "--no-cache"])
    assert res.exit_code in (0, 3), res.output
    data = json.loads(res.stdout)
    embedded = Path(data["plan_embedded"])
    assert embedded.parent == ssd_bundle / "plans" and embedded.is_file()
    again = runner.invoke(cli, ["tune", "--bundle", str(ssd_bundle), "--runtime", SHIFT, "--device", "auto",
                                "--embed", "-q"])
    assert isinstance(again.exception, InvalidOptionError) and "already exists" in str(again.exception)
    with edgekit.load_bundle(ssd_bundle, device="auto") as pipe:  # the embedded plan is the one used
        assert pipe.placement.plan is not None and pipe.placement.runtime == "onnxruntime"
    embedded.unlink()
