"""``edgekit profile``: statistics, FLOPs, isolation (real segfaults and hangs), parity, schema, --compare, Ctrl-C.

Runs use the bundled sample with short budgets; the whole module takes well under a minute
on two cores. Faults are real: ``EDGEKIT_PROFILE_FAULT`` makes a worker read address 0
(SIGSEGV) or sleep forever; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli import cli
from edgekit.errors import ReportError
from edgekit.isolation import IsolatedFailure, run_isolated
from edgekit.models.flops import count_flops
from edgekit.profiling import SCHEMA_VERSION, ProfileReport, profile
from edgekit.profiling.html import to_html
from edgekit.profiling.inputs import adapt_layout, image_input, make_inputs, random_input
from edgekit.profiling.render import to_csv, to_markdown
from edgekit.profiling.schema import validate
from edgekit.profiling.stats import PERCENTILE_DEFINITION, StoppingRule, median_ci, median_ci_ranks, summarize
from edgekit.profiling.worker import FAULT_ENV
from edgekit.registry import get_runtime
from edgekit.tensors import TensorSpec

FAST = {"duration": 0.3, "warmup": 3}
ORIGINAL_CACHE = os.environ.get("EDGEKIT_CACHE")  # real models are fetched into the user's cache, once


def installed(*names: str) -> bool:
    return all(get_runtime(n).is_installed() for n in names)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A private EDGEKIT_CACHE (the sample and MNN conversions), inherited by the worker processes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv(FAULT_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def report() -> ProfileReport:
    """ONNX Runtime (fp32, the reference), OpenVINO forced to bf16 and OpenCV (fp32) on the sample."""
    return profile(runtimes=["onnxruntime", "openvino", "opencv"], precision={"openvino": "bf16"}, **FAST)


# -- statistics ---------------------------------------------------------------------------------

def test_percentiles_are_hyndman_fan_type_7() -> None:
    assert PERCENTILE_DEFINITION == "Hyndman-Fan type 7 (numpy 'linear')"
    s = summarize([50.0, 15.0, 40.0, 20.0, 35.0])  # sorted 15 20 35 40 50
    assert s.p50 == 35.0
    assert s.p90 == pytest.approx(46.0)  # h = 4 * 0.9 = 3.6: 40 + 0.6 * (50 - 40)
    assert s.p99 == pytest.approx(49.6)  # h = 3.96: 40 + 0.96 * 10
    assert summarize([1.0, 2.0, 3.0, 4.0]).p90 == pytest.approx(3.7)  # h = 2.7: 3 + 0.7 * (4 - 3)
    x = np.random.default_rng(1).lognormal(size=501)
    s = summarize(x)
    assert (s.p50, s.p90, s.p99) == pytest.approx(tuple(np.percentile(x, [50, 90, 99], method="linear")))
    assert StoppingRule().half_width(x) == pytest.approx(s.ci_half_width)  # the same p50 and CI


def test_median_ci_is_the_exact_order_statistic_interval() -> None:
    assert median_ci_ranks(5) is None  # P(all 5 on one side) = 1/16 > 5%: no 95% interval exists
    assert median_ci_ranks(6) == (1, 6)
    assert median_ci_ranks(10) == (2, 9)  # published tables: n=10 -> x(2), x(9)
    assert median_ci_ranks(100) == (40, 61)
    assert median_ci([float(i) for i in range(1, 101)]) == (40.0, 61.0)
    s = summarize(np.arange(1.0, 101.0))
    assert (s.p50, s.min, s.max, s.p50_ci) == (50.5, 1.0, 100.0, (40.0, 61.0))
    assert (s.p50_ci_low, s.p50_ci_high) == (40.0, 61.0)
    assert s.throughput_ips == pytest.approx(1000 / 50.5)
    assert s.measure_s == pytest.approx(5.05) and s.stop_reason == "budget"
    assert s.samples_ms == [float(i) for i in range(1, 101)] and not s.samples_truncated


def test_summarize_keeps_at_most_max_samples_evenly() -> None:
    s = summarize(np.arange(1.0, 5001.0), stop_reason="ci", keep=100)
    assert s.n == 5000 and len(s.samples_ms) == 100 and s.samples_truncated and s.stop_reason == "ci"
    assert s.samples_ms[0] == 1.0 and s.samples_ms[-1] == 5000.0  # the first and last, in time order
    assert s.measure_s == pytest.approx(sum(range(1, 5001)) / 1000)


def test_stopping_rule() -> None:
    rule = StoppingRule(rel_tol=0.02, min_samples=30)
    assert not rule.satisfied([1.0] * 29)  # too few
    assert rule.satisfied([1.0] * 30)
    wide = np.random.default_rng(0).uniform(0.5, 1.5, 40)  # CI of the median ~ ±15%
    assert not rule.satisfied(wide)
    tight = 1.0 + np.random.default_rng(0).uniform(-0.01, 0.01, 40)
    assert rule.satisfied(tight)
    assert not StoppingRule(rel_tol=0.0).satisfied([1.0] * 1000)  # --ci 0: use the whole budget


# -- FLOPs and the sample -----------------------------------------------------------------------

def test_flops_of_the_conformance_conv_model_are_exact(build) -> None:
    # conv_relu: x[1,3,8,8] * w[4,3,3,3], pads 1 -> y[1,4,8,8] (256 outputs)
    # MACs = 256 outputs x 3 in-channels x 3 x 3 = 6912; Conv FLOPs = 2 x 6912 + 256 (bias) = 14080
    # Relu: 1 per output element = 256;  total 14336
    fc = count_flops(build("conv_relu", "onnx"))
    assert (fc.macs, fc.flops, fc.uncounted) == (6912, 14336, ())
    assert fc.by_type() == [("Conv", 14080, 6912), ("Relu", 256, 0)]
    # matmul_add_softmax: [2,16] x [16,10]: MACs 320, FLOPs 640; Add 20; Softmax 5 x 20 = 100
    assert count_flops(build("matmul_add_softmax", "onnx")).flops == 760


def test_sample_twins_compute_the_same_function() -> None:
    import edgekit
    from edgekit.models.sample import sample_cnn_reference, sample_model

    onnx_path, tflite_path = sample_model("onnx"), sample_model("tflite")
    assert sample_model("onnx") == onnx_path  # built once, then reused from the cache
    x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
    with edgekit.load(onnx_path, runtime="onnxruntime") as m:
        a = m(x)["probs"]
    with edgekit.load(tflite_path, runtime="litert") as m:
        b = m(x.transpose(0, 2, 3, 1))["probs"]
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(a, sample_cnn_reference(x), atol=1e-4)
    fo, ft = count_flops(onnx_path), count_flops(tflite_path)
    assert (fo.flops, fo.macs) == (ft.flops, ft.macs) and not fo.uncounted and not ft.uncounted


# -- inputs -------------------------------------------------------------------------------------

def test_inputs_random_image_and_layout(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    q = random_input(TensorSpec("q", (1, 8), np.dtype(np.int8), (0.1, 3)), rng)
    assert q.dtype == np.int8 and q.min() >= -128 and q.max() <= 127
    f = random_input(TensorSpec("f", ("batch", 4), np.dtype(np.float32)), rng)
    assert f.shape == (1, 4) and f.min() >= -1 and f.max() < 1
    img = np.zeros((50, 80, 3), np.uint8)
    img[..., 2] = 255  # pure red in BGR
    cv2.imwrite(str(tmp_path / "red.png"), img)
    nchw = image_input(TensorSpec("image", (1, 3, 96, 96), np.dtype(np.float32)), tmp_path / "red.png")
    assert nchw.shape == (1, 3, 96, 96) and nchw[0, 0].min() == 1.0 and nchw[0, 2].max() == 0.0  # RGB, /255
    nhwc = TensorSpec("image", (1, 96, 96, 3), np.dtype(np.float32), layout="NHWC")
    assert adapt_layout(nhwc, nchw).shape == (1, 96, 96, 3)
    np.save(tmp_path / "x.npy", nchw)
    feeds, sources = make_inputs([nhwc], given=[("image", tmp_path / "x.npy")])
    assert feeds["image"].shape == (1, 96, 96, 3) and sources["image"] == "file:x.npy"


# -- isolation ----------------------------------------------------------------------------------

def test_run_isolated_returns_results_and_errors_as_values() -> None:
    from edgekit.models.sample import sample_model

    specs = run_isolated("edgekit.profiling.worker:describe", (str(sample_model("onnx")),), timeout=60)
    assert specs[0]["name"] == "image" and specs[0]["shape"] == [1, 3, 96, 96]
    failed = run_isolated("edgekit.profiling.worker:describe", ("/no/such/model.onnx",), timeout=60)
    assert isinstance(failed, IsolatedFailure) and failed.kind == "error"
    assert failed.error_type == "ModelNotFoundError" and "model.onnx" in failed.message


def test_crash_and_hang_become_error_rows_while_others_are_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "openvino=segv,opencv=hang")
    t0 = time.perf_counter()
    rep = profile(runtimes=["openvino", "opencv", "onnxruntime"], timeout=5, op_profile=False, **FAST)
    rows = {r.runtime: r for r in rep.results}
    assert rows["openvino"].status == "crash" and "SIGSEGV" in rows["openvino"].error
    assert "Segmentation fault" in (rows["openvino"].output_tail or "")  # faulthandler's report is kept
    assert rows["opencv"].status == "timeout" and "timeout" in rows["opencv"].error
    assert rows["onnxruntime"].status == "ok" and rows["onnxruntime"].latency.n > 0
    assert time.perf_counter() - t0 < 30
    validate(json.loads(rep.to_json()))
    assert "CRASH SIGSEGV" in to_html(rep) and "TIMEOUT" in to_markdown(rep)


# -- the report ---------------------------------------------------------------------------------

def test_report_rows_measure_everything(report: ProfileReport) -> None:
    assert [r.runtime for r in report.results] == ["onnxruntime", "openvino", "opencv"]
    for r in report.results:
        assert r.status == "ok", r.error
        lat = r.latency
        assert lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max and lat.n >= 30
        assert lat.p50_ci_low <= lat.p50 <= lat.p50_ci_high
        assert r.load_ms > 0 and r.first_ms > 0 and r.gflops_per_s > 0
        assert r.memory.rss_after_load_mb > r.memory.rss_before_load_mb > 0 and r.memory.peak_run_mb > 0
        assert r.placement["runtime"] == r.runtime and r.version
    assert report.results[0].ops and report.results[0].ops[0].type  # ORT's profiler
    assert report.results[1].ops and report.results[1].ops[0].kernel  # OpenVINO perf counts (kernel names)
    assert report.models[0].flops == 9503036 and report.provenance["cpu"]


def test_parity_flags_openvino_bf16_against_ort_fp32(report: ProfileReport) -> None:
    ort, ov, cv = report.results
    assert report.reference == ort.id and ort.parity.max_abs == 0.0
    if ov.precision != "bf16":
        pytest.skip(f"this CPU has no bf16 arithmetic: OpenVINO computed in {ov.precision}")
    assert not ov.parity.within_tolerance and ov.parity.max_abs > 1e-4  # bf16: ~2.5e-4 on the sample's probs
    assert cv.precision == "fp32" and cv.parity.within_tolerance and cv.parity.max_abs < 1e-6
    assert cv.parity.cosine > 0.999999 and cv.parity.argmax_agreement == 1.0


def test_json_schema_round_trip_and_validation(report: ProfileReport) -> None:
    text = report.to_json()
    data = json.loads(text)
    validate(data)
    again = ProfileReport.from_json(text)
    assert again.to_dict() == data and again.schema_version == SCHEMA_VERSION
    broken = json.loads(text)
    del broken["results"][0]["status"]
    broken["results"][1]["latency"]["p50"] = "fast"
    with pytest.raises(ReportError, match=r"missing required key 'status'.*latency.*p50"):
        validate(broken)
    newer = dict(data, schema_version="2.0")
    with pytest.raises(ReportError, match="reads 1.x"):
        validate(newer)


def test_renderers(report: ProfileReport) -> None:
    csv_text = to_csv(report)
    assert csv_text.splitlines()[0].startswith("id,runtime,version") and len(csv_text.splitlines()) == 4
    md = to_markdown(report)
    assert "| onnxruntime" in md and "beyond tol" in md and "Provenance" in md
    page = to_html(report)
    assert page.count("<svg") >= 3 and "<script" not in page.lower()
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no external resources


def test_default_run_measures_every_installed_runtime_on_the_sample() -> None:
    from edgekit.registry import iter_runtimes

    rep = profile(duration=0.2, warmup=2, op_profile=False)
    expected = {rt.name for rt in iter_runtimes()
                if rt.is_installed() and rt.picked_by_default
                and any(rt.can_read(f) and not rt.not_ready(f) for f in ("onnx", "tflite"))}
    rows = {r.runtime: r for r in rep.results}
    assert set(rows) == expected
    for r in rows.values():
        assert r.status == "ok" and r.latency.n > 0 and r.parity.within_tolerance, (r.id, r.error, r.parity)
    if "litert" in rows:
        assert rows["litert"].format == "tflite"  # the TFLite twin, fed the same data transposed to NHWC
    assert {m.format for m in rep.models} == {r.format for r in rows.values()}


def test_device_profile_measures_each_target() -> None:
    rep = profile(device="generic-x86-64", runtimes=["onnxruntime", "openvino"], op_profile=False, **FAST)
    assert rep.provenance["device"] == "generic-x86-64"
    rows = {r.runtime: r for r in rep.results}
    assert set(rows) == {"onnxruntime", "openvino"}
    for r in rows.values():
        assert r.status == "ok", r.error
        assert r.placement["device"] == "generic-x86-64" and r.target.split()[1] == f"{r.runtime}/cpu"
        assert r.precision == "fp32"  # the profile's targets ask OpenVINO for f32


@pytest.mark.slow
@pytest.mark.parametrize(("name", "inputs"), [("blazeface", ["--input", "input={img}"]),
                                              ("ppocr-det", ["--input", "x={img}", "--shape", "x=1x3x320x320"])])
def test_real_models_every_installed_runtime_produces_a_row(name: str, inputs: list[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    from edgekit.testing.real_models import fetch

    with monkeypatch.context() as mp:
        if ORIGINAL_CACHE is None:
            mp.delenv("EDGEKIT_CACHE")
        else:
            mp.setenv("EDGEKIT_CACHE", ORIGINAL_CACHE)
        model = fetch(name)
    img = np.full((240, 320, 3), 235, np.uint8)
    cv2.putText(img, "edgekit", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (20, 20, 20), 3)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    out = tmp_path / "run.json"
    args = [a.format(img=tmp_path / "img.png") for a in inputs]
    res = CliRunner().invoke(cli, ["profile", str(model), "--duration", "0.2", "--no-op-profile", "-q",
                                   "--format", "json", "-o", str(out), *args])
    assert res.exit_code == 0, res.output
    rep = ProfileReport.from_json(out.read_text())
    fmt = rep.models[0].format
    assert rep.models[0].inputs[0]["source"] == "image:img.png"
    readers = {rt for rt in ("onnxruntime", "litert", "openvino", "opencv", "mnn")
               if get_runtime(rt).is_installed() and get_runtime(rt).can_read(fmt)}
    assert {r.runtime for r in rep.results} == readers
    for r in rep.results:
        assert r.status == "ok" and r.latency.n > 0, (r.id, r.error)
        assert r.parity.within_tolerance, (r.id, r.parity)  # fp32 everywhere: OpenVINO is asked for f32


# -- the command --------------------------------------------------------------------------------

def test_compare_exits_1_on_regression_and_0_within(report: ProfileReport, tmp_path: Path) -> None:
    def baseline(factor: float) -> Path:
        data = report.to_dict()
        for r in data["results"]:
            r["latency"]["p50"] *= factor
        path = tmp_path / f"base-{factor}.json"
        path.write_text(json.dumps(data))
        return path

    args = ["profile", "-r", "onnxruntime", "--duration", "0.3", "--no-op-profile", "-q", "--format", "json",
            "-o", str(tmp_path / "now.json"), "--tolerance", "10%"]
    slow = CliRunner().invoke(cli, [*args, "--compare", str(baseline(0.2))])  # baseline 5x faster: regression
    assert slow.exit_code == 1, slow.output
    assert "REGRESSION" in slow.output and "onnxruntime" in slow.output
    fine = CliRunner().invoke(cli, [*args, "--compare", str(baseline(5.0))])  # baseline slower: fine
    assert fine.exit_code == 0, fine.output
    assert "no regression" in fine.output


def test_sigint_leaves_a_valid_partial_json(tmp_path: Path) -> None:
    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgekit", "profile", "-r", "onnxruntime", "-r", "opencv", "--duration", "30",
         "--ci", "0", "--format", "json", "-o", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=dict(os.environ),
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "onnxruntime" in line and "measuring" in line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    rep = ProfileReport.from_json(out.read_text())  # validates against the schema
    ort, cv = rep.results
    assert rep.partial and ort.status == "partial" and ort.latency.stop_reason == "interrupted"
    assert ort.latency.n > 10 and cv.status == "skipped"


def test_the_parity_reference_is_always_a_float32_run() -> None:
    """-p bf16 with no float32 row: no row is made the reference (a bf16 reference would hide bf16 error),
    even when it is named with --reference; an extra float32 run of the named runtime is."""
    rep = profile(runtimes=["openvino"], precision="bf16", reference="openvino", op_profile=False, **FAST)
    (row,) = rep.results
    assert row.status == "ok" and row.precision == "bf16"
    extra = rep.reference_run
    assert extra is not None and extra.runtime == "openvino" and extra.precision == "fp32"
    assert rep.reference == extra.id != row.id and row.parity is not None and row.parity.reference == extra.id
    mixed = profile(runtimes=["openvino", "onnxruntime"], precision={"openvino": "bf16"}, reference="openvino",
                    op_profile=False, **FAST)
    ort = next(r for r in mixed.results if r.runtime == "onnxruntime")
    assert mixed.reference == ort.id  # the named bf16 row cannot be the reference: the float32 one is
