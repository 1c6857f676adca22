"""Attacks on the trust boundary: hostile files and situations, built here, tried against edgekit.

Each class of the attack review (issue 13) is tried in its own fresh folder and cache; an
attack *succeeds* when its effect is observed (code ran, a file outside the folder was read, a
user file changed, a planted artifact was used, a worker outlived its parent, a network
connection was made, a bomb was unpacked, a run could not be stopped, a foreign exception
escaped). ``tests/test_security.py`` holds the same cases as regression tests.

    python benchmarks/attacks.py            # last line: attacks tried, succeeded (target 0)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper, numpy_helper

import edgekit
from edgekit.errors import EdgekitError
from edgekit.testing.fuzz import build_loop_onnx
from edgekit.testing.onnx_models import build_onnx

Attack = Callable[[Path], tuple[int, int]]  # folder -> (tried, succeeded)


#: the console script, as users run it (``python -m edgekit`` would itself import from the current folder)
EDGEKIT = str(Path(sys.executable).with_name("edgekit"))


def _cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGEKIT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def cwd_hijack(folder: Path) -> tuple[int, int]:
    """A json.py / numpy.py beside the model: does any worker import it?"""
    for name in ("json", "numpy", "onnx", "pickle", "_tools"):
        (folder / f"{name}.py").write_text(f"open({str(folder / ('PWNED-' + name))!r}, 'w')\n")
    model = build_onnx("conv_relu", folder / "m.onnx")
    here = os.getcwd()
    os.chdir(folder)
    try:
        tried = 0
        for call in (lambda: edgekit.load(model, runtime="opencv").close(),
                     lambda: edgekit.load(model, runtime="mnn").close(),
                     lambda: edgekit.load(model, runtime="onnxruntime", timeout=60).close(),
                     lambda: _cli("profile", str(model), "--duration", "0.1", "--runtime", "onnxruntime", cwd=folder)):
            call()
            tried += 1
    finally:
        os.chdir(here)
    return tried, int(any(folder.glob("PWNED-*")))


def _external(name: str, location: str) -> onnx.TensorProto:
    t = numpy_helper.from_array(np.zeros(4, np.float32), name)
    external_data_helper.set_external_data(t, location=location, offset=0, length=16)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    return t


def external_data_escape(folder: Path) -> tuple[int, int]:
    """External data in initializers, Constant values and If bodies pointing outside the folder."""
    secret = folder / "secret.bin"
    secret.write_bytes(b"S" * 64)
    inner = folder / "model"
    inner.mkdir()
    (inner / "link.bin").symlink_to(secret)
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in ("x", "y"))
    tried = succeeded = 0
    for location in ("../secret.bin", str(secret), "link.bin", "a/../../secret.bin"):
        then = helper.make_graph([helper.make_node("Add", ["x", "w"], ["yb"])], "then", [],
                                 [helper.make_tensor_value_info("yb", TensorProto.FLOAT, [4])], [_external("w", location)])
        orelse = helper.make_graph([helper.make_node("Identity", ["x"], ["ye"])], "else", [],
                                   [helper.make_tensor_value_info("ye", TensorProto.FLOAT, [4])])
        graphs = {
            "initializer": helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y],
                                             [_external("w", location)]),
            "constant": helper.make_graph([helper.make_node("Constant", [], ["c"], value=_external("c", location)),
                                           helper.make_node("Add", ["x", "c"], ["y"])], "g", [x], [y]),
            "subgraph": helper.make_graph(
                [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(True), "k")),
                 helper.make_node("If", ["k"], ["y"], then_branch=then, else_branch=orelse)], "g", [x], [y]),
        }
        for where, graph in graphs.items():
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            model.ir_version = 7
            path = inner / f"{where}.onnx"
            path.write_bytes(model.SerializeToString())
            for runtime in ("opencv", "mnn"):  # the two that read such files before
                tried += 1
                try:
                    edgekit.load(path, runtime=runtime).close()
                    succeeded += 1
                except EdgekitError:
                    pass
    return tried, succeeded


def overwrite_user_files(folder: Path) -> tuple[int, int]:
    """convert over the model's own m.bin, quantize over its input, convert over an existing file."""
    src = build_onnx("conv_relu", folder / "tmp.onnx")
    onnx.save(onnx.load(str(src)), str(folder / "m.onnx"), save_as_external_data=True, location="m.bin",
              size_threshold=0)
    weights, model = folder / "m.bin", folder / "m.onnx"
    before, original = weights.read_bytes(), model.read_bytes()
    existing = folder / "m.fp16.onnx"
    existing.write_bytes(b"precious")
    _cli("convert", str(model), "--to", "openvino", cwd=folder)
    _cli("quantize", str(model), "--mode", "dynamic", "-o", str(model), cwd=folder)
    _cli("convert", str(model), "--to", "onnx", cwd=folder)
    changed = [weights.read_bytes() != before, model.read_bytes() != original, existing.read_bytes() != b"precious"]
    return 3, sum(changed)


