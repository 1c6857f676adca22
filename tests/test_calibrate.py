"""Calibration of the latency model: the fit, its bounds, cross-validation on the shipped figures, the CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edgekit.devices import get_profile, load_profile
from edgekit.emulation.calibrate import FIT_MEDIAN_LIMIT, CrossValidation, cross_validate, fit, predict_ms
from edgekit.emulation.calibration_toml import spec_table
from edgekit.emulation.costs import cost_table
from edgekit.emulation.figures import load_figures
from edgekit.emulation.graph import onnx_graph, partition
from edgekit.emulation.latency import estimate_plan, op_class
from edgekit.emulation.samples import Sample, figure_samples, select_metric, select_runtime, unit_table
from edgekit.emulation.spec import accelerator_spec, hand_set, load_spec, parse_spec
from edgekit.errors import ConfigError
from edgekit.models.flops import count_onnx
from edgekit.testing.networks import NETWORKS, build_network, graph_builder

FIGURES = Path(__file__).resolve().parents[1] / "devices" / "emulation" / "calibration"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory):
    return graph_builder(tmp_path_factory.mktemp("graphs"))


def _edgekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize(("device", "unit", "precision", "network"), [
    ("snapdragon-8-gen-3", "npu", "fp16", "shufflenet_v2_x0_5"), ("coral-edgetpu", "edgetpu", "int8", "yolov8n"),
    ("generic-x86-64", "cpu", "fp32", "squeezenet1_1")])
def test_cost_table_reproduces_estimate_plan(graphs, device: str, unit: str, precision: str, network: str) -> None:
    path = graphs(network, 224)
    prof = get_profile(device)
    u, cpu = prof.unit(unit), next(x for x in prof.units if x.kind == "cpu")
    spec, cpu_spec = accelerator_spec(prof, unit), accelerator_spec(prof, cpu.name)
    plan = partition(onnx_graph(onnx.load(str(path))), spec, accelerator_is_cpu=u.kind == "cpu")
    est = estimate_plan(plan, [o.flops for o in count_onnx(path).ops], u, cpu, precision, spec, cpu_spec)
    table = cost_table(plan, est, u, cpu, spec)
    assert table.total_s(spec.latency) == pytest.approx(est.total_s, rel=1e-9)
    slower = dataclasses.replace(spec.latency, dispatch_us=spec.latency.dispatch_us + 10)
    assert table.total_s(slower) > est.total_s


def test_stacked_costs_price_each_table_as_the_table_itself(graphs) -> None:
    """The fit prices all samples in one pass (StackedCosts): the same numbers as each CostTable, under parameters
    that move every term (a link, on-chip spills, layout costs, several devices' tables with their bandwidths)."""
    import numpy as np

    from edgekit.emulation.costs import StackedCosts

    tables = [unit_table(graphs(net, 224), get_profile(dev), unit, prec) for dev, unit, prec, net in [
        ("snapdragon-8-gen-3", "npu", "fp16", "googlenet"), ("snapdragon-8-gen-3", "npu", "int8", "shufflenet_v2_x0_5"),
        ("coral-edgetpu", "edgetpu", "int8", "vgg16"), ("hailo-8", "npu", "int8", "mobilenet_v2"),
        ("generic-x86-64", "cpu", "fp32", "squeezenet1_1")]]
    stacked = StackedCosts(tables)
    for lat in (load_spec("qnn-htp").latency, dataclasses.replace(
            load_spec("edgetpu").latency, link_gb_s=0.3, dispatch_us=7.0, layout_us=40.0, onchip_mb=0.5,
            activations="onchip", op_efficiency={"depthwise": 0.05}, invoke_us=90.0, sync_us=12.0)):
        want = np.array([t.total_s(lat) for t in tables])
        assert np.allclose(stacked.total_s(lat), want, rtol=1e-12), (stacked.total_s(lat), want)


def test_fit_recovers_known_parameters_from_the_models_own_latencies(graphs) -> None:
    prof = get_profile("snapdragon-8-gen-3")
    base = load_spec("qnn-htp").latency
    truth = dataclasses.replace(base, compute_efficiency_by_precision={"fp16": 0.25, "int8": 0.6},
                                memory_efficiency=0.8, dispatch_us=6.0, invoke_us=150.0)
    samples = []
    for net in ("resnet18", "mobilenet_v2", "squeezenet1_1", "googlenet", "efficientnet_b0", "vgg16"):
        for prec in ("fp16", "int8"):
            table = unit_table(graphs(net, 224), prof, "npu", prec)
            s = Sample(net, prec, "latency", 1.0, table, "npu", "synthetic")
            samples.append(dataclasses.replace(s, ms=predict_ms(s, truth)))
    f = fit(samples, base)
    assert f.reached and f.worst_error < 0.05, f.ratios  # the weak pull towards the hand-set values biases a little
    assert f.fitted["compute_efficiency[fp16]"] == pytest.approx(0.25, rel=0.1)
    assert f.fitted["compute_efficiency[int8]"] == pytest.approx(0.6, rel=0.25)  # int8 ops are partly memory-bound
    assert f.fitted["dispatch_us"] == pytest.approx(6.0, rel=0.2)
    assert f.fitted["invoke_us"] == pytest.approx(150.0, rel=0.2)


def test_bounds_hold_and_an_unreachable_fit_says_so(graphs) -> None:
    prof = get_profile("coral-edgetpu")
    base = load_spec("edgetpu").latency
    samples = []
    for net in ("mobilenet_v1", "resnet18", "squeezenet1_1"):  # 1000x faster than 4 TOPS allows
        table = unit_table(graphs(net, 224), prof, "edgetpu", "int8")
        s = Sample(net, "int8", "latency", 1.0, table, "edgetpu", "synthetic")
        samples.append(dataclasses.replace(s, ms=predict_ms(s, base) / 1000))
    f = fit(samples, base)
    assert f.params.efficiency("int8") <= 1.0 and f.params.memory_efficiency <= 1.0
    assert f.params.dispatch_us >= 0 and f.params.invoke_us >= 0
    assert not f.reached and f.median_error > FIT_MEDIAN_LIMIT
    assert "compute_efficiency[int8]" in f.at_bounds
    assert any("cannot reach the data within physical bounds" in w for w in f.warnings)


def test_depthwise_convolutions_get_their_own_efficiency(graphs) -> None:
    """A depthwise convolution (no reduction over channels) runs at a fitted fraction of the dense efficiency."""
    g = onnx_graph(onnx.load(str(graphs("mobilenet_v2", 224))))
    classes = [op_class(g, n) for n in g.nodes]
    assert classes.count("depthwise") == 17 and classes.count("pointwise") == 34 and classes.count("conv") == 1
    prof = get_profile("hailo-8")
    base = load_spec("hailo").latency
    truth = dataclasses.replace(base, compute_efficiency_by_precision={"int8": 0.3}, op_efficiency={"depthwise": 0.02})
    samples = []
    for net in ("resnet18", "mobilenet_v1", "mobilenet_v2", "squeezenet1_1", "efficientnet_lite0", "googlenet"):
        s = Sample(net, "int8", "latency", 1.0, unit_table(graphs(net, 224), prof, "npu", "int8"), "npu", "synthetic")
        samples.append(dataclasses.replace(s, ms=predict_ms(s, truth)))
    assert predict_ms(samples[2], truth) > 1.25 * predict_ms(samples[2], base)  # MobileNet v2
    f = fit(samples, base)
    assert f.reached and f.worst_error < 0.05, f.ratios
    assert f.fitted["op_efficiency[depthwise]"] == pytest.approx(0.02, rel=0.2)
    assert 0 < f.params.efficiency("int8", "depthwise") <= f.params.efficiency("int8")
    assert spec_table("hailo", f, None, data="x", runtime="y", date="d", version="v")["latency"]["op_efficiency"]
    bad = {"name": "x", "title": "x", "source": "x", "ops": {"onnx": ["*"]}, "latency": {"op_efficiency": {"depthwise": 2}}}
    with pytest.raises(ConfigError, match="op_efficiency"):
        parse_spec(bad, "x.toml")
    spec = {**bad, "latency": {"dispatch_us": 3.0, "layout_us": 7.5}}
    assert parse_spec(spec, "x.toml").latency.fixed_us("layout") == 7.5
    assert parse_spec({**bad, "latency": {"dispatch_us": 3.0}}, "x.toml").latency.fixed_us("layout") == 3.0
    with pytest.raises(ConfigError, match="layout_us"):
        parse_spec({**bad, "latency": {"layout_us": -1}}, "x.toml")


def test_the_link_rate_is_fitted_where_the_spec_names_a_link(graphs) -> None:
    """The Edge TPU's USB link (link_gb_s) carries inputs, outputs and the weights beyond 8 MB: it is fitted,
    bounded by the unit's raw rate."""
    prof = get_profile("coral-edgetpu")
    base = load_spec("edgetpu").latency
    truth = dataclasses.replace(base, link_gb_s=0.45)
    samples = []
    for net in ("mobilenet_v1", "resnet50_v1", "vgg16", "squeezenet1_1", "googlenet"):
        table = unit_table(graphs(net, 224), prof, "edgetpu", "int8")
        s = Sample(net, "int8", "latency", 1.0, table, "edgetpu", "synthetic")
        samples.append(dataclasses.replace(s, ms=predict_ms(s, truth)))
    f = fit(samples, base)
    assert f.fitted["link_gb_s"] == pytest.approx(0.45, rel=0.05) and f.worst_error < 0.05, f.ratios
    faster = [dataclasses.replace(s, ms=s.ms / 20) for s in samples]  # a link 20x faster than USB 3.0 allows
    assert (fit(faster, base).params.link_gb_s or 0.0) <= prof.unit("edgetpu").bandwidth_gb_s


def test_figures_that_include_post_processing_get_a_fixed_host_cost(graphs) -> None:
    """A figure whose timing includes post-processing the graph lacks (Coral's SSDs: box decoding and NMS on the
    CPU) is fitted with a fixed host cost, reported in the provenance, not dropped and not used to predict."""
    prof = get_profile("coral-edgetpu")
    base = load_spec("edgetpu").latency
    samples = []
    for net in ("mobilenet_v1", "resnet50_v1", "vgg16", "squeezenet1_1", "ssd_mobilenet_v1", "ssd_mobilenet_v2"):
        table = unit_table(graphs(net, 224), prof, "edgetpu", "int8")
        s = Sample(net, "int8", "latency", 1.0, table, "edgetpu", "synthetic",
                   "postprocess" if net.startswith("ssd") else "")
        samples.append(dataclasses.replace(s, ms=predict_ms(s, base, postprocess_ms=3.0)))
    f = fit(samples, base)
    assert f.fitted["postprocess_ms"] == pytest.approx(3.0, rel=0.2) and f.worst_error < 0.05, f.ratios
    assert predict_ms(samples[0], f.params, postprocess_ms=3.0) == predict_ms(samples[0], f.params)
    cv = cross_validate(samples, base)
    ssd = [r for s, r in zip(cv.samples, cv.after, strict=True) if s.includes]
    assert len(ssd) == 2 and max(abs(r - 1) for r in ssd) < 0.15, cv.after  # one SSD left out: the other's cost
    written = spec_table("edgetpu", f, cv, data="x", runtime="y", date="d", version="v")
    assert written["calibration"]["postprocess_ms"] == pytest.approx(3.0, rel=0.2)
    assert "postprocess_ms" not in written["latency"]


def _cross_validation(device: str, graphs) -> tuple[CrossValidation, bool]:
    prof = get_profile(device)
    kept, _ = select_metric(select_runtime(load_figures(device, buildable=NETWORKS).figures, prof)[0])
    samples, _ = figure_samples(kept, prof, graphs)
    spec = accelerator_spec(prof, samples[0].unit)
    return cross_validate(samples, hand_set(spec)[1]), bool(spec.calibration)


SHIPPED = ("snapdragon-8-gen-3", "coral-edgetpu", "rockchip-rk3588", "hailo-8")


@pytest.fixture(scope="module")
def shipped(graphs) -> dict[str, tuple[CrossValidation, bool]]:
    return {d: _cross_validation(d, graphs) for d in SHIPPED}


def test_ten_networks_on_four_devices(shipped) -> None:
    """Issue 17's data target: published figures on at least 10 buildable networks on each of 3 devices (4 here)."""
    nets = {d: {s.network for s in cv.samples} for d, (cv, _) in shipped.items()}
    assert all(len(n) >= 10 for n in nets.values()), {d: len(n) for d, n in nets.items()}


def test_leave_one_network_out_on_the_shipped_figures(shipped) -> None:
    """Issue 17's target, median |error| <= 20 % and worst <= 50 % leave-one-network-out, on three devices of 10
    networks or more (benchmarks/emulation.py: hand-set -> calibrated, median and worst):

    - Snapdragon 8 Gen 3 (11 networks, 19 ONNX Runtime figures): 16 % -> 8 %, worst 50 % -> 36 %.
    - Coral Edge TPU (12 networks): 21 % -> 11 %, worst 58 % -> 27 %.
    - RK3588 (12 networks, one NPU core): 8 % -> 5 %, worst 36 % -> 44 % (MobileNet v2, its one depthwise network).

    Hailo-8 (18 networks, single-frame latencies of Model Zoo v2.10.0) misses it: 59 % -> 25 %, worst 91 % -> 71 %,
    held to what it reaches; a dataflow chip compiled for throughput has latencies no roofline sum explains
    (EfficientNet-Lite3 15.6 ms and Lite4 16.7 ms for 1.8x the MACs; GoogLeNet twice ResNet-18)."""
    for device, median, worst in (("snapdragon-8-gen-3", 0.20, 0.50), ("coral-edgetpu", 0.20, 0.50),
                                  ("rockchip-rk3588", 0.20, 0.50), ("hailo-8", 0.30, 0.80)):
        cv, calibrated = shipped[device]
        summ = cv.summary()
        assert calibrated, f"{device}: the shipped spec is not the calibrated one"
        assert len({s.network for s in cv.samples}) >= 10
        assert summ["after_median"] <= median and summ["after_worst"] <= worst, (device, summ)
        assert summ["after_median"] < summ["before_median"], (device, summ)
    assert shipped["hailo-8"][0].summary()["before_median"] > 2 * 0.25


def test_estimate_says_which_parameters_were_fitted_and_from_what(tmp_path: Path) -> None:
    from edgekit.emulation.core import estimate_latency, prepare
    from edgekit.models.formats import open_model

    model = build_network("squeezenet1_1", tmp_path / "squeezenet.onnx", 96)
    est = estimate_latency(model, "snapdragon-8-gen-3", precision="fp16")
    note = next(n for n in est.notes if "were fitted" in n)
    assert "compute_efficiency[fp16]" in note and "calibration/snapdragon-8-gen-3.toml" in note
    assert est.parameters["accelerator"]["calibration"]
    assert any("were fitted" in n for n in prepare(open_model(model), "snapdragon-8-gen-3", precision="fp16").notes)
    hand = estimate_latency(model, "jetson-orin-nano")
    assert any("hand-set" in n for n in hand.notes)


def _coral_subset(tmp_path: Path) -> Path:
    """Five of Coral's classifiers and one network edgekit cannot build (a small, fast fit)."""
    keep = {"mobilenet_v1", "mobilenet_v2", "resnet50_v1", "vgg16", "googlenet", "squeezenet"}
    head, *entries = (FIGURES / "coral-edgetpu.toml").read_text().split("[[figures]]")
    kept = [e for e in entries if e.split('network = "')[1].split('"')[0] in keep]
    path = tmp_path / "five.toml"
    path.write_text("[[figures]]".join([head, *kept]))
    return path


def test_cli_writes_a_profile_that_extends_the_shipped_one(tmp_path: Path) -> None:
    five = str(_coral_subset(tmp_path))
    res = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", five, "-o", "mine.toml", "--format", "json",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "edgekit cannot build network 'squeezenet'" in res.stderr  # skipped, with the reason
    rows = json.loads(res.stdout)
    assert {r["network"] for r in rows} == {"mobilenet_v1", "mobilenet_v2", "resnet50_v1", "vgg16", "googlenet"}
    prof = load_profile(tmp_path / "mine.toml")
    assert prof.extends == "coral-edgetpu" and [t.runtime for t in prof.targets][0] == "litert"
    spec = accelerator_spec(prof, "edgetpu")
    assert spec.partition == "prefix" and spec.calibration["figures"] == 5
    assert spec.calibration["fitted"][0] == "compute_efficiency[int8]"
    again = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", five, "-o", "mine.toml", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    forced = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", five, "-o", "mine.toml", "--force",
                      "--format", "json", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_cli_refuses_data_of_another_device(tmp_path: Path) -> None:
    build_network("squeezenet1_1", tmp_path / "sq.onnx", 64)
    prof = _edgekit("profile", "sq.onnx", "--device", "generic-x86-64", "--runtime", "onnxruntime", "--duration",
                    "0.2", "--format", "json", "-o", "mine.json", cwd=tmp_path)
    assert prof.returncode == 0, prof.stderr
    data = json.loads((tmp_path / "mine.json").read_text())  # a valid report, as measured on a Hailo-8 host
    data["provenance"]["device"] = "hailo-8"
    report = tmp_path / "report.json"
    report.write_text(json.dumps(data))
    res = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", str(report), cwd=tmp_path)
    assert res.returncode == 2 and "measured on device 'hailo-8'" in res.stderr, res.stderr
    figs = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", str(FIGURES / "hailo-8.toml"), cwd=tmp_path)
    assert figs.returncode == 2 and "for device 'hailo-8'" in figs.stderr, figs.stderr
    assert not (tmp_path / "coral-edgetpu-calibrated.toml").exists()


def test_cli_does_not_write_a_fit_that_cannot_reach_the_data(tmp_path: Path) -> None:
    text = (FIGURES / "coral-edgetpu.toml").read_text()
    fast = text.replace("ms = 2.4\n", "ms = 0.0024\n").replace("ms = 2.6\n", "ms = 0.0026\n").replace(
        "ms = 49.0\n", "ms = 0.049\n").replace("ms = 296.0\n", "ms = 0.296\n").replace("ms = 3.4\n", "ms = 0.0034\n")
    assert fast != text
    (tmp_path / "fast.toml").write_text(fast)
    res = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", "fast.toml", "--format", "json", cwd=tmp_path)
    assert res.returncode == 3, res.stderr
    assert "cannot reach the data" in res.stderr and "not written" in res.stderr
    assert not (tmp_path / "coral-edgetpu-calibrated.toml").exists()


def test_cli_calibrates_from_a_profile_report_of_the_same_device(tmp_path: Path) -> None:
    build_network("squeezenet1_1", tmp_path / "sq.onnx", 64)
    prof = _edgekit("profile", "sq.onnx", "--device", "generic-x86-64", "--runtime", "onnxruntime", "--duration",
                    "0.2", "--format", "json", "-o", "report.json", cwd=tmp_path)
    assert prof.returncode == 0, prof.stderr
    res = _edgekit("devices", "calibrate", "generic-x86-64", "--from", "report.json", "-o", "x86.toml",
                   "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert [r["network"] for r in json.loads(res.stdout)] == ["sq"]
    spec = accelerator_spec(load_profile(tmp_path / "x86.toml"), "cpu")
    assert "report.json" in spec.calibration["data"] and "compute_efficiency[fp32]" in spec.calibration["fitted"]
    (tmp_path / "sq.onnx").unlink()  # the report's model is gone: the row is skipped, with the reason
    gone = _edgekit("devices", "calibrate", "generic-x86-64", "--from", "report.json", "-o", "y.toml", cwd=tmp_path)
    assert gone.returncode == 4 and "cannot be re-opened" in gone.stderr, gone.stderr


def test_cli_calibrates_from_the_rows_of_a_fleet_report(tmp_path: Path) -> None:
    """A fleet report (profile --fleet) is a valid input: the rows of the device calibrated, its models found by name
    and sha256 beside the report (a node's private copy is not here); a fleet report without that device is refused."""
    build_network("squeezenet1_1", tmp_path / "sq.onnx", 64)
    prof = _edgekit("profile", "sq.onnx", "--device", "generic-x86-64", "--runtime", "onnxruntime", "--duration",
                    "0.2", "--format", "json", "-o", "local.json", cwd=tmp_path)
    assert prof.returncode == 0, prof.stderr
    local = json.loads((tmp_path / "local.json").read_text())
    fleet = dict(local)  # the layout merge_reports writes: rows by device, ids prefixed, node paths for models
    fleet["provenance"] = {**local["provenance"], "device": None,
                           "fleet": {"address": "10.0.0.1:6379", "devices": [{"device": "generic-x86-64"}]}}
    other = {**local["results"][0], "id": "raspberry-pi-5:onnxruntime", "device": "raspberry-pi-5"}
    fleet["results"] = [{**r, "id": f"generic-x86-64:{r['id']}", "device": "generic-x86-64"}
                        for r in local["results"]] + [other]
    fleet["models"] = [{**m, "path": "/tmp/ray/session/job/sq.onnx"} for m in local["models"]]
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "fleet.json").write_text(json.dumps(fleet))
    (tmp_path / "sq.onnx").rename(tmp_path / "fleet" / "sq.onnx")
    res = _edgekit("devices", "calibrate", "generic-x86-64", "--from", "fleet/fleet.json", "-o", "x86.toml",
                   "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert [r["runtime"] for r in json.loads(res.stdout)] == [f"generic-x86-64:{local['results'][0]['id']}"]
    refused = _edgekit("devices", "calibrate", "coral-edgetpu", "--from", "fleet/fleet.json", "-o", "c.toml",
                       cwd=tmp_path)
    assert refused.returncode == 2 and "no row measured on device 'coral-edgetpu'" in refused.stderr, refused.stderr
    assert "generic-x86-64, raspberry-pi-5" in refused.stderr and not (tmp_path / "c.toml").exists()
    (tmp_path / "fleet" / "sq.onnx").write_bytes(b"not the model")  # same name, other bytes: not taken for it
    moved = _edgekit("devices", "calibrate", "generic-x86-64", "--from", "fleet/fleet.json", "-o", "y.toml",
                     cwd=tmp_path)
    assert moved.returncode == 4 and "no file of that name and sha256" in moved.stderr, moved.stderr


def test_fit_finds_layout_cost_and_on_chip_size_from_the_models_own_latencies(graphs) -> None:
    """layout_us (data movement) and the on-chip activation size (a grid up to the spec's 8 MB VTCM) are recovered."""
    prof = get_profile("snapdragon-8-gen-3")
    base = load_spec("qnn-htp").latency
    truth = dataclasses.replace(base, compute_efficiency_by_precision={"fp16": 0.4, "int8": 0.6}, dispatch_us=1.0,
                                layout_us=20.0, onchip_mb=2.0, invoke_us=200.0)
    samples = []
    for net, size in (("shufflenet_v2_x0_5", 224), ("googlenet", 224), ("squeezenet1_1", 224), ("resnet18", 224),
                      ("yolov8n", 640), ("mobilenet_v2", 224)):
        for prec in ("fp16", "int8"):
            s = Sample(net, prec, "latency", 1.0, unit_table(graphs(net, size), prof, "npu", prec), "npu", "synthetic")
            samples.append(dataclasses.replace(s, ms=predict_ms(s, truth)))
    f = fit(samples, base)
    assert f.worst_error < 0.05, f.ratios
    assert f.fitted["onchip_mb"] == 2.0 and f.params.onchip_mb == 2.0
    assert f.fitted["layout_us"] == pytest.approx(20.0, rel=0.25)
    table = spec_table("qnn-htp", f, None, data="x", runtime="y", date="d", version="v")
    assert table["latency"]["onchip_mb"] == 2.0 and "layout_us" in table["latency"]


def _branches(path: Path, n: int) -> Path:
    """An input, ``n`` parallel 3x3 convolutions and a Concat: one chain of 2 fixed costs, n + 1 ops."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.float32), f"w{i}") for i in range(n)]
    nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"y{i}"], pads=[1, 1, 1, 1]) for i in range(n)]
    nodes.append(helper.make_node("Concat", [f"y{i}" for i in range(n)], ["out"], axis=1))
    graph = helper.make_graph(nodes, "branches", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8 * n, 16, 16])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize(("device", "unit", "chain"), [("snapdragon-8-gen-3", "npu", (1, 1)),
                                                      ("generic-x86-64", "cpu", (4, 1))])
def test_parallel_branches_overlap_their_fixed_costs_on_an_accelerator_only(tmp_path, device, unit, chain) -> None:
    """Four parallel convolutions and their Concat: an accelerator pays one branch's dispatch and the Concat's layout
    cost (the longest chain), a CPU target pays every op's."""
    path = _branches(tmp_path / "b.onnx", 4)
    prof = get_profile(device)
    u, cpu = prof.unit(unit), next(x for x in prof.units if x.kind == "cpu")
    spec, cpu_spec = accelerator_spec(prof, unit), accelerator_spec(prof, cpu.name)
    plan = partition(onnx_graph(onnx.load(str(path))), spec, accelerator_is_cpu=u.kind == "cpu")
    assert [op_class(plan.graph, n) for n in plan.graph.nodes] == ["conv"] * 4 + ["layout"]
    flops = [o.flops for o in count_onnx(path).ops]

    def total(dispatch: float, layout: float) -> float:
        lat = dataclasses.replace(spec.latency, dispatch_us=dispatch, layout_us=layout)
        s = dataclasses.replace(spec, latency=lat)
        cs = s if u.kind == "cpu" else cpu_spec
        est = estimate_plan(plan, flops, u, cpu, "fp16" if u.kind != "cpu" else "fp32", s, cs)
        assert cost_table(plan, est, u, cpu, s).total_s(lat) == pytest.approx(est.total_s, rel=1e-9)
        return est.total_s

    base = total(0.0, 0.0)
    assert total(100.0, 0.0) - base == pytest.approx(chain[0] * 100e-6, rel=1e-6)
    assert total(0.0, 100.0) - base == pytest.approx(chain[1] * 100e-6, rel=1e-6)


def test_latencies_are_preferred_over_throughputs_where_a_unit_has_enough(tmp_path) -> None:
    figs = load_figures("hailo-8", buildable=NETWORKS).figures
    kept, skipped = select_metric(figs)
    assert {f.metric for f in kept} == {"latency"} and len({f.network for f in kept}) >= 8
    assert skipped and all("throughput figure" in why for _, why in skipped)
    few = [f for f in figs if f.metric == "throughput" or f.network in ("resnet18", "mobilenet_v1")]
    assert select_metric(few) == (few, [])  # two latency networks: the throughputs stay (with a fitted ratio)
