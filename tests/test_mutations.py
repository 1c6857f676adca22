"""Behaviours that no other test pinned down: each test here fails when its behaviour is broken.

Each was checked by breaking the code on purpose (a "mutation") and watching the test fail:

* ``--compare``: the p50 regression threshold (``profiling/compare.py``) multiplied by 10;
* ONNX Runtime's "no kernel" error (``runtimes/onnxruntime.py`` ``_translate``) without ``operators=``;
* a device target with ``static_shapes = true`` (``placement.py``) no longer rejecting dynamic inputs.

They go through public entry points only (``compare``, the CLI, ``edgekit.load``, ``Placement``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import edgekit
from edgekit.cli import cli
from edgekit.errors import DeviceUnavailableError, UnsupportedModelError
from edgekit.profiling.compare import compare, parse_tolerance
from edgekit.profiling.results import ProfileReport
from edgekit.testing.onnx_models import build_onnx

# -- --compare: the regression threshold -----------------------------------------------------------

BASE_P50 = 10.0  # ms


def _report_dict(p50: float) -> dict[str, Any]:
    """A minimal report in the documented JSON layout (docs/profile-schema.md) with one onnxruntime result."""
    latency = {"n": 50, "min": p50 * 0.9, "p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2, "max": p50 * 1.3,
               "mean": p50, "std": p50 * 0.05, "p50_ci_low": p50 * 0.99, "p50_ci_high": p50 * 1.01,
               "throughput_ips": 1000.0 / p50, "stop_reason": "budget", "measure_s": 50 * p50 / 1000.0,
               "samples_ms": [p50] * 50, "samples_truncated": False}
    result = {"id": "onnxruntime", "runtime": "onnxruntime", "model": "m.onnx", "format": "onnx", "status": "ok",
              "error": None, "error_type": None, "target": None, "accelerator": "cpu", "precision": "fp32",
              "threads": 1, "version": "1.0", "placement": None, "import_ms": 1.0, "load_ms": 1.0,
              "first_ms": p50, "latency": latency, "gflops_per_s": None, "memory": None, "ops": None,
              "ops_note": None, "parity": None, "libraries": {}, "wall_s": 1.0, "output_tail": None}
    model = {"name": "m.onnx", "path": "m.onnx", "format": "onnx", "size_bytes": 1, "sha256": "0" * 64,
             "flops": None, "macs": None, "flops_uncounted": [], "inputs": []}
    return {"schema": "https://edgekit.dev/schemas/profile-report", "schema_version": "1.0",
            "provenance": {"edgekit": "test", "host": "test", "cpu": "test", "python": "3", "method": {}},
            "models": [model], "results": [result], "reference": None, "partial": False,
            "created": "2025-01-01T00:00:00Z"}


def _report(p50: float) -> ProfileReport:
    return ProfileReport.from_dict(_report_dict(p50))  # validated, as --compare reads a baseline


# 5% tolerance; the current p50 is 6% or 4% away from the baseline's: just outside or just inside it
@pytest.mark.parametrize(("now", "status"), [(10.6, "regressed"), (10.4, "ok"), (9.6, "ok"), (9.4, "faster")])
def test_compare_threshold_is_the_tolerance(now: float, status: str) -> None:
    (row,) = compare(_report(now), _report(BASE_P50), 0.05)
    assert row.change == pytest.approx(now / BASE_P50 - 1)
    assert row.status == status
    assert row.regressed is (status == "regressed")


@pytest.mark.parametrize(("now", "code"), [(10.6, 1), (10.4, 0)])
def test_profile_compare_exit_code_at_the_tolerance(now: float, code: int, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``edgekit profile --compare old.json --tolerance 5%``: exit 1 at 6% slower, 0 at 4% slower."""
    assert parse_tolerance("5%") == pytest.approx(0.05)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_report_dict(BASE_P50)))
    measured = _report(now)
    monkeypatch.setattr("edgekit.profiling.engine.profile", lambda *a, **kw: measured)  # the run "measures" now
    model = build_onnx("conv_relu", tmp_path / "m.onnx")
    res = CliRunner().invoke(cli, ["profile", str(model), "--compare", str(old), "--tolerance", "5%", "-q",
                                   "--format", "json", "-o", str(tmp_path / "now.json")])
    assert res.exit_code == code, res.output
    assert ("REGRESSION" in res.output) is (code == 1)


