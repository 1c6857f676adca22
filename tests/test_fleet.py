"""The device fleet on a simulated Ray cluster: a 0-CPU head and labelled device nodes, all on 127.0.0.1.

One cluster per module (about 6-10 s to start on two cores). Jobs that kill nodes add their own
nodes, so the shared ones stay up for the other tests.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgekit._version import __version__
from edgekit.errors import InputError
from edgekit.fleet.agent import agent_command, node_labels, node_resources, resolve_device

DEVICES = {"h1": "raspberry-pi-5", "h2": "raspberry-pi-5", "h3": "jetson-orin-nano"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Any:
    pytest.importorskip("ray", reason="the fleet tests need Ray: pip install 'edgekit[fleet]'")
    import ray
    from ray.cluster_utils import Cluster

    from edgekit.fleet.cluster import VERSION_LABEL

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the nodes cannot import this test module
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "labels": {VERSION_LABEL: __version__},
        # notice a killed node within about a second (Ray's defaults take tens of seconds)
        "_system_config": {"health_check_period_ms": 300, "health_check_timeout_ms": 300,
                           "health_check_failure_threshold": 3}})
    try:
        for host, device in DEVICES.items():
            c.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources=node_resources(),
                       labels=node_labels(device, declared=True, host=host, runtimes={"onnxruntime": "1.20.1"}))
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def _where(files: dict[str, Path]) -> dict[str, str]:
    import ray

    return {str(k): str(v) for k, v in ray.get_runtime_context().get_node_labels().items()}


def test_import_edgekit_does_not_import_ray() -> None:
    code = "import sys, edgekit, edgekit.fleet, edgekit.cli.fleet, edgekit.cli.agent; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_agent_labels_resources_and_command() -> None:
    labels = node_labels("raspberry-pi-5", declared=True, host="pi lab #1", runtimes={"onnxruntime": "2.1.0+cpu"},
                         version="0.1.0")
    assert labels == {"edgekit/device": "raspberry-pi-5", "edgekit/device-source": "declared",
                      "edgekit/version": "0.1.0", "edgekit/host": "pi_lab__1",
                      "edgekit/runtime.onnxruntime": "2.1.0_cpu"}
    assert node_resources() == {"edgekit_slot": 1.0}
    cmd = agent_command("10.0.0.5:6379", labels, node_ip="10.0.0.7")
    assert cmd[:4] == ["ray", "start", "--address", "10.0.0.5:6379"] and "--block" in cmd
    assert "edgekit/device=raspberry-pi-5" in cmd[cmd.index("--labels") + 1]
    assert json.loads(cmd[cmd.index("--resources") + 1]) == {"edgekit_slot": 1.0}
    assert resolve_device("raspberry-pi-5") == ("raspberry-pi-5", True)
    assert resolve_device("auto")[1] is False


def test_unreachable_head_is_a_fast_one_line_error() -> None:
    pytest.importorskip("ray", reason="the fleet tests need Ray: pip install 'edgekit[fleet]'")
    from edgekit.fleet import FleetUnreachableError, connect

    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(FleetUnreachableError) as info:
        connect(address)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert address in message and "ray start --head" in message and "\n" not in message


def test_routing_by_label(cluster: Any) -> None:
    from edgekit.fleet import run_on_devices

    outcomes = run_on_devices(cluster.address, ["jetson-orin-nano", "raspberry-pi-5"], _where)
    assert [o.status for o in outcomes] == ["ok", "ok"], [o.reason for o in outcomes]
    for o in outcomes:
        assert o.value["edgekit/device"] == o.device
        assert DEVICES[o.host or ""] == o.device and o.attempts == 1
    every = run_on_devices(cluster.address, ["all"], _where)
    assert sorted(o.device for o in every) == ["jetson-orin-nano", "raspberry-pi-5"]
    mixed = run_on_devices(cluster.address, ["coral-edgetpu", "all", "raspberry-pi-5"], _where)
    assert [(o.device, o.status) for o in mixed] == [
        ("coral-edgetpu", "unavailable"), ("jetson-orin-nano", "ok"), ("raspberry-pi-5", "ok")]


def test_absent_device_is_unavailable_quickly(cluster: Any) -> None:
    from edgekit.fleet import run_on_devices

    start = time.monotonic()
    [o] = run_on_devices(cluster.address, ["coral-edgetpu"], _where)
    assert time.monotonic() - start <= 10
    assert o.status == "unavailable"
    assert "edgekit/device=coral-edgetpu" in (o.reason or "") and "edgekit agent" in (o.reason or "")


def test_files_are_shipped_into_a_private_folder(cluster: Any, tmp_path: Path) -> None:
    from edgekit.fleet import run_on_devices

    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x00model bytes")

    def read(files: dict[str, Path]) -> tuple[bytes, str]:
        path = files["m/model.onnx"]
        return path.read_bytes(), str(path)

    [o] = run_on_devices(cluster.address, ["jetson-orin-nano"], read, {"m/model.onnx": model})
    assert o.status == "ok", o.reason
    data, where = o.value
    assert data == b"\x00model bytes"
    assert Path(where).parent.parent.name.startswith("edgekit-fleet-") and not Path(where).exists()
    with pytest.raises(InputError, match="outside the job's folder"):
        run_on_devices(cluster.address, ["jetson-orin-nano"], read, {"../escape.onnx": model})


def test_a_raising_job_fails_without_retry(cluster: Any) -> None:
    from edgekit.fleet import run_on_devices

    def boom(files: dict[str, Path]) -> None:
        raise ValueError("the model does not fit")

    [o] = run_on_devices(cluster.address, ["jetson-orin-nano"], boom)
    assert o.status == "failed" and o.attempts == 1
    assert "ValueError: the model does not fit" in (o.reason or "")
    assert isinstance(o.error, ValueError)
    from edgekit.fleet.jobs import usage_error

    assert usage_error([o]) is None  # not a mistake in what was passed: failed rows, the usual exit codes


def test_a_job_error_names_the_files_shipped_from_here(cluster: Any, tmp_path: Path) -> None:
    """What a job raised comes back as its class, its message naming this machine's files, not the node's copies."""
    from edgekit.fleet import Outcome, run_on_devices
    from edgekit.fleet.jobs import usage_error

    frame = tmp_path / "frame.npy"
    frame.write_bytes(b"not an array")

    def refuse(files: dict[str, Path]) -> None:
        raise InputError(f"--input x={files['inputs/0/frame.npy']}: not a readable .npy array")

    first, second = run_on_devices(cluster.address, ["jetson-orin-nano", "raspberry-pi-5"], refuse,
                                   {"inputs/0/frame.npy": frame})
    for o in (first, second):
        assert o.status == "failed" and isinstance(o.error, InputError), o
        assert str(o.error) == f"--input x={frame}: not a readable .npy array"
        assert o.reason == f"InputError: --input x={frame}: not a readable .npy array"
    # every device that ran failed with it: a usage error; one device that measured makes them failed rows
    assert usage_error([first, second, Outcome("hailo-8", "unavailable")]) is first.error
    assert usage_error([first, Outcome("raspberry-pi-5", "ok")]) is None
    other = Outcome("raspberry-pi-5", "failed", error=InputError("input 'y' has no data"))
    assert usage_error([first, other]) is None and usage_error([Outcome("hailo-8", "unavailable")]) is None


def test_version_refusal_names_both_versions(cluster: Any) -> None:
    from edgekit.fleet import FleetVersionError, connect
    from edgekit.fleet.cluster import FleetNode, check_version

    with pytest.raises(FleetVersionError) as info:
        connect(cluster.address, version="9.9.9")
    assert __version__ in str(info.value) and "9.9.9" in str(info.value)
    agents = [FleetNode("a", device="raspberry-pi-5", edgekit="0.0.7", slots=1.0)]
    with pytest.raises(FleetVersionError, match="0.0.7.*0.1.0"):
        check_version(agents, "0.1.0")


def test_fleet_status_lists_devices(cluster: Any) -> None:
    from edgekit.cli.fleet import fleet

    deadline = time.monotonic() + 10  # Ray hands a slot back a moment after the job that held it ends
    while True:
        res = CliRunner().invoke(fleet, ["status", "--address", cluster.address, "--format", "json"])
        assert res.exit_code == 0, res.output
        rows = json.loads(res.output)
        if all(r["state"] == "free" for r in rows[1:]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert rows[0]["role"] == "head" and rows[0]["edgekit"] == __version__
    devices = [r for r in rows if r["role"] == "device"]
    assert sorted(r["host"] for r in devices) == ["h1", "h2", "h3"]
    assert {r["device"] for r in devices} == {"raspberry-pi-5 (declared, not detected)",
                                              "jetson-orin-nano (declared, not detected)"}
    assert all(r["state"] == "free" and r["runtimes"] == ["onnxruntime 1.20.1"] for r in devices), json.dumps(rows)


def test_a_running_job_shows_its_node_busy(cluster: Any) -> None:
    from edgekit.fleet import list_nodes, run_on_devices

    seen: dict[str, Any] = {}

    def nap(files: dict[str, Path]) -> str:
        time.sleep(3)
        return "done"

    job = threading.Thread(target=lambda: seen.update(o=run_on_devices(cluster.address, ["jetson-orin-nano"], nap)))
    job.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not seen.get("busy"):
        seen["busy"] = [n.host for n in list_nodes() if n.busy]
        time.sleep(0.1)
    job.join(30)
    assert seen["busy"] == ["h3"] and seen["o"][0].status == "ok"


def test_ctrl_c_cancels_remote_jobs_and_keeps_finished_ones(cluster: Any) -> None:
    from edgekit.fleet import run_on_devices

    def nap(files: dict[str, Path]) -> str:
        import ray

        labels = ray.get_runtime_context().get_node_labels()
        if labels["edgekit/device"] == "jetson-orin-nano":
            time.sleep(60)
        return "done"

    def ctrl_c_once_one_finished(outcome: Any) -> None:  # Ctrl-C while the other job still runs
        if outcome.device == "raspberry-pi-5":
            raise KeyboardInterrupt  # what SIGINT raises in the main thread, where this callback runs

    start = time.monotonic()
    outcomes = run_on_devices(cluster.address, ["raspberry-pi-5", "jetson-orin-nano"], nap,
                              on_outcome=ctrl_c_once_one_finished)
    took = time.monotonic() - start
    assert [(o.device, o.status) for o in outcomes] == [("raspberry-pi-5", "ok"), ("jetson-orin-nano", "cancelled")], \
        (took, outcomes)
    assert took < 45, (took, outcomes)  # the 60 s job was cancelled, not waited for


def test_profile_on_fleet_returns_a_report_per_device(cluster: Any) -> None:
    pytest.importorskip("onnxruntime")
    from edgekit.fleet import profile_on_fleet
    from edgekit.models.sample import sample_model
    from edgekit.profiling import ProfileReport

    outcomes = profile_on_fleet(sample_model("onnx"), cluster.address, ["jetson-orin-nano", "coral-edgetpu"],
                                runtimes=["onnxruntime"], duration=0.2, warmup=1, op_profile=False)
    assert [(o.device, o.status) for o in outcomes] == [("jetson-orin-nano", "ok"), ("coral-edgetpu", "unavailable")]
    report = outcomes[0].value
    assert isinstance(report, ProfileReport) and outcomes[0].host == "h3"
    assert report.provenance["device"] == "jetson-orin-nano"  # the node profiled its device profile's targets
    assert [(r.id, r.status) for r in report.results] == [
        ("onnxruntime/tensorrt/fp16", "skipped"), ("onnxruntime/cuda", "skipped"), ("onnxruntime/cpu", "ok")]
    assert (report.results[-1].target or "").endswith("on cpu (threads=6)")


def _kill_when_started(cluster: Any, nodes: list[Any], marker: Path) -> Any:
    """Wait for the job to write its node id into ``marker``, then kill that node."""
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = next(n for n in nodes if n.node_id == marker.read_text())
    cluster.remove_node(victim, allow_graceful=False)
    return victim


def test_node_killed_mid_job_is_retried_then_failed(cluster: Any, tmp_path: Path) -> None:
    from edgekit.fleet import run_on_devices

    nodes = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources=node_resources(),
                              labels=node_labels("hailo-8", declared=True, host=f"v{i}", runtimes={}))
             for i in (1, 2)]
    marker = tmp_path / "started"

    def first_attempt_hangs(files: dict[str, Path], marker: str) -> str:
        import ray

        if not os.path.exists(marker):
            Path(marker).write_text(ray.get_runtime_context().get_node_id())
            time.sleep(60)
        return "second attempt"

    result: dict[str, Any] = {}
    job = threading.Thread(target=lambda: result.update(o=run_on_devices(
        cluster.address, ["hailo-8"], first_attempt_hangs, kwargs={"marker": str(marker)}, unavailable_after=2)))
    job.start()
    victim = _kill_when_started(cluster, nodes, marker)
    job.join(60)
    [o] = result["o"]
    assert o.status == "ok" and o.value == "second attempt" and o.attempts == 2, o
    assert o.node != victim.node_id and "NodeDiedError" in o.failures[0]

    marker.unlink()
    survivor = [n for n in nodes if n is not victim]
    job = threading.Thread(target=lambda: result.update(o=run_on_devices(
        cluster.address, ["hailo-8"], first_attempt_hangs, kwargs={"marker": str(marker)}, unavailable_after=2)))
    job.start()
    _kill_when_started(cluster, survivor, marker)
    job.join(60)
    [o] = result["o"]
    assert o.status == "failed" and o.attempts == 2, o
    assert "NodeDiedError" in (o.reason or "") and "edgekit/device=hailo-8" in (o.reason or "")


# -- part 2: profile and tune on the fleet, one merged report ------------------------------------------------------

def _cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run ``edgekit ARGS`` through the console script's entry point (its error handling included)."""
    from edgekit.cli import main

    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return int(code or 0), out.out, out.err


