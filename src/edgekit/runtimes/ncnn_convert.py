"""ONNX -> ncnn (``.param`` + ``.bin``) with Tencent's pnnx converter binary, in a subprocess, cached by content.

The ``pnnx`` wheel on PyPI declares a dependency on torch (over 1 GB) for its Python wrapper
only; the standalone converter binary inside needs nothing but libc and libstdc++. edgekit
never installs the wheel: :func:`fetch_pnnx` downloads the pinned wheel (:data:`PNNX`,
version and sha256) into the cache and extracts the binary alone, checking its sha256. That
happens only when asked — ``edgekit fetch pnnx``, or a test's set-up: edgekit makes no network
connection at run time, and converting without the binary raises RuntimeNotInstalledError
naming the command.

The binary runs in its own session with a timeout (its process group is killed on expiry),
inside a private temporary folder holding a copy of the model (pnnx writes side files next to
its input). Weights stay float32 (``fp16=0``: pnnx's default stores them as fp16, which costs
accuracy before the runtime is even asked for a precision). pnnx names blobs ``in0, in1...`` and
``out0...``; edgekit renames them to the ONNX model's own input and output names where those
are valid ncnn names, and writes each input's shape (batch dimension dropped) into its ``Input``
layer, so the ``.param`` describes itself. Results are cached as
``<cache>/ncnn/<key>.param|.bin``, the key covering every file the model uses
(``ModelFile.sha256``), the pnnx version and the conversion options.

Example::

    fetch_pnnx()                                                     # once, explicitly
    param, weights, converted_now = cached_conversion(open_model("det.onnx"))
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.cache import cache_dir, cached_file
from edgekit.errors import RuntimeNotInstalledError, UnsupportedModelError
from edgekit.isolation import python_command
from edgekit.models.formats import ModelFile
from edgekit.models.model_io import model_io
from edgekit.models.ncnn_param import parse
from edgekit.tensors import TensorSpec
from edgekit.wheels import PinnedWheel, download, extract

__all__ = ["FETCH_COMMAND", "PNNX_PINS", "PNNX_VERSION", "blob_name", "cached_conversion", "convert_to_ncnn",
           "copy_pnnx", "fetch_pnnx", "pnnx_path", "pnnx_pin"]

PNNX_VERSION = "20261020"
#: Linux machine -> the pinned pnnx wheel and the sha256 of the ``pnnx/pnnx`` binary inside it
PNNX_PINS: dict[str, tuple[PinnedWheel, str]] = {
    "x86_64": (PinnedWheel(f"pnnx=={PNNX_VERSION}",
                           f"pnnx-{PNNX_VERSION}-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
                           "d50d921e5897293d616444191c1a2dc5366423c81bdb4bd22a985fe8071cf17c"),
               "4db234cb90a27dc15e04e0d0edf5706c7a488ab8e6235cf8c146c6ec80fd9355"),
    "aarch64": (PinnedWheel(f"pnnx=={PNNX_VERSION}",
                            f"pnnx-{PNNX_VERSION}-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
                            "13727adb291bf8061a4cc95c8b911ff2459b406144ad3c86e755b6e3f8953427"),
                "1f55df74080eabb048cb122215f290d16e1bf82309c1a67662c91c437e96471e"),
}
FETCH_COMMAND = "edgekit fetch pnnx"
#: bumped when edgekit's post-processing of pnnx's output changes (part of the cache key)
_FORMAT = 1
_OPTIONS = ("fp16=0",)


def pnnx_pin(machine: str | None = None, system: str | None = None) -> tuple[PinnedWheel, str]:
    """The pinned pnnx wheel for this machine (or ``machine`` on ``system``) and its binary's sha256.

    >>> pnnx_pin("arm64", "Linux")[0].platform_args()[1]
    'manylinux2014_aarch64'

    Raises RuntimeNotInstalledError where no wheel is pinned (not Linux on x86-64 or aarch64).
    """
    machine = (machine or platform.machine()).lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    system = system or platform.system()
    if system != "Linux" or machine not in PNNX_PINS:
        raise RuntimeNotInstalledError(
            f"edgekit pins the pnnx converter (ONNX -> ncnn) for Linux on {' and '.join(sorted(PNNX_PINS))}; this is "
            f"{system} on {machine}. Convert on such a machine (`edgekit convert model.onnx --to ncnn`) and bring "
            "the .param and .bin here: ncnn runs them without pnnx.")
    return PNNX_PINS[machine]


def _binary_target() -> Path:
    return cache_dir("tools") / f"pnnx-{PNNX_VERSION}"


def pnnx_path() -> Path | None:
    """The verified pnnx binary in the cache, or ``None`` (nothing is downloaded)."""
    from edgekit.cache import file_sha256

    target = _binary_target()
    try:
        digest = pnnx_pin()[1]
    except RuntimeNotInstalledError:
        return None
    if target.is_file() and os.access(target, os.X_OK) and file_sha256(target) == digest:
        return target
    return None


def copy_pnnx(cache: Path) -> Path | None:
    """Copy the verified pnnx binary into the edgekit cache rooted at ``cache`` (a private cache of a test or a
    measurement run, so it converts without fetching again); the copy's path, or ``None`` when this cache has none.
    """
    import shutil

    binary = pnnx_path()
    if binary is None:
        return None
    folder = cache / "tools"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(shutil.copy2(binary, folder / binary.name))


def fetch_pnnx() -> Path:
    """Download the pinned pnnx wheel (once) and extract its converter binary into the cache; return its path.

    Raises ModelFetchError when PyPI cannot be reached or a digest does not match.
    """
    have = pnnx_path()
    if have is not None:
        return have
    pinned, digest = pnnx_pin()
    wheel = download(pinned, purpose="the pnnx converter (ONNX -> ncnn)")
    return extract(wheel, "pnnx/pnnx", digest, _binary_target(), mode=0o755)


def _require_pnnx(name: str) -> Path:
    pnnx_pin()  # a machine with no pinned wheel: say so, not "fetch it"
    path = pnnx_path()
    if path is None:
        raise RuntimeNotInstalledError(
            f"ncnn reads ONNX models after converting them with pnnx, and the pnnx converter is not in edgekit's "
            f"cache, so {name} cannot be converted. Fetch it once (downloads the pinned pnnx {PNNX_VERSION} wheel, "
            f"~29 MB, no torch) with: {FETCH_COMMAND}"
        )
    return path


def blob_name(name: str, index: int, prefix: str, taken: set[str]) -> str:
    """The ncnn blob name edgekit gives ONNX input/output ``name`` (pnnx's ``<prefix><index>`` when it cannot).

    >>> blob_name("image", 0, "in", {"in0", "1"}), blob_name("a b", 0, "in", {"in0"}), blob_name("1", 0, "in", {"1"})
    ('image', 'in0', 'in0')
    """
    ok = name and len(name) <= 255 and not any(c.isspace() or c == '"' for c in name) and name not in taken
    return name if ok else f"{prefix}{index}"


def _rewrite(param_path: Path, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
    """Rename pnnx's in<i>/out<i> blobs to the ONNX names and write each input's shape into its Input layer."""
    param = parse(param_path.read_text(), str(param_path))
    taken = param.blobs()
    rename: dict[str, str] = {}
    for prefix, specs in (("in", inputs), ("out", outputs)):
        for i, spec in enumerate(specs):
            old = f"{prefix}{i}"
            new = blob_name(spec.name, i, prefix, taken)
            if old in taken and new != old:
                rename[old] = new
                taken.add(new)
    for layer in param.layers:
        layer.bottoms = [rename.get(b, b) for b in layer.bottoms]
        layer.tops = [rename.get(t, t) for t in layer.tops]
    for layer, spec in zip(param.inputs(), inputs):
        lead = spec.shape[0] if spec.shape else 0
        batch = not isinstance(lead, int) or lead in (1, -1)  # ncnn has no batch axis: pnnx drops a batch of 1
        shape = spec.shape[1:] if batch else spec.shape
        dims = [d if isinstance(d, int) and d > 0 else 0 for d in shape]
        if 1 <= len(dims) <= 4:
            keys = {1: (0,), 2: (1, 0), 3: (2, 1, 0), 4: (2, 11, 1, 0)}[len(dims)]  # ncnn: 0=w 1=h 11=d 2=c
            layer.params.update({k: str(d) for k, d in zip(keys, dims)})
    param_path.write_text(param.text())


def convert_to_ncnn(model: ModelFile, param_dest: Path, bin_dest: Path, *, timeout: float = 600.0) -> float:
    """Convert ONNX ``model`` with pnnx into ``param_dest`` and ``bin_dest``; return the seconds pnnx took.

    Raises RuntimeNotInstalledError without the pnnx binary, UnsupportedModelError when pnnx
    fails, crashes or runs past ``timeout`` seconds.
    """
    if model.format != "onnx":
        raise UnsupportedModelError(f"ncnn converts ONNX models with pnnx, not {model.format!r} ({model.path.name}); "
                                    "export the model to ONNX first.")
    exe = _require_pnnx(model.path.name)
    with tempfile.TemporaryDirectory(prefix="edgekit-pnnx-") as tmp:
        work = Path(tmp)
        src = work / "model.onnx"
        shutil.copyfile(model.path, src)
        for ext in model.external:  # external data keeps its path relative to the model
            rel = ext.relative_to(model.path.parent)
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ext, work / rel)
        outs = {key: work / f"out.{key}" for key in ("ncnnparam", "ncnnbin", "pnnxparam", "pnnxbin", "pnnxpy",
                                                       "pnnxonnx", "ncnnpy")}
        argv = [str(exe), str(src), *_OPTIONS, *(f"{k}={v}" for k, v in outs.items())]
        # started like edgekit's workers (isolated interpreter, dies with this process: PR_SET_PDEATHSIG
        # survives the exec), then replaced by the pinned, sha256-checked pnnx binary
        launcher, setup = python_command("import os, sys; os.execv(sys.argv[1], sys.argv[1:])")
        t0 = time.perf_counter()
        proc = subprocess.Popen([*launcher, *argv], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ, **setup))
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise UnsupportedModelError(
                f"pnnx did not finish converting {model.path.name} within {timeout:g} s. Pass "
                "options={'convert_timeout': <seconds>} for a large model, or convert it yourself to .param/.bin."
            ) from exc
        seconds = time.perf_counter() - t0
        log = out.decode("utf-8", "replace")
        param, weights = outs["ncnnparam"], outs["ncnnbin"]
        if proc.returncode != 0 or not param.is_file() or not weights.is_file():
            why = (f"crashed ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0
                   else f"failed (exit status {proc.returncode})")
            named = tuple(op for op in _op_types(model) if op in log)  # the operators pnnx names as unknown
            raise UnsupportedModelError(
                f"pnnx {PNNX_VERSION} {why} converting {model.path.name} to ncnn. Converter output:\n{log[-1500:]}\n"
                "Run the model on another runtime (`edgekit check` compares them), or re-export it.",
                operators=named)
        io = model_io(model)
        assert io is not None  # an ONNX model always has its I/O read
        ins, outs_specs = io
        _rewrite(param, ins, outs_specs)
        shutil.copyfile(param, param_dest)
        shutil.copyfile(weights, bin_dest)
    return seconds


def cached_conversion(model: ModelFile, timeout: float = 600.0) -> tuple[Path, Path, bool]:
    """The cached ``.param`` and ``.bin`` for ONNX ``model``, converting on a miss: ``(param, bin, converted_now)``.

    Each file's own digest is kept beside it (:func:`edgekit.cache.cached_file`): a planted or
    damaged one is converted again instead of used.
    """
    setting = f"{model.sha256()}|pnnx-{PNNX_VERSION}|{' '.join(_OPTIONS)}|edgekit-{_FORMAT}"
    key = hashlib.sha256(setting.encode()).hexdigest()
    folder = cache_dir("ncnn")
    work: dict[str, Path] = {}

    def build(which: str) -> Callable[[Path], None]:
        def write(tmp: Path) -> None:
            if not work:
                scratch = Path(tempfile.mkdtemp(prefix="edgekit-ncnn-", dir=folder))
                work["dir"] = scratch
                convert_to_ncnn(model, scratch / "m.param", scratch / "m.bin", timeout=timeout)
            shutil.copyfile(work["dir"] / f"m.{which}", tmp)
        return write

    try:
        weights, built_bin = cached_file(folder / f"{key}.bin", build("bin"))
        param, built_param = cached_file(folder / f"{key}.param", build("param"))
    finally:
        if work:
            shutil.rmtree(work["dir"], ignore_errors=True)
    return param, weights, built_bin or built_param


def _op_types(model: ModelFile) -> list[str]:
    """The model's operator types outside ONNX's own domains (custom operators), sorted."""
    import onnx

    graph = onnx.load(str(model.path), load_external_data=False).graph
    return sorted({n.op_type for n in graph.node if n.domain not in ("", "ai.onnx", "ai.onnx.ml")})
