"""Trust boundary regressions: hostile files beside a model cannot run; workers do not outlive edgekit.

Each test builds the hostile situation itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgekit
from edgekit.isolation import run_isolated
from edgekit.testing.onnx_models import build_onnx

#: modules a stranger's folder might carry to hijack a Python process started there
HIJACKS = ("json", "numpy", "onnx", "edgekit", "pickle", "inspect", "cv2", "MNN", "_tools")


@pytest.fixture()
def hostile_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder holding a model and modules that leave a mark when imported."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in HIJACKS:
        (folder / f"{name}.py").write_text(
            f"open({str(folder / ('PWNED-' + name))!r}, 'w').write('ran')\nraise SystemExit('hijacked')\n")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))  # fresh: the crash probe and MNN converter run
    return folder


def _marks(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("PWNED-*"))


def test_workers_never_import_from_the_current_folder(hostile_cwd: Path) -> None:
    model = build_onnx("conv_relu", hostile_cwd / "model.onnx")
    assert not isinstance(run_isolated("numpy:zeros", (3,)), Exception)
    with edgekit.load(model, runtime="opencv") as m:  # new file: the crash probe runs in a worker
        assert m.inputs
    with edgekit.load(model, runtime="mnn") as m:  # the MNN converter runs in a subprocess
        assert m.inputs
    with edgekit.load(model, runtime="onnxruntime", timeout=60) as m:  # the timeout worker
        assert m.inputs
    from edgekit.profiling import profile

    report = profile(model, runtimes=["onnxruntime"], duration=0.1, warmup=1, op_profile=False)
    assert report.results[0].status == "ok", report.results[0].error
    assert _marks(hostile_cwd) == []


def test_the_hijack_would_have_run_in_a_plain_child(hostile_cwd: Path) -> None:
    """The planted modules are live: ``python -c`` started here runs them (what edgekit must not do)."""
    subprocess.run([sys.executable, "-c", "import json"], cwd=hostile_cwd, capture_output=True, check=False)
    assert _marks(hostile_cwd) == ["PWNED-json"]


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (None once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(sig: signal.Signals) -> None:
    code = ("from edgekit.isolation import run_isolated\n"
            "run_isolated('time:sleep', (120,), on_spawn=lambda pid: print(pid, flush=True))\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _state(child) not in (None, "Z"), "the worker should be running"
        os.kill(parent.pid, sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _state(child) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _state(child) in (None, "Z"), f"worker {child} outlived its parent ({sig.name})"
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")
def test_a_cache_others_can_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.cache import cache_dir
    from edgekit.errors import InvalidOptionError

    shared = tmp_path / "shared-cache"
    shared.mkdir()
    monkeypatch.setenv("EDGEKIT_CACHE", str(shared))
    assert cache_dir("mnn").is_dir() and (cache_dir("mnn").stat().st_mode & 0o077) == 0  # created private
    for folder in (shared, shared / "mnn"):
        folder.chmod(0o777)
        with pytest.raises(InvalidOptionError, match="writable by every user.*chmod go-w"):
            cache_dir("mnn")
        folder.chmod(0o700)
    cache_dir("mnn")


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _external_data_model(folder: Path) -> tuple[Path, Path]:
    """conv_relu with its weights in ``m.bin`` (the name OpenVINO IR gives its own weights)."""
    import onnx

    src = build_onnx("conv_relu", folder / "tmp.onnx")
    proto = onnx.load(str(src))
    onnx.save(proto, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.bin", size_threshold=0)
    src.unlink()
    return folder / "m.onnx", folder / "m.bin"


def test_convert_never_writes_over_the_models_own_files(tmp_path: Path) -> None:
    model, weights = _external_data_model(tmp_path)
    before = weights.read_bytes()
    for extra in ((), ("--force",)):  # not even with --force
        res = _run_cli("convert", str(model), "--to", "openvino", *extra, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert "m.bin is a file the model uses" in res.stderr and "Traceback" not in res.stderr
        assert weights.read_bytes() == before and not (tmp_path / "m.xml").exists()
    res = _run_cli("convert", str(model), "--to", "openvino", "-o", str(tmp_path / "ir" / "m.xml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert weights.read_bytes() == before


def test_convert_and_quantize_refuse_existing_outputs_without_force(tmp_path: Path) -> None:
    model = build_onnx("conv_relu", tmp_path / "m.onnx")
    out = tmp_path / "m.fp16.onnx"
    out.write_bytes(b"precious")
    res = _run_cli("convert", str(model), "--to", "onnx", cwd=tmp_path)
    assert res.returncode == 2 and "already exists" in res.stderr and "--force" in res.stderr, res.stderr
    assert out.read_bytes() == b"precious"
    assert _run_cli("convert", str(model), "--to", "onnx", "--force", cwd=tmp_path).returncode == 0
    assert out.read_bytes() != b"precious"
    original = model.read_bytes()
    res = _run_cli("quantize", str(model), "--mode", "dynamic", "-o", str(model), cwd=tmp_path)
    assert res.returncode == 2 and "is the model itself" in res.stderr, res.stderr
    assert model.read_bytes() == original


def test_convert_exits_non_zero_when_its_verification_fails(tmp_path: Path) -> None:
    """y = x * 1e6: the fp16 conversion overflows the constant to inf, so the outputs are wrong."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.models.build import save_onnx

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.array([1e6], np.float32), "k")])
    model = save_onnx(graph, tmp_path / "big.onnx")
    res = _run_cli("convert", str(model), "--to", "onnx", cwd=tmp_path)
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "VERIFICATION FAILED" in res.stdout and "does not match the original" in res.stderr