def planted_cache(folder: Path) -> tuple[int, int]:
    """A valid but wrong .mnn planted under a model's cache key, and a world-writable cache."""
    model = build_onnx("conv_relu", folder / "m.onnx")
    other = build_onnx("matmul_add_softmax", folder / "o.onnx")
    with edgekit.load(model, runtime="mnn") as m:
        target = Path(m.placement.options["converted_model"])
    with edgekit.load(other, runtime="mnn") as o:
        target.write_bytes(Path(o.placement.options["converted_model"]).read_bytes())
    with edgekit.load(model, runtime="mnn") as m:
        planted_used = not m.placement.options["converted_now"]
    root = Path(os.environ["EDGEKIT_CACHE"])
    root.chmod(0o777)
    try:
        edgekit.load(model, runtime="mnn").close()
        shared_used = True
    except EdgekitError:
        shared_used = False
    finally:
        root.chmod(0o700)
    return 2, int(planted_used) + int(shared_used)


def orphan_workers(folder: Path) -> tuple[int, int]:
    """kill -9 and SIGTERM the parent of a busy worker: does the worker live on?"""
    survived = 0
    for sig in (signal.SIGKILL, signal.SIGTERM):
        code = "from edgekit.isolation import run_isolated\nrun_isolated('time:sleep', (120,), on_spawn=lambda p: print(p, flush=True))"
        parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=folder)
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, sig)
        parent.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.2)
        if _alive(child):
            survived += 1
            os.kill(child, signal.SIGKILL)
    return 2, survived


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def network(folder: Path) -> tuple[int, int]:
    """Every process of the main commands under strace: any internet socket connected?"""
    if not shutil.which("strace"):
        print("  (strace not installed: network attacks not tried)")
        return 0, 0
    model = build_onnx("conv_relu", folder / "m.onnx")
    env = dict(os.environ, HOME=str(folder))
    env.pop("CI", None)
    commands = [["runtimes"], ["devices", "detect"], ["profile", str(model), "--duration", "0.1"],
                ["convert", str(model), "--to", "openvino", "-o", str(folder / "ir" / "m.xml")]]
    connected = 0
    for args in commands:
        log = folder / "strace.log"
        subprocess.run(["strace", "-f", "-e", "trace=connect", "-o", str(log), EDGEKIT, *args],
                       env=env, capture_output=True, timeout=600, check=False)
        connected += any("AF_INET" in line for line in log.read_text().splitlines())
    return len(commands), connected


def archives(folder: Path) -> tuple[int, int]:
    """999 small zip bombs in one archive; a rejected archive left in the cache."""
    bomb = folder / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("edgekit.toml", 'name = "x"\n')
        for i in range(999):
            z.writestr(f"pad/{i}.bin", bytes(1 << 20))
    bad = folder / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("edgekit.toml", 'name = "x"\nmodel = "../../outside.onnx"\n')
    succeeded = 0
    for archive in (bomb, bad):
        try:
            edgekit.load_bundle(archive)
            succeeded += 1
        except EdgekitError:
            pass
    cache = Path(os.environ["EDGEKIT_CACHE"]) / "bundles"
    succeeded += bool(cache.exists() and any(cache.iterdir()))
    return 3, succeeded


