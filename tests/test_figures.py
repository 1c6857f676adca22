"""The published-figures data set and its loader (edgekit.emulation.figures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.emulation.figures import figures_dir, load_figures, read_figures
from edgekit.errors import ConfigError
from edgekit.testing.networks import NETWORKS

GOOD = """
device = "coral-edgetpu"
[defaults]
read = 2026-11-29
source = "https://coral.ai/docs/edgetpu/benchmarks/"
[[figures]]
network = "mobilenet_v2"
size = 224
precision = "int8"
runtime = "tflite-edgetpu"
unit = "edgetpu"
metric = "latency"
ms = 2.6
published = "2.6 ms"
measured = "USB Accelerator"
"""


def _write(folder: Path, text: str, name: str = "coral-edgetpu") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def test_shipped_figures_cover_ten_networks_on_three_devices():
    figs = load_figures(buildable=NETWORKS)
    assert len(figs.networks()) >= 10
    assert len([d for d in figs.devices() if len(figs.networks(d)) >= 2]) >= 3
    assert {"snapdragon-8-gen-3", "coral-edgetpu", "hailo-8"} <= set(figs.devices())
    for f in figs.figures:
        assert f.ms > 0 and "://" in f.source and f.read.year >= 2025
        assert f.size in (224, 240, 260, 280, 299, 300, 640)
    assert all("cannot build" in s.reason for s in figs.skipped)


def test_one_device():
    figs = load_figures("coral-edgetpu", buildable=NETWORKS)
    assert {f.device for f in figs.figures} == {"coral-edgetpu"}
    assert load_figures("raspberry-pi-5", buildable=NETWORKS).figures == ()  # no file: no figures


def test_figures_live_where_the_profile_catalog_does_not_look():
    from edgekit.devices import profile_names

    assert figures_dir().parent.name == "emulation"
    assert not {p.stem for p in figures_dir().glob("*.toml")} - set(profile_names())


def test_defaults_apply_and_unknown_network_is_skipped_with_reason(tmp_path):
    second = GOOD.split("[[figures]]")[1].replace('"mobilenet_v2"', '"densenet121"')
    _write(tmp_path, GOOD + "\n[[figures]]" + second)
    figs = load_figures(buildable=NETWORKS, folder=tmp_path)
    assert [f.network for f in figs.figures] == ["mobilenet_v2"]
    assert figs.figures[0].source == "https://coral.ai/docs/edgetpu/benchmarks/"
    (skipped,) = figs.skipped
    assert skipped.figure.network == "densenet121"
    assert "[[figures]] #2" in skipped.reason and "cannot build network 'densenet121'" in skipped.reason


@pytest.mark.parametrize(("old", "new", "message"), [
    ("ms = 2.6", 'ms = "fast"', "key 'ms' expected an integer or a number"),
    ("ms = 2.6", "ms = -1.0", "key 'ms' expected a positive number"),
    ('precision = "int8"', 'precision = "int4"', "key 'precision' expected one of"),
    ('metric = "latency"', 'metric = "fps"', "key 'metric' expected one of"),
    ('unit = "edgetpu"', 'unit = "npu"', "key 'unit' expected a unit of profile 'coral-edgetpu'"),
    ("size = 224\n", "", "missing key 'size'"),
    ('measured = "USB Accelerator"', 'measured = "USB"\nlatency = 3', "unknown key(s) ['latency']"),
    ('device = "coral-edgetpu"', 'device = "hailo-8"', "key 'device' expected 'coral-edgetpu'"),
    ('source = "https://coral.ai/docs/edgetpu/benchmarks/"', 'source = "Coral docs"', "key 'source' expected a URL"),
    ('measured = "USB Accelerator"', 'measured = "USB"\nincludes = "nms"', "key 'includes' expected one of"),
])
def test_malformed_entry_names_file_and_key(tmp_path, old, new, message):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as exc:
        read_figures(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_unknown_device_file_is_refused(tmp_path):
    path = _write(tmp_path, GOOD.replace('"coral-edgetpu"', '"coral-x"'), name="coral-x")
    with pytest.raises(ConfigError, match="expected a device profile name, got 'coral-x'"):
        load_figures(buildable=NETWORKS, folder=tmp_path)
    assert path.exists()