def test_a_planted_or_damaged_mnn_conversion_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The MNN cache keeps each artifact's digest: a .mnn planted under a model's key is converted again."""
    import numpy as np

    from edgekit.testing.cases import CASES

    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    model = build_onnx("conv_relu", tmp_path / "m.onnx")
    x = CASES["conv_relu"].inputs("onnx")
    with edgekit.load(model, runtime="mnn") as m:
        assert m.placement.options["converted_now"]
        converted = Path(m.placement.options["converted_model"])
        good = m(x)["y"]
    planted = build_onnx("matmul_add_softmax", tmp_path / "other.onnx")
    with edgekit.load(planted, runtime="mnn") as other:
        converted.write_bytes(Path(other.placement.options["converted_model"]).read_bytes())  # a valid, wrong .mnn
    with edgekit.load(model, runtime="mnn") as m:
        assert m.placement.options["converted_now"], "the planted file was used"
        np.testing.assert_allclose(m(x)["y"], good, rtol=1e-5)
    with edgekit.load(model, runtime="mnn") as m:  # the genuine conversion is reused
        assert not m.placement.options["converted_now"]


def test_external_data_is_part_of_the_models_identity(tmp_path: Path) -> None:
    """Retrained weights in the external data file change the key of every derived artifact."""
    from edgekit.models.formats import open_model

    model, weights = _external_data_model(tmp_path)
    before = open_model(model).sha256()
    data = bytearray(weights.read_bytes())
    data[0] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert open_model(model).sha256() != before


def _hostile_external(folder: Path, where: str, location: str) -> Path:
    """A model whose tensor in ``where`` reads external data from ``location``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, external_data_helper, helper, numpy_helper

    def external(name: str) -> onnx.TensorProto:
        t = numpy_helper.from_array(np.zeros(4, np.float32), name)
        external_data_helper.set_external_data(t, location=location, offset=0, length=16)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        return t

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    if where == "constant":
        nodes = [helper.make_node("Constant", [], ["c"], value=external("c")), helper.make_node("Add", ["x", "c"], ["y"])]
        inits = []
    elif where == "subgraph":
        body = helper.make_graph([helper.make_node("Add", ["x", "w"], ["yb"])], "then",
                                 [], [helper.make_tensor_value_info("yb", TensorProto.FLOAT, [4])], [external("w")])
        other = helper.make_graph([helper.make_node("Identity", ["x"], ["ye"])], "else",
                                  [], [helper.make_tensor_value_info("ye", TensorProto.FLOAT, [4])])
        nodes = [helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True), "cond")),
                 helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=other)]
        inits = []
    else:
        nodes, inits = [helper.make_node("Add", ["x", "w"], ["y"])], [external("w")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = folder / f"{where}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("where", ["initializer", "constant", "subgraph"])
def test_external_data_outside_the_models_folder_is_refused_everywhere_in_the_graph(tmp_path: Path, where: str) -> None:
    from edgekit.errors import CorruptModelError

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * 64)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "inside.bin").write_bytes(b"\0" * 16)
    (folder / "link.bin").symlink_to(secret)
    for location in ("../secret.bin", str(secret), "link.bin", "sub/../../secret.bin"):
        path = _hostile_external(folder, where, location)
        for runtime in ("onnxruntime", "opencv", "mnn", "openvino"):
            with pytest.raises(CorruptModelError, match="outside the model's folder"):
                edgekit.load(path, runtime=runtime)
    good = _hostile_external(folder, where, "inside.bin")
    from edgekit.models.formats import open_model

    assert open_model(good).external == ((folder / "inside.bin").resolve(),)  # hashed with the model