def slow_inputs(folder: Path) -> tuple[int, int]:
    """A device-profile extends chain of depth 16; a model that never finishes, with --timeout and Ctrl-C."""
    devices = folder / "devices"
    devices.mkdir()
    unit = ('[[units]]\nname = "cpu"\nkind = "cpu"\ntitle = "c"\npeak_gops = { fp32 = 1 }\nbandwidth_gb_s = 1.0\n'
            'sources = { peak_gops = "estimate: t", bandwidth_gb_s = "estimate: t" }\n'
            '[[targets]]\nruntime = "onnxruntime"\naccelerator = "cpu"\nprecision = "fp32"\nunit = "cpu"\n')
    for i in range(17):
        head = f'extends = "p{i - 1}"\n' if i else ""
        (devices / f"p{i}.toml").write_text(f'name = "p{i}"\nkind = "cpu"\ntitle = "t"\nvendor = "v"\n{head}{unit}')
    start = time.monotonic()
    _cli("devices", "show", str(devices / "p16.toml"), cwd=folder, timeout=600)
    slow_profile = time.monotonic() - start > 10
    model = build_loop_onnx(folder / "loop.onnx")
    np.save(folder / "x.npy", np.zeros((1, 4), np.float32))
    start = time.monotonic()
    _cli("run", str(model), "--input", str(folder / "x.npy"), "--timeout", "3", cwd=folder, timeout=120)
    no_timeout = time.monotonic() - start > 60
    proc = subprocess.Popen([EDGEKIT, "run", str(model), "--input", str(folder / "x.npy")],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    try:
        unstoppable = proc.wait(timeout=20) != 130
    except subprocess.TimeoutExpired:
        proc.kill()
        unstoppable = True
    return 3, int(slow_profile) + int(no_timeout) + int(unstoppable)


def foreign_exceptions(folder: Path) -> tuple[int, int]:
    """Models onnx's checker rejects, through inspect, convert, quantize and the emulator: any traceback?"""
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("x", "y"))
    graphs = {"dup": [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])],
              "attr": [helper.make_node("Relu", ["x"], ["y"], foo=1)],
              "order": [helper.make_node("Relu", ["t"], ["y"]), helper.make_node("Relu", ["x"], ["t"])]}
    tried = escaped = 0
    for name, nodes in graphs.items():
        model = helper.make_model(helper.make_graph(nodes, name, [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 7
        path = folder / f"{name}.onnx"
        onnx.save(model, str(path))
        for args in (["inspect", str(path)], ["convert", str(path), "--to", "onnx", "--force"],
                     ["quantize", str(path), "--mode", "dynamic", "--force"],
                     ["profile", str(path), "--device", "snapdragon-8-gen-3", "--emulate", "--duration", "0.1"]):
            tried += 1
            escaped += "Traceback" in _cli(*args, cwd=folder).stderr
    return tried, escaped


ATTACKS: dict[str, Attack] = {
    "code from the current folder": cwd_hijack,
    "external data outside the folder": external_data_escape,
    "overwriting user files": overwrite_user_files,
    "planted cache entries": planted_cache,
    "workers outliving edgekit": orphan_workers,
    "network connections": network,
    "zip bombs / leftovers": archives,
    "unbounded work (extends, no timeout, Ctrl-C)": slow_inputs,
    "foreign exceptions": foreign_exceptions,
}


def main() -> None:
    total_tried = total_succeeded = 0
    start = time.monotonic()
    for name, attack in ATTACKS.items():
        with tempfile.TemporaryDirectory(prefix="edgekit-attack-") as tmp:
            folder = Path(tmp)
            os.environ["EDGEKIT_CACHE"] = str(folder / "cache")
            t0 = time.monotonic()
            tried, succeeded = attack(folder)
            total_tried, total_succeeded = total_tried + tried, total_succeeded + succeeded
            print(f"{name:48s} tried {tried:3d}  succeeded {succeeded}  ({time.monotonic() - t0:.1f} s)", flush=True)
    print(f"RESULT: {total_tried} attacks tried in {len(ATTACKS)} classes, {total_succeeded} succeeded "
          f"(target 0); {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
