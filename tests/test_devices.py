"""Device profiles: validation, user profiles and extends, placement on this host, detection.

Placement runs the real runtimes installed here (x86-64, no GPU); the expectations are derived
from what each adapter reports, so the same tests hold on a host with more accelerators.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

import edgekit
from edgekit.devices import HostInfo, detect, get_profile, list_profiles, load_profile, profile_names
from edgekit.errors import ConfigError, DeviceUnavailableError, UnknownDeviceError
from edgekit.models.formats import open_model
from edgekit.models.precision import model_precision
from edgekit.registry import get_runtime

HOSTS = Path(__file__).parent / "data" / "hosts"
REQUIRED = {"generic-x86-64", "generic-aarch64", "raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano",
            "nvidia-rtx-4090", "intel-core-ultra", "coral-edgetpu", "snapdragon-8-gen-3", "android-nnapi",
            "apple-m-series", "rockchip-rk3588", "mediatek-dimensity", "hailo-8"}

UNIT = """
[[units]]
name = "cpu"
kind = "cpu"
title = "test cpu"
peak_gops = { fp32 = 10, int8 = 40 }
bandwidth_gb_s = 5
[units.sources]
peak_gops = "estimate: test"
bandwidth_gb_s = "https://example.org/spec"
"""
TARGET = """
[[targets]]
runtime = "{runtime}"
accelerator = "{accelerator}"
precision = "fp32"
unit = "cpu"
"""


def _profile(folder: Path, name: str, head: str = "", *, runtime: str = "onnxruntime", accelerator: str = "cpu",
             units: str = UNIT) -> Path:
    text = f'name = "{name}"\nkind = "cpu"\ntitle = "t"\nvendor = "v"\n{head}\n{units}' + TARGET.format(
        runtime=runtime, accelerator=accelerator)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def _present(runtime: str, accelerator: str) -> bool:
    try:
        rt = get_runtime(runtime)
        return rt.is_installed() and accelerator in rt.accelerators()
    except Exception:
        return False


# --- the shipped catalog -----------------------------------------------------------------------

def test_every_shipped_profile_validates():
    profiles = {p.name: p for p in list_profiles()}
    assert REQUIRED <= set(profiles)
    assert {p.kind for p in profiles.values()} == {"cpu", "gpu", "npu"}
    for p in profiles.values():
        assert p.builtin and p.path.parent.name == p.kind and p.path.stem == p.name
        for u in p.units:
            assert u.peak_gops and u.bandwidth_gb_s > 0
            assert set(u.sources) >= {"peak_gops", "bandwidth_gb_s"}
        for t in p.targets:
            assert t.precision in p.unit(t.unit).precisions


def test_profiles_name_their_key_accelerators():
    assert get_profile("coral-edgetpu").targets[0].delegate == "libedgetpu.so.1"
    assert get_profile("coral-edgetpu").unit("edgetpu").precisions == ("int8",)
    assert [(t.runtime, t.accelerator) for t in get_profile("intel-core-ultra").targets][:3] == [
        ("openvino", "npu"), ("openvino", "gpu"), ("openvino", "cpu")]
    assert ("onnxruntime", "qnn") in [(t.runtime, t.accelerator) for t in get_profile("snapdragon-8-gen-3").targets]
    assert get_profile("rockchip-rk3588").targets[0].plugin  # RKNN: honest, not an edgekit runtime


# --- malformed profiles ------------------------------------------------------------------------

@pytest.mark.parametrize("head, runtime, accelerator, expected", [
    ("colour = 'red'", "onnxruntime", "cpu", "unknown key(s) ['colour']"),
    ("notes = 'x'", "onnxruntime", "cpu", "key 'notes' expected a list, got str 'x'"),
    ("", "tensorflowjs", "cpu", "key 'runtime' expected a registered runtime"),
    ("", "onnxruntime", "npu", "key 'accelerator' expected one of onnxruntime's accelerators"),
    ("", "openvino", "cuda", "got 'cuda'"),
])
def test_malformed_profile_errors_name_file_key_expected_got(tmp_path, head, runtime, accelerator, expected):
    path = _profile(tmp_path, "bad", head, runtime=runtime, accelerator=accelerator)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_wrong_type_bad_toml_and_missing_source(tmp_path):
    p = tmp_path / "k.toml"
    p.write_text('name = "k"\nkind = 3\n')
    with pytest.raises(ConfigError, match=r"key 'kind' expected a string, got int 3"):
        load_profile(p)
    p.write_text('name = "k"\nkind = "cpu\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(p)
    no_source = UNIT.replace('bandwidth_gb_s = "https://example.org/spec"', 'bandwidth_gb_s = "trust me"')
    with pytest.raises(ConfigError, match=r"sources.bandwidth_gb_s' expected a string citing the figure"):
        load_profile(_profile(tmp_path, "nosrc", units=no_source))
    p = _profile(tmp_path, "prec")
    p.write_text(p.read_text().replace('precision = "fp32"', 'precision = "fp16"'))
    with pytest.raises(ConfigError, match=r"unit 'cpu''s precisions \['fp32', 'int8'\]"):
        load_profile(p)


def test_extends_loop_and_unknown_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_DEVICES", str(tmp_path))
    _profile(tmp_path, "loop-a", 'extends = "loop-b"')
    _profile(tmp_path, "loop-b", 'extends = "loop-a"')
    with pytest.raises(ConfigError, match="forms a loop"):
        get_profile("loop-a")
    with pytest.raises(ConfigError, match="key 'extends' expected an existing profile name, got 'nowhere'"):
        load_profile(_profile(tmp_path, "orphan", 'extends = "nowhere"'))


def test_extends_chain_reads_each_parent_once_and_is_capped(tmp_path, monkeypatch):
    """A chain used to read each parent twice per level (depth 16 took 102 s); now linear, and capped."""
    import edgekit.devices as devices
    from edgekit.tomlfile import read_toml

    monkeypatch.setenv("EDGEKIT_DEVICES", str(tmp_path))
    depth = devices.MAX_EXTENDS_DEPTH
    _profile(tmp_path, "chain-0")
    for i in range(1, depth + 3):
        _profile(tmp_path, f"chain-{i}", f'extends = "chain-{i - 1}"')
    reads: list[str] = []

    def counting(path):
        reads.append(Path(path).stem)
        return read_toml(path)

    monkeypatch.setattr(devices, "read_toml", counting)
    p = load_profile(tmp_path / f"chain-{depth - 1}.toml")
    assert p.name == f"chain-{depth - 1}"
    assert sorted(reads) == sorted(f"chain-{i}" for i in range(depth)), reads  # once each
    with pytest.raises(ConfigError, match=f"chains more than {depth} profiles"):
        load_profile(tmp_path / f"chain-{depth + 2}.toml")


# --- user profiles -----------------------------------------------------------------------------

def test_user_profile_extends_builtin_from_env_folder_and_path(tmp_path, monkeypatch, build):
    path = tmp_path / "my-board.toml"
    path.write_text('name = "my-board"\nextends = "raspberry-pi-5"\ntitle = "my board"\n'
                    "[constraints]\nmax_model_mb = 64\n")
    monkeypatch.setenv("EDGEKIT_DEVICES", str(tmp_path))
    p = get_profile("my-board")
    assert p.title == "my board" and p.kind == "cpu" and p.extends == "raspberry-pi-5"
    assert [t.describe() for t in p.targets] == [t.describe() for t in get_profile("raspberry-pi-5").targets]
    assert all(t.constraints.max_model_mb == 64 for t in p.targets)
    assert p.constraints.max_model_mb == 64 and p.constraints.max_memory_mb == 16384  # merged
    assert not any(vars(p.detect).values())  # detect is never inherited
    assert "my-board" in profile_names()
    with edgekit.load(build("conv_relu", "onnx"), device=str(path)) as m:
        assert m.placement.device == "my-board"


def test_unknown_device_suggests_close_names():
    with pytest.raises(UnknownDeviceError, match="did you mean 'raspberry-pi-5'"):
        get_profile("raspberry-pi5")


# --- placement on this host, real probes -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_placement_on_this_host_for_every_profile(name, build):
    profile = get_profile(name)
    model = build("conv_relu", "onnx")
    try:
        m = edgekit.load(model, device=name)
    except DeviceUnavailableError as exc:  # every ONNX-capable target was rejected: each is listed
        onnx = [t for t in profile.targets if t.runtime in ("onnxruntime", "openvino", "opencv", "mnn")]
        assert all(t.describe() in str(exc) for t in onnx)
        return
    with m:
        pl = m.placement
        chosen = next(t for t in profile.targets if t.describe() == pl.target)
        assert pl.device == name and _present(chosen.runtime, chosen.accelerator)
        for r in pl.trail:
            assert r.reason
        rejected = {r.target for r in pl.trail}
        for t in profile.targets[: chosen.index - 1]:  # every earlier ONNX-capable target was tried and rejected
            if t.runtime in ("onnxruntime", "openvino", "opencv", "mnn"):
                assert t.describe() in rejected
                if _present(t.runtime, t.accelerator) and t.precision != "int8":
                    pytest.fail(f"{t.describe()} is usable here but was rejected: {pl.explain()}")


def test_raspberry_pi_5_uses_first_target_unless_its_runtime_is_missing(build, caplog):
    first = get_profile("raspberry-pi-5").targets[0]
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        with edgekit.load(build("conv_relu", "tflite"), device="raspberry-pi-5") as m:
            pl = m.placement
    if _present(first.runtime, first.accelerator):
        assert pl.target == first.describe() and pl.trail == () and not caplog.records
        assert pl.options.get("threads") == 4
    else:
        assert pl.trail[0].target == first.describe()
        assert "not installed" in pl.trail[0].reason or "failed to load" in pl.trail[0].reason
        assert any("fell back" in r.getMessage() for r in caplog.records)
    with edgekit.load(build("conv_relu", "onnx"), device="raspberry-pi-5") as m:  # litert skipped: reads no onnx
        assert m.placement.target.startswith("#2 onnxruntime/cpu") and not m.placement.fell_back
        assert any("does not read onnx" in n for n in m.placement.notes)


def test_coral_rejects_float_model_for_precision_then_falls_back_to_cpu(build, caplog):
    try:
        get_runtime("litert").accelerators()
    except Exception as exc:
        pytest.skip(f"litert adapter unavailable here: {exc}")
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        with edgekit.load(build("conv_relu", "tflite"), device="coral-edgetpu") as m:
            pl = m.placement
    edgetpu = pl.trail[0]
    assert edgetpu.target.startswith("#1 litert/edgetpu")
    assert "int8 only and the model is fp32" in edgetpu.reason
    if not _present("litert", "edgetpu"):
        assert "accelerator 'edgetpu' is not present" in edgetpu.reason  # both reasons recorded
    assert pl.accelerator == "cpu" and pl.target.startswith("#2 litert/cpu")
    assert "rejected #1 litert/edgetpu" in pl.explain()
    assert any("coral-edgetpu" in r.getMessage() and "fell back" in r.getMessage() for r in caplog.records)


def test_int8_only_npu_rejects_float_model_with_both_reasons(build):
    with edgekit.load(build("conv_relu", "onnx"), device="snapdragon-8-gen-3", runtime="onnxruntime") as m:
        first = m.placement.trail[0]
    assert first.target.startswith("#1 onnxruntime/qnn int8")
    assert "int8 only and the model is fp32" in first.reason
    if not _present("onnxruntime", "qnn"):
        assert "accelerator 'qnn' is not present" in first.reason
    with edgekit.load(build("int8_fc", "onnx"), device="snapdragon-8-gen-3") as m:  # int8 model: no precision complaint
        assert all("int8 only" not in r.reason for r in m.placement.trail)
        assert m.placement.precision == "int8"


def test_strict_raises_listing_every_target(build):
    if _present("onnxruntime", "qnn"):
        pytest.skip("this host has the QNN provider: strict would succeed")
    with pytest.raises(DeviceUnavailableError) as err:
        edgekit.load(build("conv_relu", "onnx"), device="snapdragon-8-gen-3", strict=True)
    text = str(err.value)
    assert "strict=True" in text and "int8 only" in text
    onnx = [t for t in get_profile("snapdragon-8-gen-3").targets if t.runtime == "onnxruntime"]
    assert all(t.describe() in text for t in onnx) and "usable here, not tried" in text


def test_runtime_filter_auto_and_unknown(build):
    model = build("conv_relu", "onnx")
    with edgekit.load(model, device="raspberry-pi-5", runtime="openvino") as m:
        assert m.placement.runtime == "openvino" and m.placement.target.startswith("#4 openvino/cpu")
    with pytest.raises(DeviceUnavailableError, match="no target for an ONNX model with runtime='opencv' accelerator='cuda'"):
        edgekit.load(model, device="jetson-orin-nano", runtime="opencv", accelerator="cuda")
    with edgekit.load(model, device="auto") as m:
        assert m.placement.device == detect().profile.name


def test_model_precision(build):
    assert model_precision(open_model(build("conv_relu", "onnx"))) == "fp32"
    assert model_precision(open_model(build("int8_fc", "onnx"))) == "int8"
    assert model_precision(open_model(build("conv_relu", "tflite"))) == "fp32"
    assert model_precision(open_model(build("int8_fc", "tflite"))) == "int8"


# --- detection ---------------------------------------------------------------------------------

@pytest.mark.parametrize("host", sorted(p.name for p in HOSTS.iterdir() if p.is_dir()))
def test_detection_on_recorded_hosts(host):
    import tomllib

    expected = tomllib.loads((HOSTS / host / "host.toml").read_text())["expect"]["profile"]
    result = detect(HostInfo.from_record(HOSTS / host))
    assert result.profile.name == expected, result.candidates
    assert result.reasons and result.fallback == expected.startswith("generic")


def test_detection_prefers_the_more_specific_profile():
    pi5 = HostInfo.from_record(HOSTS / "raspberry-pi-5")
    assert detect(dataclasses.replace(pi5, device_nodes=pi5.device_nodes + ("/dev/hailo0",))).profile.name == "hailo-8"
    laptop = HostInfo.from_record(HOSTS / "intel-core-ultra-laptop")
    assert detect(dataclasses.replace(laptop, device_nodes=())).profile.name == "intel-core-ultra"  # cpuinfo alone
    riscv = HostInfo(machine="riscv64", system="Linux", accelerators={})
    with pytest.raises(UnknownDeviceError, match="machine riscv64"):
        detect(riscv)


def test_detect_this_host_probes_without_root():
    host = HostInfo.probe()
    result = detect(host)
    assert host.machine and result.profile.name in profile_names()
    assert "onnxruntime" in result.accelerators and "cpu" in result.accelerators["onnxruntime"]


# --- CLI ---------------------------------------------------------------------------------------

def test_cli_devices_list_show_detect():
    from edgekit.cli import cli

    runner = CliRunner()
    out = runner.invoke(cli, ["devices", "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert REQUIRED <= {r["name"] for r in rows} and all(r["targets (in order)"] for r in rows)
    out = runner.invoke(cli, ["devices", "show", "coral-edgetpu", "--format", "json"])
    rows = json.loads(out.output)
    peak = next(r for r in rows if r["section"] == "unit edgetpu" and r["field"].startswith("peak int8"))
    assert peak["value"] == 4000 and "coral.ai" in peak["source"]
    out = runner.invoke(cli, ["devices", "detect", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)[0]["item"] == "profile"


def test_runtime_error_while_opening_is_a_rejection_unless_strict(tmp_path, build):
    path = _profile(tmp_path, "opener")
    text = path.read_text()
    path.write_text(text.replace('unit = "cpu"\n', 'unit = "cpu"\noptions = { bogus = 1 }\n', 1) + TARGET.format(
        runtime="openvino", accelerator="cpu"))
    with edgekit.load(build("conv_relu", "onnx"), device=str(path)) as m:
        assert m.placement.runtime == "openvino"
        assert "onnxruntime failed to open the model" in m.placement.trail[0].reason
        assert "bogus" in m.placement.trail[0].reason
    with pytest.raises(DeviceUnavailableError, match="onnxruntime failed to open") as err:
        edgekit.load(build("conv_relu", "onnx"), device=str(path), strict=True)
    assert "usable here, not tried" in str(err.value) and err.value.__cause__ is not None


# --- issue 14, item 11: what `edgekit devices` shows a newcomer --------------------------------

def test_cli_devices_list_tells_targets_apart():
    """apple-m-series runs onnxruntime/coreml fp16 on the ANE and on the GPU: the list showed it twice."""
    from edgekit.cli import cli

    rows = json.loads(CliRunner().invoke(cli, ["devices", "--format", "json"]).output)
    for row in rows:
        targets = row["targets (in order)"]
        assert len(set(targets)) == len(targets), (row["name"], targets)
    apple = next(r for r in rows if r["name"] == "apple-m-series")
    assert apple["targets (in order)"][:2] == ["onnxruntime/coreml fp16 on ane", "onnxruntime/coreml fp16 on gpu"]


def test_cli_devices_show_prints_notes_as_sentences():
    """Notes are sentences: they were joined with ', ' ("... on the host CPU., libedgetpu.so.1 ...")."""
    from edgekit.cli import cli

    out = CliRunner().invoke(cli, ["devices", "show", "coral-edgetpu", "--format", "markdown"])
    assert out.exit_code == 0, out.output
    assert ".," not in out.output and ".;" not in out.output, out.output
    rows = json.loads(CliRunner().invoke(cli, ["devices", "show", "coral-edgetpu", "--format", "json"]).output)
    notes = [r["value"] for r in rows if r["section"] == "profile" and r["field"] == "note"]
    assert notes == list(get_profile("coral-edgetpu").notes)


def test_broken_user_profile_is_one_clean_warning_line(tmp_path):
    """A bad .toml in $EDGEKIT_DEVICES: one line per command, no UserWarning and no source line."""
    import os
    import subprocess
    import sys

    (tmp_path / "broken.toml").write_text("[device\nname = 1\n")
    env = {**os.environ, "EDGEKIT_DEVICES": str(tmp_path)}
    for args in (["devices"], ["devices", "detect"]):
        proc = subprocess.run([sys.executable, "-m", "edgekit", *args, "--format", "json"], capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"warning: ignoring device profile {tmp_path / 'broken.toml'}: not valid TOML")
        assert lines[0].endswith("; fix or remove it"), lines[0]


def test_broken_user_profile_is_logged_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EDGEKIT_DEVICES", str(tmp_path))
    (tmp_path / "broken.toml").write_text('name = "broken"\nkind = "cpu"\n')
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        names = [p.name for p in list_profiles()]
        list_profiles()
    assert "broken" not in names and "generic-x86-64" in names
    msgs = [r.getMessage() for r in caplog.records if "broken.toml" in r.getMessage()]
    assert len(msgs) == 1 and "missing key 'units'" in msgs[0], msgs
