"""The public API is small, sorted and complete; the catalogs ship and validate."""

from __future__ import annotations

import subprocess
import sys

import edgekit
from edgekit.catalog import runtime_infos
from edgekit.registry import get_runtime, runtime_names


def test_all_sorted_and_complete() -> None:
    assert edgekit.__all__ == sorted(edgekit.__all__)
    public = {n for n in dir(edgekit) if not n.startswith("_") and n not in {"annotations"}}
    modules = {n for n in public if type(getattr(edgekit, n)).__name__ == "module"}
    assert set(edgekit.__all__) - {"__version__"} == public - modules


def test_every_builtin_runtime_has_a_catalog_entry_and_entry_point() -> None:
    names = set(runtime_names())
    assert {"onnxruntime", "litert", "openvino", "opencv", "mnn"} <= names
    assert names == set(runtime_infos())
    for name in names:
        rt = get_runtime(name)
        assert rt.name == name and rt.info.name == name
        assert rt.info.install_hint == f"pip install 'edgekit[{rt.info.extra}]'"


def test_runtimes_cli_json() -> None:
    import json

    out = subprocess.run([sys.executable, "-m", "edgekit", "runtimes", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    rows = {r["runtime"]: r for r in json.loads(out)}
    assert rows["onnxruntime"]["version"] == get_runtime("onnxruntime").version()
    assert "cpu" in rows["onnxruntime"]["accelerators here"]
    assert "onnx" in rows["openvino"]["formats"] and "tflite" in rows["openvino"]["formats"]
    assert "onnx (converts)" in rows["mnn"]["formats"]


def test_runtimes_cli_names_extra_when_missing(monkeypatch) -> None:
    from click.testing import CliRunner

    from edgekit.cli import cli

    monkeypatch.setattr(type(get_runtime("opencv")), "is_installed", lambda self: False)
    result = CliRunner().invoke(cli, ["runtimes", "--format", "csv"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("opencv,"))
    assert "not installed: pip install 'edgekit[opencv]'" in line
