"""Audit: nothing installs packages, loads a custom-op library or runs code from a model or bundle by itself.

Static: every call in ``src/edgekit`` that starts a process, loads a shared library, imports by
name, evaluates code or unpickles is listed below with why it is safe; a new one fails this test
until it is reviewed and added. Dynamic: loading and running models on every runtime, under a
Python audit hook, starts only edgekit's own worker processes (never ``pip``), and opens only
the runtimes' own libraries; a model that names a custom operator loads nothing.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import edgekit

SRC = Path(edgekit.__file__).parent
#: (file relative to src/edgekit, dotted call) -> why it is safe
ALLOWED = {
    ("hostinfo.py", "subprocess.run"): "fixed argv (sysctl, getprop) to describe the host; nothing from a model",
    ("isolation.py", "subprocess.Popen"): "sys.executable running edgekit's own child script",
    ("isolation.py", "pickle.load"): "the job/result files edgekit wrote itself in a private temp folder",
    ("profiling/worker.py", "ctypes.string_at"): "string_at(0): the deliberate crash of the worker's test hook",
    ("runtime.py", "importlib.import_module"): "Runtime.import_library: a runtime's module name from its catalog entry",
    ("runtimes/mnn_convert.py", "subprocess.run"): "sys.executable running MNN's native converter "
                                                  "(_tools.mnnconvert), never its pip-installing Python wrapper",
    ("runtimes/_capture.py", "ctypes.CDLL"): "CDLL(None): this process's own libc, to fflush stdout",
    ("runtimes/litert.py", "ctypes.CDLL"): "a delegate library the caller (or their device profile) named",
    ("runtimes/litert.py", "mod.load_delegate"): "same library, after the CDLL check",
    ("runtimes/onnxruntime.py", "so.register_custom_ops_library"): "only the paths passed as custom_ops=",
    ("cli/__init__.py", "importlib.import_module"): "edgekit's own command modules (lazy CLI)",
    ("__init__.py", "importlib.import_module"): "edgekit's own submodules (lazy attributes)",
    ("worker_session.py", "pickle.loads"): "round-trips an error edgekit itself is about to send (to check it travels)",
    ("fleet/agent.py", "subprocess.call"): "`ray start` from the same environment (beside sys.executable), joining "
                                           "the head the user named; the agent's own foreground command",
    ("wheels.py", "subprocess.run"): "`pip download` (never install, no dependencies) of a pinned wheel whose "
                                     "sha256 is checked before any file is taken from it",
    ("runtimes/ncnn_convert.py", "subprocess.Popen"): "the pinned, sha256-checked pnnx binary on a copy of the "
                                                      "model in a private temp folder, started as a worker "
                                                      "(dies with edgekit), with a timeout",
}
PREFIXES = ("subprocess.", "os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn", "ctypes.",
            "pickle.load", "marshal.", "runpy.", "shelve.", "importlib.import_module")
BUILTINS = {"eval", "exec", "compile", "__import__"}
ATTRS = {"load_delegate", "register_custom_ops_library", "add_extension", "CDLL", "PyDLL", "LoadLibrary",
         "import_module"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _risky_calls() -> set[tuple[str, str]]:
    found = set()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                if name in BUILTINS or name.startswith(PREFIXES) or name.split(".")[-1] in ATTRS:
                    found.add((rel, name))
    return found


def test_every_risky_call_is_reviewed() -> None:
    found = _risky_calls()
    new = sorted(found - set(ALLOWED))
    assert not new, "review these calls and list them in ALLOWED with the reason they are safe: " + repr(new)
    gone = sorted(set(ALLOWED) - found)
    assert not gone, f"no longer in the code; drop them from ALLOWED: {gone}"


def test_bundles_cannot_name_code_options_or_libraries() -> None:
    from edgekit.pipeline import config

    keys = config._TOP_KEYS | config._PRE_KEYS
    assert not keys & {"options", "runtime", "device", "delegate", "custom_ops", "plugin", "module", "script"}


def test_builtin_profiles_name_no_library_paths_or_custom_ops() -> None:
    for profile in edgekit.list_devices():
        for t in profile.targets:
            assert "custom_ops" not in t.options and "delegate" not in t.options, (profile.name, t.describe())
            assert t.delegate is None or "/" not in t.delegate and "\\" not in t.delegate, (profile.name, t.delegate)


_AUDIT = r"""
import json, sys
events = []
def hook(event, args):
    if event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"):
        events.append([event, [str(a) for a in (args[1] if event == "subprocess.Popen" else args)][:6]])
    elif event == "ctypes.dlopen":
        events.append([event, [str(args[0])]])
sys.addaudithook(hook)
import numpy as np, edgekit
from pathlib import Path
from edgekit.testing.conformance import build_model
runs = [("onnxruntime", "onnx"), ("litert", "tflite"), ("openvino", "onnx"), ("opencv", "onnx"), ("mnn", "onnx")]
for rt, fmt in runs:
    if not edgekit.get_runtime(rt).is_installed():
        continue
    with edgekit.load(build_model("conv_relu", fmt, Path(sys.argv[1]) / fmt), runtime=rt, threads=1) as m:
        m(np.ones(m.inputs[0].concrete_shape(), np.float32))
before = len(events)
try:
    edgekit.load(sys.argv[2], runtime="onnxruntime")
except edgekit.EdgekitError as exc:
    custom = type(exc).__name__
print(json.dumps({"events": events, "custom": custom, "after_custom": events[before:],
                  "mnn_tools": sorted(k for k in sys.modules if k.startswith(("MNN.tools", "aliyun")))}))
"""


def test_loading_models_starts_no_installer_and_loads_no_foreign_library(tmp_path: Path, fuzz_env) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Evil", ["x"], ["y"], domain="com.attacker")], "custom",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.attacker", 1)])
    model.ir_version = 7
    onnx.save(model, str(tmp_path / "custom.onnx"))
    proc = subprocess.run([sys.executable, "-c", _AUDIT, str(tmp_path / "models"), str(tmp_path / "custom.onnx")],
                          capture_output=True, text=True, timeout=600, env={**__import__("os").environ, **fuzz_env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for event, args in report["events"]:
        text = " ".join(args)
        assert "pip" not in args[:4] and "install" not in text, (event, args)
        if event == "subprocess.Popen":
            # edgekit's workers (probe, converter) run this interpreter; nothing else is spawned (LiteRT looks
            # for delegate libraries by reading folders, not through ctypes.util.find_library's ldconfig/gcc/ld)
            assert args[0] == sys.executable, args
        if event == "ctypes.dlopen":
            assert args[0] == "None" or "site-packages" in args[0], args  # libc, or a runtime's own library
        assert event in ("subprocess.Popen", "ctypes.dlopen"), (event, args)
    assert report["custom"] == "UnsupportedModelError" and report["after_custom"] == []
    assert report["mnn_tools"] == []  # MNN's Python tools run `pip install` and send usage logs
