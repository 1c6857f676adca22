"""Every command against a battery of bad inputs: the documented exit code, one clear message, never a traceback.

Exit codes are an interface (``edgekit.cli.codes``): CI scripts branch on them. Each case runs the real
command in-process through ``edgekit.cli.main`` (workers it starts are real subprocesses) and captures
the file descriptors, so a traceback printed by a worker would be caught too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit.cli import cli, main
from edgekit.cli.codes import USAGE
from edgekit.models.sample import sample_model
from edgekit.testing.cli import walk_commands

#: the files each case may refer to, by placeholder
FILES = {
    "{missing}": "nope.onnx",
    "{dir}": "folder",
    "{empty}": "empty.onnx",
    "{garbage}": "garbage.onnx",
    "{garbage_tflite}": "garbage.tflite",
    "{html}": "report.html",
    "{text}": "notes.txt",
    "{onnx}": "model.onnx",
    "{tflite}": "model.tflite",
    "{f64}": "f64.npy",
    "{good}": "good.npy",
    "{wrong_shape}": "wrong.npy",
    "{existing}": "existing.onnx",
    "{plan_bad}": "bad.plan.toml",
    "{toml_bad}": "bad-device.toml",
    "{report_bad}": "bad-report.json",
}

BAD_MODELS = ["{missing}", "{dir}", "{empty}", "{garbage}", "{garbage_tflite}", "{html}", "{text}"]

#: command line -> a fragment the message must contain (lower-case); each case must exit USAGE (2)
CASES: list[tuple[str, str]] = [
    *[(f"inspect {m}", "") for m in BAD_MODELS],
    *[(f"check {m}", "") for m in BAD_MODELS],
    *[(f"profile {m} --duration 0.1", "") for m in BAD_MODELS],
    *[(f"run {m} --input {{good}}", "") for m in BAD_MODELS],
    *[(f"convert {m} --to onnx --precision fp16", "") for m in BAD_MODELS],
    *[(f"quantize {m} --mode dynamic --no-measure", "") for m in BAD_MODELS],
    *[(f"tune {m} --budget 5", "") for m in BAD_MODELS],
    *[(f"bundle create {m} --preset imagenet -o out_bundle", "") for m in BAD_MODELS],
    *[(f"bundle check {m}", "") for m in BAD_MODELS],
    # options
    ("runtimes --format yaml", "yaml"),
    ("agent --address 127.0.0.1:1 --device rasberry-pi-5", "raspberry-pi-5"),
    ("agent --address 127.0.0.1:1", "no Ray head answers at 127.0.0.1:1"),
    ("fleet status --address 127.0.0.1:1", "ray start --head"),
    ("fleet status --address ray://head:10001", "is not HOST:PORT"),
    ("devices show rasberry-pi-5", "raspberry-pi-5"),
    ("devices show {toml_bad}", "bad-device.toml"),
    ("devices calibrate rasberry-pi-5 --from {toml_bad}", "raspberry-pi-5"),
    ("devices calibrate coral-edgetpu --from {missing}", "nope"),
    ("devices calibrate coral-edgetpu --from {html}", "report.html"),
    ("devices calibrate generic-x86-64 --from {report_bad}", "$.results[0]: expected object"),
    ("inspect {onnx} --shape x=abc", "abc"),
    ("inspect {onnx} --shape image=0x3x96x96", ""),
    ("check {onnx} --runtime onnxrntime", "onnxruntime"),
    ("check {onnx} --device rasberry-pi-5", "raspberry-pi-5"),
    ("profile {onnx} --runtime onnxrntime --duration 0.1", "onnxruntime"),
    ("profile {onnx} --device rasberry-pi-5 --duration 0.1", "raspberry-pi-5"),
    ("profile {onnx} --precision fp7 --duration 0.1", "fp7"),
    ("profile {onnx} --threads 0 --duration 0.1", "threads"),
    ("profile {onnx} --input image={missing} --duration 0.1", "nope"),
    ("profile {onnx} --input nosuch={wrong_shape} --duration 0.1", "nosuch"),
    ("profile {onnx} --input image={wrong_shape} --duration 0.1", "image"),
    ("profile {onnx} --input image={f64} --duration 0.1", "float64"),
    ("profile {onnx} --compare {html} --duration 0.1", "report.html"),
    ("profile {onnx} --compare {onnx} --duration 0.1", "model.onnx"),
    ("profile {onnx} --emulate --duration 0.1", "--device"),
    ("profile {onnx} --duration -1", "duration"),
    ("run {onnx} --input {good} --runtime onnxrntime", "onnxruntime"),
    ("run {onnx} --input image={wrong_shape}", "image"),
    ("run {onnx} --input image={f64}", "float64"),
    ("run {onnx} --input {missing}", "nope"),
    ("run {onnx} --input {good} --precision fp7", "fp7"),
    ("run {onnx} --input {good} --plan {plan_bad}", "bad.plan.toml"),
    ("run {onnx}", "--input"),
    ("run {dir} --input {good}", "edgekit.toml"),
    ("convert {onnx} --to tensorrt", "tensorrt"),
    ("convert {onnx} --to onnx --precision fp16 -o {existing}", "--force"),
    ("convert {onnx} --to onnx --precision fp16 -o {onnx} --force", "model.onnx"),
    ("quantize {tflite}", "tflite"),
    ("quantize {onnx} --mode dynamic -o {existing} --no-measure", "--force"),
    ("quantize {onnx} --calibration {missing}", "nope"),
    ("tune {onnx} --budget soon", "soon"),
    ("tune {onnx} --budget 5 --runtime onnxrntime", "onnxruntime"),
    ("tune {onnx} --budget 5 --device rasberry-pi-5", "raspberry-pi-5"),
    ("tune {onnx} --budget 5 -o {existing}", "--force"),
    ("tune {onnx} --budget 5 --embed", "--bundle"),
    ("tune {onnx} --budget 5 --tolerance bogus", "bogus"),
    ("bundle create {onnx} --preset no-such-preset -o out_bundle", "no-such-preset"),
    ("bundle check {dir}", "edgekit.toml"),
    ("fetch pnnxx", "pnnx"),
    ("profile {onnx} --strict --strict-ish", "--strict-ish"),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("battery")
    (d / "folder").mkdir()
    np.save(d / "folder" / "frame.npy", np.zeros((1, 3, 96, 96), np.float32))
    (d / "empty.onnx").write_bytes(b"")
    rng = np.random.default_rng(0)
    (d / "garbage.onnx").write_bytes(rng.bytes(4096))
    (d / "garbage.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + rng.bytes(2048))
    (d / "report.html").write_text("<html><body>not a report</body></html>")
    (d / "notes.txt").write_text("hello\n")
    shutil.copy(sample_model("onnx"), d / "model.onnx")
    shutil.copy(sample_model("tflite"), d / "model.tflite")
    np.save(d / "f64.npy", np.zeros((1, 3, 96, 96), np.float64))
    np.save(d / "good.npy", np.zeros((1, 3, 96, 96), np.float32))
    np.save(d / "wrong.npy", np.zeros((1, 3, 7, 7), np.float32))
    (d / "existing.onnx").write_bytes(b"precious")
    (d / "bad.plan.toml").write_text("this is = = not toml\n")
    (d / "bad-device.toml").write_text("[device\nname = 1\n")
    (d / "bad-report.json").write_text('{"provenance": {"device": "generic-x86-64"}, "models": ["x"], "results": [1]}')
    return d


def _argv(line: str, d: Path) -> list[str]:
    words = line.split()
    out = []
    for w in words:
        for key, name in FILES.items():
            w = w.replace(key, str(d / name))
        out.append(w)
    return out


def _run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    return int(code or 0), out + err


@pytest.mark.parametrize("line,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_usage_error(line: str, fragment: str, workdir: Path, capfd: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    code, text = _run(_argv(line, workdir), capfd)
    assert "Traceback" not in text, text
    assert code == USAGE, f"exit {code}, expected {USAGE}:\n{text}"
    assert text.strip(), "an error must say what happened"
    assert fragment.lower() in text.lower(), f"message should mention {fragment!r}:\n{text}"
    assert (workdir / "existing.onnx").read_bytes() == b"precious"


def test_battery_covers_every_command() -> None:
    covered = {" ".join(w for w in line.split()[:2] if not w.startswith(("{", "-"))) for line, _ in CASES}
    covered |= {line.split()[0] for line, _ in CASES}
    missing = [c for c, _ in walk_commands(cli, leaves_only=True)
               if c not in covered and c not in {"devices", "bundle presets", "devices detect"}]
    assert not missing, f"commands without a bad-input case: {missing}"