def test_profile_fleet_usage_errors_and_unreachable_head(capsys: Any) -> None:
    code, _, err = _cli(["profile", "--fleet", "127.0.0.1:1"], capsys)
    assert code == 2 and "--device all" in err
    pytest.importorskip("ray", reason="the fleet tests need Ray: pip install 'edgekit[fleet]'")
    address = f"127.0.0.1:{_free_port()}"
    code, out, err = _cli(["profile", "--fleet", address, "--device", "all", "-q"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and address in lines[0] and "Traceback" not in err, err


def _wrong_input(tmp: Path, case: str) -> list[str]:
    """``--input``/``--shape`` options the sample ONNX model (one input ``image``, float32 [1, 3, 96, 96]) refuses."""
    import numpy as np

    frame = tmp / f"{case}.npy"
    if case == "shape":
        np.save(frame, np.zeros((1, 3, 50, 50), np.float32))
    elif case == "dtype":
        np.save(frame, np.zeros((1, 3, 96, 96), np.float64))
    else:
        return ["--shape", "pixels=1x3x96x96"]
    return ["--input", f"image={frame}"]


@pytest.mark.parametrize("case", ["shape", "dtype", "shape-name"])
def test_profile_fleet_refuses_a_wrong_input_as_a_local_run_before_shipping(cluster: Any, tmp_path: Path,
                                                                            capsys: Any, case: str) -> None:
    from edgekit.models.sample import sample_model

    model = str(sample_model("onnx"))
    args = ["profile", model, "-r", "onnxruntime", "-q", *_wrong_input(tmp_path, case), "--format", "json"]
    report = tmp_path / "fleet.json"
    report.write_text("an earlier report")
    code, out, local = _cli([*args, "-o", str(tmp_path / "local.json")], capsys)
    assert code == 2 and local.startswith("error: ") and "Traceback" not in local, local
    fleet = ["--fleet", cluster.address, "--device", "jetson-orin-nano", "--device", "raspberry-pi-5"]
    code, out, err = _cli([*args, *fleet, "-o", str(report)], capsys)
    assert code == 2 and err == local and not out, err  # the local message, and only it
    assert report.read_text() == "an earlier report"  # refused before any report is written
    if case == "shape":
        assert "'image'" in err and "(1, 3, 50, 50)" in err and "(1, 3, 96, 96)" in err, err
    # refused before anything is shipped: a fleet that is not there is not even asked
    code, _, err = _cli([*args, "--fleet", f"127.0.0.1:{_free_port()}", "--device", "all"], capsys)
    assert code == 2 and err == local, err


def test_profile_fleet_refuses_a_runtime_no_one_knows(cluster: Any, capsys: Any) -> None:
    from edgekit.models.sample import sample_model

    args = ["profile", str(sample_model("onnx")), "-r", "onnxrntime", "-q"]
    code, _, local = _cli(args, capsys)
    assert code == 2 and "no runtime named 'onnxrntime'" in local, local
    code, out, err = _cli([*args, "--fleet", cluster.address, "--device", "all"], capsys)
    assert code == 2 and err == local and not out, err


def test_an_input_error_only_the_nodes_see_exits_2_with_the_rows_written(cluster: Any, tmp_path: Path,
                                                                          capsys: Any) -> None:
    """An OpenVINO IR's inputs are read by loading it, which the nodes do: the node's profiler refuses the input, and
    as every device that ran refused it the same way, the run is a usage error like a local one."""
    ov = pytest.importorskip("openvino")
    from edgekit.models.sample import sample_model

    xml = tmp_path / "sample.xml"
    ov.save_model(ov.Core().read_model(str(sample_model("onnx"))), str(xml), compress_to_fp16=False)
    args = ["profile", str(xml), "-r", "openvino", "-q", *_wrong_input(tmp_path, "shape"), "--format", "json"]
    report = tmp_path / "fleet.json"
    code, out, err = _cli([*args, "--fleet", cluster.address, "--device", "raspberry-pi-5", "--device",
                           "coral-edgetpu", "--unavailable-after", "5", "-o", str(report)], capsys)  # the Pi runs OpenVINO
    lines = err.strip().splitlines()
    assert code == 2 and not out and len(lines) == 1, err
    assert lines[0].startswith("error: input 'image'") and "(1, 3, 50, 50)" in err and "1, 3, 96, 96" in err, err
    data = json.loads(report.read_text())  # asked for a report: its rows say what each device did
    rows = {r["id"]: (r["status"], r["error"]) for r in data["results"]}
    assert rows["coral-edgetpu:openvino"][0] == "unavailable"
    status, error = rows["raspberry-pi-5:openvino"]
    assert status == "failed" and error == lines[0].replace("error: ", "InputError: ", 1), rows
    assert [d.get("error_type") for d in data["provenance"]["fleet"]["devices"]] == ["InputError", None]


@pytest.fixture(scope="module")
def fleet_reports(cluster: Any, tmp_path_factory: Any) -> dict[str, Any]:
    """Two `edgekit profile --fleet` runs: three devices (one absent), then --strict --compare against the first."""
    pytest.importorskip("onnxruntime")
    from edgekit.models.sample import sample_model

    tmp = tmp_path_factory.mktemp("fleet-profile")
    common = [str(sample_model("onnx")), "--fleet", cluster.address, "-r", "onnxruntime", "--duration", "0.2",
              "--warmup", "1", "--no-op-profile", "--format", "json", "--unavailable-after", "5"]
    runner = CliRunner()
    from edgekit.cli.profile import profile

    start = time.monotonic()
    first = runner.invoke(profile, [*common, "--device", "jetson-orin-nano", "--device", "raspberry-pi-5",
                                    "--device", "coral-edgetpu", "-o", str(tmp / "one.json")])
    seconds = time.monotonic() - start
    second = runner.invoke(profile, [*common, "--device", "jetson-orin-nano", "--device", "coral-edgetpu", "--strict",
                                     "--compare", str(tmp / "one.json"), "--tolerance", "1000%",
                                     "-o", str(tmp / "two.json")])
    return {"first": first, "second": second, "seconds": seconds, "tmp": tmp}


#: the rows of the devices' CPU targets (each node profiles its device profile's targets with --runtime onnxruntime)
JETSON, PI = "jetson-orin-nano:onnxruntime/cpu", "raspberry-pi-5:onnxruntime/cpu"


def test_profile_fleet_routes_rows_and_merges_them(fleet_reports: dict[str, Any]) -> None:
    from edgekit.profiling import ProfileReport
    from edgekit.profiling.schema import validate

    res = fleet_reports["first"]
    assert res.exit_code == 0, res.output  # an unavailable device is a row not measured: 0 without --strict
    assert fleet_reports["seconds"] < 30
    data = json.loads((fleet_reports["tmp"] / "one.json").read_text())
    validate(data)
    assert data["schema_version"] == "1.2"
    report = ProfileReport.from_dict(data)
    rows = {r.id: r for r in report.results}
    assert set(rows) == {"jetson-orin-nano:onnxruntime/tensorrt/fp16", "jetson-orin-nano:onnxruntime/cuda",
                         JETSON, PI, "coral-edgetpu:onnxruntime"}  # each node measured its profile's targets
    for rid in (JETSON, PI):
        r = rows[rid]
        assert r.status == "ok" and r.latency is not None and r.node
        assert r.device == rid.split(":")[0] and DEVICES[r.host or ""] == r.device  # ran on a node of its label
        assert r.parity is not None and r.parity.reference == rid  # each device is its own reference
    gone = rows["coral-edgetpu:onnxruntime"]
    assert gone.status == "unavailable" and "edgekit/device=coral-edgetpu" in (gone.error or "")
    fleet = report.provenance["fleet"]
    assert fleet["address"] and [d["device"] for d in fleet["devices"]] == [
        "jetson-orin-nano", "raspberry-pi-5", "coral-edgetpu"]
    ok = [d for d in fleet["devices"] if d["status"] == "ok"]
    assert all(d["edgekit"] == __version__ and d["node"] and d["host"] and "onnxruntime" in d["runtimes"] for d in ok)
    assert "3 of 5 rows could not be measured" in res.output and "coral-edgetpu:onnxruntime" in res.output


def test_profile_fleet_strict_and_compare_per_device(fleet_reports: dict[str, Any]) -> None:
    res = fleet_reports["second"]
    assert res.exit_code == 3, res.output  # --strict: the absent device's row makes it INCOMPLETE
    assert "exit code 3 (--strict)" in res.output and "no regression" in res.output
    from edgekit.profiling import ProfileReport
    from edgekit.profiling.compare import compare

    one = ProfileReport.read(fleet_reports["tmp"] / "one.json")
    two = ProfileReport.read(fleet_reports["tmp"] / "two.json")
    rows = {r.id: r.status for r in compare(two, one, 10.0)}
    assert rows[JETSON] in ("ok", "faster")  # matched with the same device's row
    assert rows[PI] == "missing"
    import dataclasses

    # the same runtime on another device never matches
    moved = dataclasses.replace(two, results=[dataclasses.replace(r, device="hailo-8", id="hailo-8:" + r.runtime)
                                              for r in two.results])
    statuses = {r.id: r.status for r in compare(moved, one, 10.0)}
    assert "ok" not in statuses.values() and statuses[JETSON] == "missing"


def test_fleet_report_renders_a_device_column(fleet_reports: dict[str, Any]) -> None:
    from rich.console import Console

    from edgekit.profiling import ProfileReport, render
    from edgekit.profiling.html import to_html

    report = ProfileReport.read(fleet_reports["tmp"] / "one.json")
    console = Console(width=200, record=True, file=io.StringIO())
    render.print_table(report, console)
    table = console.export_text()
    assert "device" in table and "jetson-orin-nano" in table and "UNAVAILABLE" in table and "h3" in table
    csv_head = render.to_csv(report).splitlines()[0].split(",")
    assert csv_head[:4] == ["device", "node", "host", "id"]
    md = render.to_markdown(report)
    assert "| device | runtime |" in md and "coral-edgetpu" in md
    page = to_html(report)
    assert "<th class=\"l\">device</th>" in page and "raspberry-pi-5" in page


def test_tune_fleet_writes_a_plan_per_device(cluster: Any, tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("onnxruntime")
    import numpy as np

    import edgekit
    from edgekit.models.sample import sample_model

    model = str(sample_model("onnx"))
    plans = tmp_path / "plans"
    frames = tmp_path / "frames"
    frames.mkdir()
    np.save(frames / "a.npy", np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32))
    args = ["tune", model, "--fleet", cluster.address, "--device", "jetson-orin-nano", "--device", "raspberry-pi-5",
            "--device", "coral-edgetpu", "-r", "onnxruntime", "-t", "1", "--budget", "4", "-o", str(plans),
            "--unavailable-after", "5", "--input", f"image={frames}"]
    code, out, err = _cli(args, capsys)
    assert code == 3, out + err  # a device was unavailable: INCOMPLETE, the others' plans written
    assert str(frames) in out and "edgekit-fleet-" not in out  # the summary names the user's folder, not the node's
    assert sorted(p.name for p in plans.iterdir()) == ["jetson-orin-nano.toml", "raspberry-pi-5.toml"]
    assert "coral-edgetpu" in out and "unavailable" in out and "raspberry-pi-5" in out
    for name in ("jetson-orin-nano", "raspberry-pi-5"):
        text = (plans / f"{name}.toml").read_text()
        assert f'device = "{name}"' in text
        pred = edgekit.load(model, plan=plans / f"{name}.toml")
        assert pred.placement.runtime == "onnxruntime"
    code, _, err = _cli(args, capsys)  # never over existing plans without --force, refused before any job
    assert code == 2 and "already exist" in err and "--force" in err


def test_a_fleet_report_calibrates_the_latency_model_of_a_device_it_measured(fleet_reports: dict[str, Any],
                                                                              capsys: Any) -> None:
    """`edgekit devices calibrate DEVICE --from fleet.json`: the device's rows (its nodes profiled its targets), the
    model found by name and sha256 beside the report (the report's path is the node's private copy)."""
    import shutil

    from edgekit.devices import load_profile
    from edgekit.emulation.spec import accelerator_spec
    from edgekit.models.sample import sample_model

    tmp = fleet_reports["tmp"]
    shutil.copy(sample_model("onnx"), tmp / Path(sample_model("onnx")).name)
    code, out, err = _cli(["devices", "calibrate", "raspberry-pi-5", "--from", str(tmp / "one.json"),
                           "-o", str(tmp / "pi.toml"), "--format", "json"], capsys)
    assert code == 0, err
    assert [r["runtime"] for r in json.loads(out)] == [PI] and "Traceback" not in err
    spec = accelerator_spec(load_profile(tmp / "pi.toml"), "cpu")
    assert "one.json" in spec.calibration["data"] and "compute_efficiency[fp32]" in spec.calibration["fitted"]


def _sample_bundle(folder: Path) -> Path:
    """A classification bundle around the sample ONNX model (input image [1, 3, 96, 96], output probs [1, 10])."""
    from edgekit.models.sample import sample_model
    from edgekit.testing.bundles import write_bundle

    return write_bundle(folder, Path(sample_model("onnx")),
                        inputs=[{"name": "image", "shape": [1, 3, 96, 96], "dtype": "float32"}],
                        preprocess={"color": "rgb", "resize": "stretch", "mean": 0, "std": 255, "layout": "NCHW"},
                        postprocess={"kind": "classification", "top_k": 1})


def test_tune_fleet_exits_2_when_every_device_refuses_the_input_the_same_way(cluster: Any, tmp_path: Path,
                                                                              capsys: Any) -> None:
    """A wrong --input refused by the tuner on every device that ran is a usage error, as in a local `edgekit tune`;
    no plan is written."""
    pytest.importorskip("onnxruntime")
    from edgekit.models.sample import sample_model

    plans = tmp_path / "plans"
    args = ["tune", str(sample_model("onnx")), *_wrong_input(tmp_path, "shape"), "--fleet", cluster.address,
            "--device", "raspberry-pi-5", "--device", "coral-edgetpu", "-r", "onnxruntime", "-t", "1", "--budget", "4",
            "-o", str(plans), "--unavailable-after", "5", "-q"]
    code, out, err = _cli(args, capsys)
    assert code == 2, out + err
    assert "error: " in err and "(1, 3, 50, 50)" in err and "Traceback" not in err and "edgekit-fleet-" not in err
    assert not plans.exists() or not list(plans.iterdir())


def test_tune_fleet_embeds_a_plan_per_device_into_a_bundle(cluster: Any, tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("onnxruntime")
    from edgekit.pipeline import load_bundle
    from edgekit.pipeline.config import read_bundle_config

    bundle = _sample_bundle(tmp_path / "cls")
    args = ["tune", "--bundle", str(bundle), "--fleet", cluster.address, "--device", "raspberry-pi-5", "--device",
            "jetson-orin-nano", "--embed", "--budget", "20s", "-r", "onnxruntime", "-t", "1", "--format", "json"]
    copies = tmp_path / "copies"
    code, out, err = _cli([*args, "-o", str(copies)], capsys)  # -o too: each plan written there and embedded
    assert code in (0, 3), out + err  # 3: a winner not confirmed on the shared cores; its plan is embedded still
    rows = {r["device"]: r for r in json.loads(out)}
    plans = bundle / "plans"
    assert sorted(p.name for p in plans.iterdir()) == ["jetson-orin-nano.toml", "raspberry-pi-5.toml"]
    for device in ("raspberry-pi-5", "jetson-orin-nano"):
        assert rows[device]["status"] == "ok" and rows[device]["plan"] == str(copies / f"{device}.toml"), rows
        assert rows[device]["embedded"] == str(plans / f"{device}.toml")
        assert (copies / f"{device}.toml").read_text() == (plans / f"{device}.toml").read_text()
        report = rows[device]["report"]
        assert report["device"] == device and report["bundle"]["kind"] == "classification"  # the task-aware gate
    config = read_bundle_config(bundle)  # the bundle's own checks: plain files, named by the device they name
    assert sorted(config.plans) == ["jetson-orin-nano", "raspberry-pi-5"]
    assert all(plan.device == device and plan.chosen.runtime == "onnxruntime" for device, plan in config.plans.items())
    with load_bundle(bundle, device="raspberry-pi-5") as pipe:  # the device's embedded plan is used
        assert pipe.placement.plan is not None and pipe.placement.runtime == "onnxruntime"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in plans.iterdir()}
    code, out, err = _cli(args, capsys)  # never over the bundle's plans without --force, refused before any job
    assert code == 2 and "already exist" in err and "--force" in err and not out, err
    assert str(plans / "raspberry-pi-5.toml") in err and str(plans / "jetson-orin-nano.toml") in err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in plans.iterdir()} == before


def test_tune_fleet_bundle_usage_errors_before_anything_is_submitted(tmp_path: Path, capsys: Any) -> None:
    """Each refusal comes before the fleet is asked: a head that is not there is never reached (exit 2, its message)."""
    import zipfile

    from edgekit.pipeline.config import MAX_PLANS

    bundle = _sample_bundle(tmp_path / "cls")
    fleet = ["--fleet", f"127.0.0.1:{_free_port()}", "--device", "raspberry-pi-5", "-q"]
    archive = tmp_path / "cls.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(bundle.iterdir()):
            z.write(f, f.name)
    code, _, local = _cli(["tune", "--bundle", str(archive), "--device", "raspberry-pi-5", "--embed", "-q"], capsys)
    assert code == 2 and "is an archive" in local, local
    code, out, err = _cli(["tune", "--bundle", str(archive), *fleet, "--embed"], capsys)
    assert code == 2 and err == local and not out, err  # the local --embed message, word for word

    code, _, err = _cli(["tune", "--bundle", str(bundle), *fleet, "--format", "html"], capsys)
    assert code == 2 and "per device" in err and "--format table" in err, err

    outside = tmp_path / "secret.txt"
    outside.write_text("not the bundle's")
    linked = _sample_bundle(tmp_path / "linked")
    (linked / "labels.txt").symlink_to(outside)
    code, _, err = _cli(["tune", "--bundle", str(linked), *fleet], capsys)
    assert code == 2 and "symbolic link" in err and str(linked / "labels.txt") in err, err

    full = _sample_bundle(tmp_path / "full")
    (full / "plans").mkdir()
    for i in range(MAX_PLANS):
        (full / "plans" / f"device-{i}.toml").write_text("")
    code, _, err = _cli(["tune", "--bundle", str(full), *fleet, "--embed"], capsys)
    assert code == 2 and f"at most {MAX_PLANS}" in err and not (full / "plans" / "raspberry-pi-5.toml").exists(), err
