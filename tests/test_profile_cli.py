"""``edgekit profile`` as a newcomer meets it (issue 14): exit codes, ``--emulate`` agreeing with ``check`` and
placement, messages in the caller's wording, honest precision, one dtype rule, and the report's details."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import edgekit
from edgekit.cli import cli, main
from edgekit.cli.codes import INCOMPLETE, NOTHING, OK, USAGE
from edgekit.errors import WORDING_ENV, UnsupportedModelError, cli_wording, option
from edgekit.profiling import ProfileReport, profile
from edgekit.profiling.render import to_csv, to_markdown
from edgekit.profiling.worker import FAULT_ENV
from edgekit.testing.onnx_models import build_onnx

FAST = ["--duration", "0.3", "--warmup", "2", "--no-op-profile", "-q"]
DEVICE = "snapdragon-8-gen-3"  # targets: onnxruntime/qnn int8, onnxruntime/qnn fp16, litert/gpu fp16, cpu ...


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A private EDGEKIT_CACHE (sample, emulation rewrites), inherited by the worker processes; Python wording."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv(FAULT_ENV, raising=False)
        mp.delenv(WORDING_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def sample() -> dict[str, Path]:
    from edgekit.models.sample import sample_model

    return {"onnx": Path(sample_model("onnx")), "tflite": Path(sample_model("tflite"))}


@pytest.fixture(scope="module")
def dyn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX model with input x[batch, 6]: dynamic, so a static-shape NPU needs its shape."""
    return build_onnx("dynamic_batch", tmp_path_factory.mktemp("dyn") / "dynamic_batch.onnx")


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the console script's entry point in this process: (exit code, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


# -- item 1: exit codes ----------------------------------------------------------------------------

def test_nothing_measured_exits_4(sample: dict[str, Path]) -> None:
    res = CliRunner().invoke(cli, ["profile", str(sample["tflite"]), "--runtime", "onnxruntime", *FAST])
    assert res.exit_code == NOTHING, res.output
    assert "no row" in res.stderr and "onnxruntime" in res.output


def test_some_rows_not_measured_exit_0_with_a_note_or_3_with_strict(sample: dict[str, Path]) -> None:
    args = ["profile", str(sample["onnx"]), "-r", "onnxruntime", "-r", "litert", *FAST]
    lenient = CliRunner().invoke(cli, args)
    assert lenient.exit_code == OK, lenient.output
    assert "1 of 2 rows could not be measured" in lenient.stderr and "--strict" in lenient.stderr
    strict = CliRunner().invoke(cli, [*args, "--strict"])
    assert strict.exit_code == INCOMPLETE, strict.output


def test_emulate_without_device_is_refused_before_measuring(sample: dict[str, Path]) -> None:
    res = CliRunner().invoke(cli, ["profile", str(sample["onnx"]), "-r", "onnxruntime", "--emulate", *FAST])
    assert res.exit_code == USAGE
    assert "--device" in res.output and "edgekit profile:" not in res.output  # nothing was measured or printed


@pytest.mark.parametrize(("runtime", "says"), [("onnxrntime", "onnxruntime"), ("openvino", "its targets run")])
def test_a_runtime_the_device_has_no_target_for_is_a_usage_error(sample: dict[str, Path], runtime: str, says: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--device with an unknown --runtime, or one none of the device's targets runs: exit 2 before measuring (it was
    4, nothing measured), saying what the device's targets run."""
    code, out, err = _main(["profile", str(sample["onnx"]), "--device", "coral-edgetpu", "-r", runtime, *FAST], capsys)
    assert code == USAGE, err
    assert says in err and "Traceback" not in err and not out


# -- item 2: --emulate, check --device and placement agree ------------------------------------------

@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_emulate_check_and_placement_agree_on_the_target(fmt: str, sample: dict[str, Path]) -> None:
    """snapdragon-8-gen-3's first targets are ONNX Runtime (QNN): they cannot read TFLite, and #1 is int8-only."""
    from edgekit.emulation.summary import predicted_vs_measured
    from edgekit.tools.check import OTHER_FORMAT, check_device

    model = sample[fmt]
    placement = edgekit.load(model, device=DEVICE, emulate=True).placement
    chosen = placement.target
    assert chosen is not None
    verdicts = {f"#{c.index}": c for c in check_device(model, DEVICE)}
    index = chosen.split()[0]
    assert verdicts[index].verdict != "unsupported", (chosen, verdicts[index].reasons)
    passed = [r.target.split()[0] for r in placement.trail]
    assert passed and all(verdicts[i].verdict in ("unsupported", OTHER_FORMAT) for i in passed), \
        (passed, placement.explain())
    if fmt == "tflite":
        assert "litert" in chosen and any("does not read tflite" in r.reason for r in placement.trail)
    lines = "\n".join(predicted_vs_measured(model, DEVICE))
    assert f"emulated {chosen}" in lines, lines
    for r in placement.trail:
        assert f"passed over {r.target}: {r.reason}" in lines, lines