_NETWORK_PROBE = r"""
import json, sys
seen = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "os.fork", "subprocess.Popen"):
        seen.append(event)
sys.addaudithook(hook)
import edgekit
from edgekit.models.sample import sample_model
with edgekit.load(sample_model("onnx"), runtime="openvino") as m:
    m.inputs
edgekit.list_runtimes()
print(json.dumps(seen))
"""


def test_openvino_is_imported_without_its_telemetry(tmp_path: Path) -> None:
    """No fork, no socket, nothing written under ~/intel when edgekit loads a model with OpenVINO."""
    import json

    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), EDGEKIT_CACHE=str(tmp_path / "cache"))
    env.pop("CI", None)  # OpenVINO skips telemetry in CI by itself: test the case of a user's machine
    res = subprocess.run([sys.executable, "-c", _NETWORK_PROBE], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
    assert not (home / "intel").exists()


@pytest.mark.skipif(not __import__("shutil").which("strace"), reason="needs strace (CI installs it)")
def test_the_main_commands_make_no_network_connection(tmp_path: Path) -> None:
    """Every process the commands start, workers included, under strace: no AF_INET/AF_INET6 connect."""
    model = build_onnx("conv_relu", tmp_path / "m.onnx")
    env = dict(os.environ, HOME=str(tmp_path), EDGEKIT_CACHE=str(tmp_path / "cache"))
    env.pop("CI", None)
    commands = [["runtimes"], ["devices", "detect"], ["inspect", str(model)],
                ["profile", str(model), "--duration", "0.1", "--runtime", "openvino", "--runtime", "onnxruntime"],
                ["convert", str(model), "--to", "openvino", "-o", str(tmp_path / "ir" / "m.xml")]]
    for args in commands:
        log = tmp_path / "strace.log"
        subprocess.run(["strace", "-f", "-e", "trace=connect", "-o", str(log), sys.executable, "-m", "edgekit", *args],
                       env=env, capture_output=True, timeout=600, check=True)
        inet = [line for line in log.read_text().splitlines() if "AF_INET" in line]
        assert not inet, f"edgekit {' '.join(args)} connected: {inet[:3]}"


def test_many_small_zip_bombs_are_refused_and_leave_nothing_behind(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """999 members of 1 MiB of zeros (1000 MiB from ~1 MB): each under the per-member floor, caught in total."""
    import zipfile

    from edgekit.errors import BundleError

    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    bomb = tmp_path / "bomb.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("edgekit.toml", 'name = "x"\n')
        for i in range(999):
            z.writestr(f"pad/{i}.bin", zeros)
    assert bomb.stat().st_size < 4 << 20
    with pytest.raises(BundleError, match="likely zip bomb"):
        edgekit.load_bundle(bomb)
    bundles = tmp_path / "cache" / "bundles"
    assert not bundles.exists() or not any(bundles.iterdir()), list(bundles.iterdir())


def test_a_rejected_bundle_archive_is_not_left_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    from edgekit.errors import BundleError

    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("edgekit.toml", 'name = "x"\nmodel = "../../outside.onnx"\n')
    with pytest.raises(BundleError):
        edgekit.load_bundle(bad)
    bundles = tmp_path / "cache" / "bundles"
    assert not bundles.exists() or not any(bundles.iterdir()), list(bundles.iterdir())


def _loop_model(folder: Path) -> tuple[Path, Path]:
    import numpy as np

    from edgekit.testing.fuzz import build_loop_onnx

    model = build_loop_onnx(folder / "loop.onnx")
    x = folder / "x.npy"
    np.save(x, np.zeros((1, 4), np.float32))
    return model, x


def test_run_has_a_timeout(tmp_path: Path) -> None:
    model, x = _loop_model(tmp_path)
    start = time.monotonic()
    res = _run_cli("run", str(model), "--input", str(x), "--runtime", "onnxruntime", "--timeout", "3", cwd=tmp_path)
    assert res.returncode == 2 and "timeout" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert time.monotonic() - start < 60


def test_ctrl_c_stops_a_long_run(tmp_path: Path) -> None:
    model, x = _loop_model(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", str(model), "--input", str(x), "--runtime",
                             "onnxruntime"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)  # loaded and running the endless loop
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()


def _malformed_onnx(folder: Path) -> list[Path]:
    """Models onnx's checker rejects but that parse: duplicate outputs, an unknown attribute, unsorted nodes."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graphs = {
        "dup_out": [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])],
        "unknown_attr": [helper.make_node("Relu", ["x"], ["y"], foo=1)],
        "unsorted": [helper.make_node("Relu", ["t"], ["y"]), helper.make_node("Relu", ["x"], ["t"])],
        "relu2": [helper.make_node("Relu", ["x", "x"], ["y"])],
    }
    out = []
    for name, nodes in graphs.items():
        model = helper.make_model(helper.make_graph(nodes, name, [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 7
        path = folder / f"{name}.onnx"
        onnx.save(model, str(path))
        out.append(path)
    return out


def test_malformed_models_raise_only_edgekit_errors(tmp_path: Path) -> None:
    """onnx.checker's ValidationError and friends never escape the tools or the emulator."""
    from edgekit.errors import EdgekitError
    from edgekit.tools.convert import convert_model
    from edgekit.tools.inspect import inspect_model
    from edgekit.tools.quantize import quantize_dynamic

    for path in _malformed_onnx(tmp_path):
        calls = {
            "inspect": lambda p=path: inspect_model(p),
            "convert": lambda p=path: convert_model(p, tmp_path / f"{p.stem}.fp16.onnx", to="onnx", precision="fp16",
                                                    force=True),
            "quantize": lambda p=path: quantize_dynamic(p, tmp_path / f"{p.stem}.int8.onnx", force=True),
            "emulate": lambda p=path: edgekit.load(p, device="snapdragon-8-gen-3", emulate=True).close(),
        }
        for what, call in calls.items():
            try:
                call()
            except EdgekitError:
                pass
            except Exception as exc:
                pytest.fail(f"{what} on {path.name} raised {type(exc).__module__}.{type(exc).__name__}: {exc}")


def test_huge_shapes_are_refused_before_allocating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--shape x=100000000000x4, a model declaring [1e6, 1e6], a .npy header claiming terabytes: InputError, exit 2."""
    import numpy as np
    from onnx import TensorProto, helper

    from edgekit.errors import InputError
    from edgekit.models.build import save_onnx
    from edgekit.profiling.inputs import make_inputs
    from edgekit.tensors import TensorSpec

    dynamic = build_onnx("dynamic_batch", tmp_path / "dyn.onnx")
    res = _run_cli("profile", str(dynamic), "--shape", "x=100000000000x6", "--runtime", "onnxruntime", cwd=tmp_path)
    assert res.returncode == 2 and "would take" in res.stderr and "Traceback" not in res.stderr, res.stderr
    big = save_onnx(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000000, 1000000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000000, 1000000])]), tmp_path / "big.onnx")
    res = _run_cli("profile", str(big), "--runtime", "onnxruntime", cwd=tmp_path)
    assert res.returncode == 2 and "would take" in res.stderr and "Traceback" not in res.stderr, res.stderr
    from edgekit.verification import synthetic_inputs

    with pytest.raises(InputError, match="would take"):  # load(verify=True)'s inputs
        synthetic_inputs([TensorSpec("x", (1000000, 1000000), np.dtype("float32"))])
    # a .npy whose header claims 4 TB (the file itself is tiny): refused from the header
    lying = tmp_path / "lying.npy"
    with open(lying, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1000000, 1000000)})
    spec = TensorSpec("x", (None, 6), np.dtype("float32"))
    with pytest.raises(InputError, match="would take"):
        make_inputs([spec], given=[("x", lying)])
    monkeypatch.setenv("EDGEKIT_MAX_INPUT_MB", "1")
    with pytest.raises(InputError, match="would take"):
        make_inputs([spec], shapes={"x": (100000, 6)})
    with pytest.raises(InputError, match="zero or negative"):
        make_inputs([spec], shapes={"x": (0, 6)})


def test_a_worker_killed_by_sigkill_is_reported_as_out_of_memory() -> None:
    failure = run_isolated("edgekit.isolation:python_command", ("x",), on_spawn=lambda pid: os.kill(pid, signal.SIGKILL))
    assert getattr(failure, "kind", None) == "crash" and "out of memory" in failure.describe(), failure


def test_every_derived_artifact_is_verified_by_its_digest(tmp_path: Path) -> None:
    """cache.cached_file (MNN conversions, emulation's prepared models): a planted file is rebuilt, not used."""
    from edgekit.cache import cached_file

    builds: list[Path] = []

    def build(tmp: Path) -> None:
        builds.append(tmp)
        tmp.write_bytes(b"genuine")

    dest = tmp_path / "artifact.onnx"
    assert cached_file(dest, build) == (dest, True)
    assert cached_file(dest, build) == (dest, False) and len(builds) == 1
    dest.write_bytes(b"planted")
    assert cached_file(dest, build) == (dest, True) and dest.read_bytes() == b"genuine"
    (tmp_path / "artifact.onnx.sha256").unlink()  # no digest beside it: not trusted either
    assert cached_file(dest, build)[1] is True and len(builds) == 3
