"""The command line's shared parameters: one ``--shape`` parser, one ``--format`` option per command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from edgekit.cli import cli, main
from edgekit.cli.output import FORMATS
from edgekit.cli.params import SHAPE, ShapeParam
from edgekit.testing.cli import walk_commands
from edgekit.testing.onnx_models import build_onnx

ALL_FORMATS = (*FORMATS, "html")

#: command path -> the formats its --format accepts; a command missing here must have no --format
EXPECTED_FORMATS: dict[str, tuple[str, ...]] = {
    "runtimes": FORMATS,
    "devices": FORMATS,
    "devices show": FORMATS,
    "devices detect": FORMATS,
    "devices calibrate": FORMATS,
    "profile": (*FORMATS, "html"),
    "run": FORMATS,
    "bundle check": FORMATS,
    "bundle presets": FORMATS,
    "inspect": FORMATS,
    "check": FORMATS,
    "quantize": ("table", "json"),
    "convert": ("table", "json"),
    "tune": ("table", "json", "html"),
    "fleet status": FORMATS,
}

SHAPE_COMMANDS = {"profile", "inspect", "convert", "tune", "run"}


def _option(cmd: click.Command, flag: str) -> click.Option | None:
    return next((p for p in cmd.params if isinstance(p, click.Option) and flag in p.opts), None)


@pytest.fixture(scope="module")
def dyn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX model with input x[batch, 6]."""
    return build_onnx("dynamic_batch", tmp_path_factory.mktemp("cli") / "dynamic_batch.onnx")


# -- --shape ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("x=1x3x640x640", ("x", (1, 3, 640, 640))),
    ("x=1,3,640,640", ("x", (1, 3, 640, 640))),
    ("images=1X3X32X32", ("images", (1, 3, 32, 32))),
    (" x = 2x6 ", ("x", (2, 6))),
    ("input.1=8", ("input.1", (8,))),
    ("serving_default_x:0=1x224x224x3", ("serving_default_x:0", (1, 224, 224, 3))),
])
def test_shape_param_parses(text: str, expected: tuple[str, tuple[int, ...]]) -> None:
    assert SHAPE.convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["x", "x=", "=1x3", "x=1xax3", "x=1x3x", "x=1.5x3", "x=1;3", "x=-1x6", ""])
def test_shape_param_rejects_with_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter, match=r"x=1x3x640x640") as info:
        SHAPE.convert(text, None, None)
    assert info.value.exit_code == 2


def test_every_shape_option_uses_the_one_parser() -> None:
    found = {path for path, cmd in walk_commands(cli) if _option(cmd, "--shape") is not None}
    assert found == SHAPE_COMMANDS
    for path, cmd in walk_commands(cli):
        opt = _option(cmd, "--shape")
        if opt is not None:
            assert isinstance(opt.type, ShapeParam), path
            assert opt.multiple and opt.name == "shapes" and opt.metavar == "NAME=1x3xHxW", path


def test_inspect_uses_the_given_shape(dyn_model: Path) -> None:
    import json

    default = CliRunner().invoke(cli, ["inspect", str(dyn_model), "--format", "json"])
    given = CliRunner().invoke(cli, ["inspect", str(dyn_model), "--shape", "x=4x6", "--format", "json"])
    commas = CliRunner().invoke(cli, ["inspect", str(dyn_model), "--shape", "x=4,6", "--format", "json"])
    assert default.exit_code == given.exit_code == commas.exit_code == 0, (default.output, given.output)
    flops_1, flops_4 = json.loads(default.output)["flops"], json.loads(given.output)["flops"]
    assert flops_4 == 4 * flops_1 > 0  # FLOPs scale with the batch the shape gave
    assert json.loads(commas.output)["flops"] == flops_4