# -- item 3: the shapes the CLI already has, and messages in the caller's wording ---------------------

def test_option_wording_follows_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORDING_ENV, raising=False)
    assert not cli_wording()
    assert option("precision") == "precision="
    assert option("input_shapes", {"x": (1, 3)}, cli_value="x=1x3") == "input_shapes={'x': (1, 3)}"
    assert option("device", "auto") == "device='auto'"
    monkeypatch.setenv(WORDING_ENV, "1")
    assert option("precision") == "--precision"
    assert option("input_shapes", {"x": (1, 3)}, cli_value="x=1x3") == "--shape x=1x3"
    assert option("device", "auto") == "--device auto" and option("runtime") == "--runtime"


def test_python_api_names_input_shapes_with_an_example(dyn: Path) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        edgekit.load(dyn, device=DEVICE, emulate=True)
    assert "input_shapes={'x': (1, 6)}" in str(info.value) and "--shape" not in str(info.value)


def test_cli_hint_names_shape_option(dyn: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.emulation.summary import predicted_vs_measured

    monkeypatch.setenv(WORDING_ENV, "1")
    text = "\n".join(predicted_vs_measured(dyn, DEVICE))  # no report, no shapes: the hint is all there is
    assert "--shape x=1x6" in text and "input_shapes" not in text


def test_emulate_uses_the_shapes_the_run_measured(dyn: Path) -> None:
    res = CliRunner().invoke(cli, ["profile", str(dyn), "-r", "onnxruntime", "--device", DEVICE, "--emulate", *FAST])
    assert res.exit_code in (OK, NOTHING), res.output  # the QNN rows cannot run here; the prediction can
    assert re.search(r"predicted \(emulated #2 onnxruntime/qnn fp16 on npu, fp16\): [\d.]+ ms", res.output), res.output
    assert "x 1x6" in res.output  # says which shape the prediction is for


def test_precision_hint_in_python_and_cli_wording(sample: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    rep = profile(sample["onnx"], runtimes=["onnxruntime"], precision="fp16", duration=0.2, warmup=1,
                  op_profile=False)
    assert "Pass precision= one of those" in (rep.results[0].error or "")
    out = tmp_path / "run.json"
    code, _, err = _main(["profile", str(sample["onnx"]), "-r", "onnxruntime", "-p", "fp16", *FAST,
                          "--format", "json", "-o", str(out)], capsys)
    assert code == NOTHING, err
    error = ProfileReport.read(out).results[0].error or ""
    assert "--precision" in error and "precision=" not in error, error  # said by the worker process
    assert os.environ.get(WORDING_ENV) is None  # main() leaves the process as it found it


def test_device_and_runtime_hints_in_cli_wording(sample: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 96, 96, 3), np.float32))
    # the profile has no MNN target: "no target ... with --runtime mnn"
    argv = ["run", str(sample["tflite"]), "--device", DEVICE, "--runtime", "mnn", "--input", f"image={x}"]
    code, _, err = _main(argv, capsys)
    assert code == USAGE and "--runtime mnn" in err and "runtime=" not in err and "--device" in err, err
    with pytest.raises(edgekit.DeviceUnavailableError) as info:
        edgekit.load(sample["tflite"], device=DEVICE, runtime="mnn")
    assert "runtime='mnn'" in str(info.value) and "device=" in str(info.value)


# -- item 4: a requested precision is honoured or the row says why not; parity always has a float32 reference

def _profile_toml(tmp_path: Path, options: str = "") -> Path:
    path = tmp_path / "ov-fp16.toml"
    path.write_text(f"""
name = "ov-fp16"
kind = "cpu"
title = "this host's CPU, OpenVINO asked for fp16"
vendor = "test"
[[units]]
name = "cpu"
kind = "cpu"
title = "host CPU"
peak_gops = {{ fp32 = 100, fp16 = 200, bf16 = 200 }}
bandwidth_gb_s = 10
memory_gb = 1
sources = {{ peak_gops = "estimate: a test profile", bandwidth_gb_s = "estimate: a test profile", memory_gb = "estimate: a test profile" }}
[[targets]]
runtime = "openvino"
accelerator = "cpu"
precision = "fp16"
unit = "cpu"
{options}
""")
    return path


