"""``edgekit check`` as a newcomer meets it (issue 14, item 10): one verdict logic for ``--runtime`` and
``--device``, failing backend cases weighed against how the model uses the operator, a footer only when
it applies, and exit codes that say whether every target, some or none runs the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from edgekit.cli import cli
from edgekit.cli.codes import INCOMPLETE, NOTHING, OK
from edgekit.models.sample import sample_model
from edgekit.tools.check import OTHER_FORMAT, check_device, check_runtimes
from edgekit.tools.opdata import op_support


def _check(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["check", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def sample() -> Path:
    return sample_model("onnx")


def test_sample_model_is_supported_by_every_runtime_that_reads_it(sample: Path) -> None:
    """The sample runs with parity everywhere; OpenCV was 'partial' because one Clip case (min > max, fed at run
    time, on a 1-D input) fails there, which is not how the sample uses Clip (constants 0 and 6, a 4-D input)."""
    code, out = _check(str(sample), "--format", "json")
    rows = json.loads(out)
    assert {r["runtime"] for r in rows} == {"onnxruntime", "openvino", "opencv", "mnn", "ncnn"}  # with ONNX data
    assert all(r["verdict"] == "supported" for r in rows), rows
    assert code == OK


@pytest.mark.parametrize("device", ["generic-x86-64", "raspberry-pi-5"])
def test_runtime_and_device_modes_give_the_same_verdict(sample: Path, device: str) -> None:
    by_runtime = {r.runtime: r.verdict for r in check_runtimes(sample, ["onnxruntime", "openvino", "opencv", "mnn",
                                                                         "ncnn", "litert"])}
    for t in check_device(sample, device):
        assert t.runtime is not None
        if t.verdict == OTHER_FORMAT:  # a target placement passes over: the runtime does not read ONNX
            assert by_runtime[t.runtime.runtime] == "unsupported" and "does not read onnx" in t.runtime.reason
            continue
        assert t.verdict == by_runtime[t.runtime.runtime], (t.target, t.verdict, t.reasons)


def _case_model(case: str) -> Path:
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node" / case / "model.onnx"
    if not path.is_file():
        pytest.skip(f"the installed onnx {onnx.__version__} ships no backend case {case} (the test extra pins 1.22.0)")
    return path


def test_a_failing_case_that_is_the_models_use_blocks(tmp_path: Path) -> None:
    """ONNX Runtime refuses LSTM with layout=1 (test_lstm_batchwise); a model with that LSTM is unsupported there,
    while the same LSTM with layout=0 is supported (the failing case is not how it uses LSTM)."""
    assert op_support("onnxruntime", "onnx").status("LSTM") == "partial"
    batchwise = _case_model("test_lstm_batchwise")
    ort = check_runtimes(batchwise, ["onnxruntime"])[0]
    assert ort.verdict == "unsupported" and ort.blocking == ["LSTM"], ort
    assert "test_lstm_batchwise" in ort.reason
    model = onnx.load(str(batchwise))
    for a in model.graph.node[0].attribute:
        if a.name == "layout":
            a.i = 0
    other = tmp_path / "lstm.onnx"
    onnx.save(model, str(other))
    ort = check_runtimes(other, ["onnxruntime"])[0]
    assert ort.verdict == "supported", ort
    assert any("LSTM: 1 failing case" in line for line in ort.details()), ort.details()


def test_partitioned_footer_only_when_something_runs_on_the_cpu(sample: Path) -> None:
    code, out = _check(str(sample), "--device", "raspberry-pi-5")
    assert "partitioned:" not in out, out
    code, out = _check(str(sample), "--device", "apple-m-series")
    assert "partitioned:" in out and "Softmax" in out, out


def test_exit_codes(sample: Path) -> None:
    """0 every target runs it; 3 some do not (the Edge TPU needs int8, LiteRT reads no ONNX so its targets are
    "other format" and only the CPU is left: incomplete);
    4 none does."""
    assert _check(str(sample), "--runtime", "onnxruntime")[0] == OK
    code, out = _check(str(sample), "--device", "coral-edgetpu", "--format", "json")
    rows = json.loads(out)
    assert [r["verdict"] for r in rows] == ["other format", "other format", "supported"], rows
    assert code == INCOMPLETE
    assert _check(str(sample), "--runtime", "litert")[0] == NOTHING
    assert _check(str(sample_model("tflite")), "--runtime", "onnxruntime", "--runtime", "opencv")[0] == NOTHING
    from edgekit.cli import check as check_module

    doc = check_module.__doc__ or ""
    assert all(name in doc for name in ("OK", "INCOMPLETE", "NOTHING", "USAGE")), doc


def test_tflite_all_checks_runtimes_with_data_and_names_the_others() -> None:
    code, out = _check(str(sample_model("tflite")))
    assert code == OK, out
    assert "No operator data for mnn, opencv, openvino" in " ".join(out.split()), out


def test_misspelled_runtime_gets_a_suggestion(sample: Path) -> None:
    """An edgekit error: ``edgekit.cli.main`` prints it and exits USAGE (tests/test_cli_battery.py)."""
    from edgekit.errors import UnknownRuntimeError

    res = CliRunner().invoke(cli, ["check", str(sample), "--runtime", "onnxrntime"])
    assert isinstance(res.exception, UnknownRuntimeError)
    assert "did you mean 'onnxruntime'?" in str(res.exception)