def test_profile_and_convert_receive_a_dict_of_tuples(dyn_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_profile(model: Any, **kw: Any) -> Any:
        seen["profile"] = kw["shapes"]
        raise Stop

    def fake_convert(model: Any, out: Any, **kw: Any) -> Any:
        seen["convert"] = kw["dims"]
        raise Stop

    monkeypatch.setattr("edgekit.profiling.engine.profile", fake_profile)
    monkeypatch.setattr("edgekit.tools.convert.convert_model", fake_convert)
    shapes = ["--shape", "x=2x6", "--shape", "y=1,3,8,8"]
    res = CliRunner().invoke(cli, ["profile", str(dyn_model), "-q", *shapes])
    assert isinstance(res.exception, Stop), res.output
    res = CliRunner().invoke(cli, ["convert", str(dyn_model), "--to", "onnx", *shapes])
    assert isinstance(res.exception, Stop), res.output
    assert seen == {"profile": {"x": (2, 6), "y": (1, 3, 8, 8)}, "convert": {"x": (2, 6), "y": (1, 3, 8, 8)}}


@pytest.mark.parametrize("command", sorted(SHAPE_COMMANDS))
@pytest.mark.parametrize("bad", ["x", "x=1xHx3", "x=-1x6"])
def test_bad_shape_is_exit_2_naming_the_option(command: str, bad: str, dyn_model: Path) -> None:
    extra = ["--to", "onnx"] if command == "convert" else []
    res = CliRunner().invoke(cli, [command, str(dyn_model), *extra, "--shape", bad])
    assert res.exit_code == 2, res.output
    assert "Invalid value for '--shape'" in res.output and repr(bad) in res.output
    assert "e.g. --shape x=1x3x640x640" in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)


def test_bad_shape_through_the_console_entry_point(dyn_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inspect", str(dyn_model), "--shape", "x=1xHx3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--shape'" in err and "Traceback" not in err


# -- --format --------------------------------------------------------------------------------------

def _required_args(path: str, tmp_path: Path) -> list[str]:
    """Enough arguments for ``path`` to parse (nothing is run)."""
    existing = tmp_path / "m.onnx"
    existing.write_bytes(b"")
    return {
        "devices show": ["coral-edgetpu"],
        "devices calibrate": ["coral-edgetpu", "--from", str(existing)],
        "run": [str(existing), "--input", "x.npy"],
        "bundle check": [str(existing)],
        "inspect": [str(existing)],
        "check": [str(existing)],
        "quantize": [str(existing)],
        "convert": [str(existing), "--to", "onnx"],
        "tune": [str(existing)],
    }.get(path, [])


def test_the_commands_with_format_are_the_expected_ones() -> None:
    assert {path for path, cmd in walk_commands(cli) if _option(cmd, "--format") is not None} == set(EXPECTED_FORMATS)


@pytest.mark.parametrize("path", sorted(EXPECTED_FORMATS))
def test_format_is_the_shared_option(path: str) -> None:
    cmd = dict(walk_commands(cli))[path]
    opt = _option(cmd, "--format")
    assert opt is not None
    assert opt.name == "fmt" and opt.opts == ["--format"] and opt.default == "table" and opt.show_default
    assert opt.help == "Output format."
    assert isinstance(opt.type, click.Choice) and tuple(opt.type.choices) == EXPECTED_FORMATS[path]


@pytest.mark.parametrize("path", sorted(EXPECTED_FORMATS))
def test_format_accepts_exactly_what_the_command_renders(path: str, tmp_path: Path) -> None:
    cmd = dict(walk_commands(cli))[path]
    args = _required_args(path, tmp_path)
    accepted = set()
    for fmt in (*ALL_FORMATS, "bogus"):
        try:
            ctx = cmd.make_context(path, ["--format", fmt, *args])  # parses and converts; runs nothing
        except click.BadParameter as exc:
            assert exc.param is not None and exc.param.name == "fmt", (path, fmt, exc)
            continue
        assert ctx.params["fmt"] == fmt
        accepted.add(fmt)
    assert accepted == set(EXPECTED_FORMATS[path])
    assert cmd.make_context(path, list(args)).params["fmt"] == "table"


@pytest.mark.parametrize(("argv", "rejected"), [
    (["quantize", "m.onnx", "--format", "csv"], "csv"),
    (["convert", "m.onnx", "--to", "onnx", "--format", "markdown"], "markdown"),
    (["run", "m.onnx", "--input", "x.npy", "--format", "html"], "html"),
    (["inspect", "m.onnx", "--format", "html"], "html"),
    (["profile", "--format", "xml"], "xml"),
])
def test_unsupported_format_is_exit_2(argv: list[str], rejected: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"")
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 2, res.output
    assert "Invalid value for '--format'" in res.output and repr(rejected) in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("content", [b"<html><body>a report</body></html>", bytes(range(256)), b'{"schema": 1}'])
def test_compare_with_something_that_is_not_a_json_report_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    """--compare report.html (or a model file) used to end in a traceback with exit 1, the regression code."""
    import subprocess
    import sys

    baseline = tmp_path / "baseline.html"
    baseline.write_bytes(content)
    res = subprocess.run([sys.executable, "-m", "edgekit", "profile", "--compare", str(baseline), "--duration", "0.1"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 2, (res.returncode, res.stderr[-500:])
    assert "Traceback" not in res.stderr and "baseline.html" in res.stderr