# -- ONNX Runtime: no kernel for an operator -------------------------------------------------------

def _relu_int16(path: Path) -> Path:
    """``y = Relu(x)`` on int16: valid ONNX (Relu-14 allows int16), but ORT's CPU provider has no such kernel."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.INT16, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT16, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu0")], "relu_int16", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def test_onnxruntime_no_kernel_names_the_operator(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = _relu_int16(tmp_path / "relu_int16.onnx")
    with pytest.raises(Exception, match="Could not find an implementation for Relu"):  # the case under test
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(UnsupportedModelError, match=r"no kernel for operator Relu") as info:
        edgekit.load(path, runtime="onnxruntime")
    assert info.value.operators == ("Relu",)


# -- device profiles: a target that needs static shapes --------------------------------------------

PROFILE = "edgekit-test-static-npu"
PROFILE_TOML = f'''
name = "{PROFILE}"
kind = "npu"
title = "Test NPU that compiles fixed shapes only (first target), with a CPU fallback"
vendor = "edgekit tests"

[[units]]
name = "npu"
kind = "npu"
title = "an NPU (here: ONNX Runtime on the CPU)"
peak_gops = {{ fp32 = 100 }}
bandwidth_gb_s = 10.0
sources = {{ peak_gops = "estimate: test figure", bandwidth_gb_s = "estimate: test figure" }}

[[units]]
name = "cpu"
kind = "cpu"
title = "the host CPU"
peak_gops = {{ fp32 = 50 }}
bandwidth_gb_s = 10.0
sources = {{ peak_gops = "estimate: test figure", bandwidth_gb_s = "estimate: test figure" }}

[[targets]]
runtime = "onnxruntime"
accelerator = "cpu"
precision = "fp32"
unit = "npu"
constraints = {{ static_shapes = true }}

[[targets]]
runtime = "onnxruntime"
accelerator = "cpu"
precision = "fp32"
unit = "cpu"
'''


@pytest.fixture
def static_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A user profile in $EDGEKIT_DEVICES whose first target needs static shapes; returns the loaded profile."""
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "devices"
    folder.mkdir()
    (folder / f"{PROFILE}.toml").write_text(PROFILE_TOML, encoding="utf-8")
    monkeypatch.setenv("EDGEKIT_DEVICES", str(folder))
    from edgekit.devices import get_profile

    profile = get_profile(PROFILE)
    assert profile.targets[0].constraints.static_shapes and not profile.targets[1].constraints.static_shapes
    return profile


def test_static_shapes_target_takes_a_static_model(static_profile: Any, tmp_path: Path) -> None:
    """The control: the first target itself works here, so a rejection below is about shapes alone."""
    with edgekit.load(build_onnx("conv_relu", tmp_path / "static.onnx"), device=PROFILE, strict=True) as m:
        assert m.placement.target == static_profile.targets[0].describe()
        assert m.placement.trail == ()


def test_static_shapes_target_refuses_dynamic_model_when_strict(static_profile: Any, tmp_path: Path) -> None:
    model = build_onnx("dynamic_batch", tmp_path / "dynamic.onnx")
    with pytest.raises(DeviceUnavailableError, match="static shapes") as info:
        edgekit.load(model, device=PROFILE, strict=True)
    assert static_profile.targets[0].describe() in str(info.value)
    assert "dynamic" in str(info.value)


def test_static_shapes_target_falls_back_with_the_reason(static_profile: Any, tmp_path: Path) -> None:
    model = build_onnx("dynamic_batch", tmp_path / "dynamic.onnx")
    with edgekit.load(model, device=PROFILE) as m:
        placement = m.placement
    assert placement.target == static_profile.targets[1].describe()
    assert placement.fell_back
    (rejected,) = placement.trail
    assert rejected.target == static_profile.targets[0].describe()
    assert "static shapes" in rejected.reason and "dynamic" in rejected.reason
    assert "static shapes" in placement.explain()