def test_a_precision_not_honoured_is_said_in_the_row(sample: dict[str, Path], tmp_path: Path) -> None:
    # OpenVINO asked for fp16 while its own config forces bf16: what a CPU with bf16 and without fp16 does by itself
    device = _profile_toml(tmp_path, 'options = { config = { INFERENCE_PRECISION_HINT = "bf16" } }')
    rep = profile(sample["onnx"], device=str(device), duration=0.2, warmup=1, op_profile=False)
    (row,) = rep.results
    assert row.status == "ok" and row.precision == "bf16", row.error
    assert row.precision_requested == "fp16"
    assert row.note and "asked fp16, openvino ran bf16" in row.note
    assert "asked fp16, openvino ran bf16" in to_markdown(rep)


def test_no_float32_row_still_gets_a_float32_reference(sample: dict[str, Path]) -> None:
    rep = profile(sample["onnx"], runtimes=["openvino"], precision="bf16", duration=0.2, warmup=1, op_profile=False)
    (row,) = rep.results
    assert row.status == "ok" and row.precision == "bf16"
    assert rep.reference_run is not None and rep.reference_run.precision == "fp32"
    assert rep.reference == rep.reference_run.id != row.id
    assert row.parity is not None and row.parity.reference == rep.reference
    again = ProfileReport.from_json(rep.to_json())  # the schema knows the reference run
    assert again.reference_run is not None and again.reference_run.id == rep.reference


# -- item 9: one dtype rule --------------------------------------------------------------------------

def test_input_files_follow_the_lossless_cast_rule(sample: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    f64, u8 = tmp_path / "f64.npy", tmp_path / "u8.npy"
    np.save(f64, np.zeros((1, 3, 96, 96), np.float64))
    np.save(u8, np.zeros((1, 3, 96, 96), np.uint8))
    code, out, err = _main(["profile", str(sample["onnx"]), "-r", "onnxruntime", "--input", f"image={f64}", *FAST],
                           capsys)
    assert code == USAGE, err
    assert "'image'" in err and "float64" in err and "float32" in err and not out  # refused before measuring
    fine = CliRunner().invoke(cli, ["profile", str(sample["onnx"]), "-r", "onnxruntime", "--input", f"image={u8}",
                                    *FAST])
    assert fine.exit_code == OK, fine.output  # uint8 -> float32 is lossless


# -- item 11: report details --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(sample: dict[str, Path]) -> ProfileReport:
    return profile(sample["onnx"], runtimes=["onnxruntime", "litert"], duration=0.2, warmup=1, op_profile=False)


def test_csv_numbers_are_rounded(small: ProfileReport) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(small))))
    for key in ("load_ms", "first_ms", "p50_ms", "p90_ms", "mean_ms", "std_ms", "throughput_ips", "gflops_per_s"):
        value = rows[0][key]
        digits = value.replace("-", "").replace(".", "").split("e")[0].lstrip("0").rstrip("0")
        assert len(digits) <= 4, (key, value)


def test_markdown_lists_each_library_once(small: ProfileReport) -> None:
    data = small.to_dict()
    data["provenance"]["libraries"] = {"MNN": "3.6.1", "mnn": "3.6.1", "onnxruntime": "1.32.0"}
    md = to_markdown(ProfileReport.from_dict(data))
    assert md.lower().count("mnn 3.6.1") == 1, md


def test_a_skipped_row_is_labelled_with_its_own_format(small: ProfileReport) -> None:
    litert = next(r for r in small.results if r.runtime == "litert")
    assert litert.status == "skipped" and litert.format == "tflite", (litert.format, litert.error)
    assert "onnx" in (litert.error or "")


def test_more_threads_than_cores_warns_once(sample: dict[str, Path]) -> None:
    threads = (os.cpu_count() or 1) * 2
    res = CliRunner().invoke(cli, ["profile", str(sample["onnx"]), "-r", "onnxruntime", "--threads", str(threads),
                                   *FAST])
    assert res.exit_code == OK, res.output
    assert res.stderr.count("oversubscribe") == 1, res.stderr


def test_compare_warns_when_the_baseline_differs(small: ProfileReport, sample: dict[str, Path],
                                                  tmp_path: Path) -> None:
    data = small.to_dict()
    data["provenance"]["threads"] = 7
    ort = next(r for r in data["results"] if r["runtime"] == "onnxruntime")
    ort["version"] = "0.0.1"
    data["models"][0]["inputs"][0]["shape"] = [1, 3, 64, 64]
    base = tmp_path / "base.json"
    base.write_text(json.dumps(data))
    res = CliRunner().invoke(cli, ["profile", str(sample["onnx"]), "-r", "onnxruntime", *FAST, "--compare", str(base),
                                   "--tolerance", "1000%"])
    assert res.exit_code == OK, res.output
    warn = res.stderr
    assert "threads" in warn and "0.0.1" in warn and "1x3x64x64" in warn, warn
