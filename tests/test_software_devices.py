"""Software implementations of GPU APIs are named as such: `edgekit runtimes`, placement, `edgekit profile`.

Mesa's llvmpipe (``apt-get install mesa-vulkan-drivers libvulkan1``) gives ncnn a Vulkan device and
PoCL (``apt-get install pocl-opencl-icd ocl-icd-libopencl1``) gives OpenCV an OpenCL one; both run
the real API code paths on the CPU, so their latency is not a GPU's. Tests skip, naming the
packages, where a device is missing. Also: ``edgekit convert --to ncnn``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.codes import OK, USAGE
from edgekit.models.sample import sample_model
from edgekit.profiling.rows import device_note
from edgekit.registry import get_runtime

VULKAN = "apt-get install mesa-vulkan-drivers libvulkan1"
OPENCL = "apt-get install pocl-opencl-icd ocl-icd-libopencl1"


def _has(runtime: str, accelerator: str) -> bool:
    rt = get_runtime(runtime)
    return rt.is_installed() and accelerator in rt.accelerators()


def _software(runtime: str, accelerator: str) -> bool:
    desc = get_runtime(runtime).accelerator_device(accelerator) if _has(runtime, accelerator) else None
    return bool(desc and "functional check only" in desc)


needs_llvmpipe = pytest.mark.skipif(not _software("ncnn", "vulkan"),
                                    reason=f"no software Vulkan device for ncnn here ({VULKAN}; pip install ncnn)")
needs_pocl = pytest.mark.skipif(not _software("opencv", "opencl"),
                                reason=f"no software OpenCL device for OpenCV here ({OPENCL})")


def _runtimes_json() -> dict[str, dict]:
    from edgekit.cli.runtimes import runtimes

    res = CliRunner().invoke(runtimes, ["--format", "json"])
    assert res.exit_code == OK, res.output
    return {r["runtime"]: r for r in json.loads(res.output)}


@needs_llvmpipe
def test_runtimes_names_llvmpipe_a_software_rasterizer() -> None:
    devices = _runtimes_json()["ncnn"]["devices"]
    assert any(d.startswith("vulkan: llvmpipe (software rasterizer — functional check only, not a GPU)")
               for d in devices), devices


@needs_pocl
def test_runtimes_names_pocl_a_software_cpu_device() -> None:
    devices = _runtimes_json()["opencv"]["devices"]
    assert "opencl: PoCL CPU device (software — functional check only, not a GPU)" in devices, devices


def test_device_note_marks_software_devices_and_fallbacks_only() -> None:
    assert device_note({"options": {"threads": 2}}) is None
    note = device_note({"options": {"software_device": True, "device": "vulkan: llvmpipe (software rasterizer)"}})
    assert note is not None and note.startswith("software device: latency is not GPU latency")
    assert "fell back to the CPU: why" in (device_note({"options": {"fallback": "why"}}) or "")


_PROFILE = """name = "test-software-gpu"
kind = "gpu"
title = "a software Vulkan device (test)"
vendor = "Mesa"

[[units]]
name = "gpu"
kind = "gpu"
title = "llvmpipe"
peak_gops = { fp32 = 100 }
bandwidth_gb_s = 10

[units.sources]
peak_gops = "estimate: test figure"
bandwidth_gb_s = "estimate: test figure"

[[targets]]
runtime = "ncnn"
accelerator = "vulkan"
precision = "fp32"
unit = "gpu"
"""


@needs_llvmpipe
def test_profile_marks_a_software_device_row_in_every_format(tmp_path: Path) -> None:
    from edgekit.cli.profile import profile

    dev = tmp_path / "test-software-gpu.toml"
    dev.write_text(_PROFILE)
    model = tmp_path / "sample.onnx"
    shutil.copyfile(sample_model("onnx"), model)
    out = tmp_path / "report.json"
    res = CliRunner().invoke(profile, [str(model), "--device", str(dev), "--duration", "0.2", "--warmup", "1",
                                       "--format", "json", "--output", str(out)])
    assert res.exit_code == OK, res.output
    rows = [r for r in json.loads(out.read_text())["results"] if r["runtime"] == "ncnn"]
    assert rows and rows[0]["accelerator"] == "vulkan", rows
    assert "software device: latency is not GPU latency" in rows[0]["note"], rows[0]
    for fmt in ("markdown", "html", "table"):
        res = CliRunner().invoke(profile, [str(model), "--device", str(dev), "--duration", "0.1", "--warmup", "1",
                                           "--format", fmt])
        assert "software device: latency is not GPU latency" in " ".join(res.output.split()), (fmt, res.output[-1500:])


def _edgekit(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The console script's behaviour (edgekit errors become exit code 2), in a child process."""
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, timeout=300)


def _pnnx() -> bool:
    from edgekit.runtimes.ncnn_convert import pnnx_path

    return get_runtime("ncnn").is_installed() and pnnx_path() is not None


@pytest.mark.skipif(not _pnnx(), reason="needs ncnn (pip install 'edgekit[ncnn]') and pnnx (edgekit fetch pnnx)")
def test_convert_to_ncnn_writes_param_and_bin_verified_and_never_overwrites(tmp_path: Path) -> None:
    model = tmp_path / "sample.onnx"
    shutil.copyfile(sample_model("onnx"), model)
    res = _edgekit(["convert", str(model), "--to", "ncnn"])
    assert res.returncode == OK, res.stderr
    assert (tmp_path / "sample.param").is_file() and (tmp_path / "sample.bin").is_file()
    assert "onnxruntime (original) vs ncnn (converted)" in res.stdout
    again = _edgekit(["convert", str(model), "--to", "ncnn"])
    assert again.returncode == USAGE and "--force" in again.stderr
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.bin").write_bytes(b"keep")
    clash = _edgekit(["convert", str(model), "--to", "ncnn", "-o", str(tmp_path / "out" / "x.param")])
    assert clash.returncode == USAGE and (tmp_path / "out" / "x.bin").read_bytes() == b"keep"
    forced = _edgekit(["convert", str(model), "--to", "ncnn", "-o", str(tmp_path / "out" / "x.param"),
                                          "--force"])
    assert forced.returncode == OK, forced.stderr
    assert (tmp_path / "out" / "x.bin").stat().st_size > 1000
