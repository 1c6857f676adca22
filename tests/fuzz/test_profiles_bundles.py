"""Device profiles and bundles from untrusted hands: malformed TOML, hostile archives, oversized files.

Each case ends in a typed edgekit error (ConfigError, BundleError, UnknownDeviceError, a
ModelError for a damaged model) or a valid result, and nothing is ever written outside the
target folder.
"""

from __future__ import annotations

import io
import random
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.catalog import catalog_dir
from edgekit.devices import load_profile
from edgekit.errors import BundleError, ConfigError, EdgekitError
from edgekit.pipeline.archive import Limits, safe_extract
from edgekit.pipeline.bundle import read_bundle_config, resolve_bundle
from edgekit.testing.mutate import BYTE_KINDS, mutate_bytes
from edgekit.tomlfile import MAX_TOML_BYTES

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROFILE = (catalog_dir("devices") / "cpu" / "raspberry-pi-5.toml").read_text()


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


# --- device profiles ----------------------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_damaged_profiles_load_or_raise_profile_errors(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    lines = PROFILE.splitlines()
    how = data.draw(st.sampled_from(["drop", "swap", "char", "value", "text"]))
    if how == "drop":
        del lines[data.draw(st.integers(0, len(lines) - 1))]
    elif how == "swap":
        i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "char":
        i = data.draw(st.integers(0, len(lines) - 1))
        k = data.draw(st.integers(0, max(len(lines[i]) - 1, 0)))
        lines[i] = lines[i][:k] + data.draw(st.sampled_from(list("[]{}=\"'#.,\\\x00é 0-"))) + lines[i][k + 1:]
    elif how == "value":
        keyed = [i for i, ln in enumerate(lines) if " = " in ln]
        i = data.draw(st.sampled_from(keyed))
        value = data.draw(st.sampled_from(['""', "-1", "1e999", "[]", "{}", "true", '"x"', "[[1]]", "nan", "0"]))
        lines[i] = lines[i].split(" = ")[0] + " = " + value
    else:
        lines = data.draw(st.text(max_size=200)).splitlines()
    path = tmp_path_factory.mktemp("profile") / "raspberry-pi-5.toml"
    path.write_bytes("\n".join(lines).encode("utf-8", "replace"))
    try:
        profile = load_profile(path)
    except ConfigError:
        return
    assert profile.name == "raspberry-pi-5" and profile.targets


def test_deeply_nested_and_oversized_toml_are_profile_errors(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text('name = "deep"\na = ' + "[" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_profile(deep)
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.write(b'name = "big"\n# ' + b"x" * (MAX_TOML_BYTES + 10) + b"\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_profile(big)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError):
        load_profile(binary)


# --- archives -----------------------------------------------------------------------------------

names = st.one_of(
    st.text(alphabet=st.sampled_from(list("ab./\\:~ C\x00é")), min_size=1, max_size=12),
    st.sampled_from(["../x", "a/../../x", "/etc/x", "C:\\x", "\\\\srv\\x", "a/./b", "./a", "a//b", "..", ".",
                     "a/", "a\\..\\..\\x", "~/x", "x\x00y"]),
)


@pytest.mark.filterwarnings("ignore:Duplicate name")  # duplicate member names are part of the attack
@SETTINGS
@given(members=st.lists(st.tuples(names, st.sampled_from(["file", "dir", "link", "fifo"])), min_size=1, max_size=4))
def test_hostile_members_never_write_outside_the_target(tmp_path_factory: pytest.TempPathFactory, members) -> None:
    root = tmp_path_factory.mktemp("zip")
    archive = root / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, kind in members:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" and not name.endswith("/") else ""))
            info.create_system = 3
            mode = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755, "link": stat.S_IFLNK | 0o777,
                    "fifo": stat.S_IFIFO | 0o644}[kind]
            info.external_attr = mode << 16
            z.writestr(info, b"/etc/passwd" if kind == "link" else b"data")
    before = _files(root)
    target = root / "out" / "target"
    try:
        safe_extract(archive, target)
    except BundleError:
        pass
    outside = {p for p in _files(root) - before if target.resolve() not in p.resolve().parents}
    assert not outside, outside
    assert not any(p.is_symlink() for p in _files(root) - before)


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory: pytest.TempPathFactory, build) -> bytes:
    from edgekit.pipeline.create import create_bundle

    folder = tmp_path_factory.mktemp("bundle")
    return create_bundle(build("conv_relu", "onnx"), "classifier", folder / "b.zip", runtime="onnxruntime",
                         size=(8, 8)).read_bytes()


@SETTINGS
@given(st.data())
def test_damaged_bundle_archives_raise_typed_errors(tmp_path_factory: pytest.TempPathFactory, bundle_zip: bytes,
                                                    monkeypatch: pytest.MonkeyPatch, data) -> None:
    root = tmp_path_factory.mktemp("damaged")
    monkeypatch.setenv("EDGEKIT_CACHE", str(root / "cache"))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    archive = root / "b.zip"
    archive.write_bytes(mutate_bytes(bundle_zip, data.draw(st.sampled_from(BYTE_KINDS)), rng, fmt="zip"))
    try:
        config = read_bundle_config(resolve_bundle(archive))
        from edgekit.models.formats import open_model

        open_model(config.model)
    except EdgekitError:
        pass
    written = _files(root) - {archive}
    assert all((root / "cache" / "bundles") in p.parents for p in written), written


def test_oversized_members_are_refused_before_writing(tmp_path: Path) -> None:
    class Small(Limits):
        max_member_bytes = 1000

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("small.txt", b"ok")
        z.writestr("model.onnx", bytes(5000))
    archive = tmp_path / "big.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(BundleError, match="unpacks to 5000 bytes"):
        safe_extract(archive, tmp_path / "out", Small)
    assert not (tmp_path / "out").exists() or not _files(tmp_path / "out")
