"""MNN's converter, run safely: ONNX/TFLite -> ``.mnn`` in a subprocess, cached by content.

This calls the converter's native entry point (``_tools.mnnconvert``), never MNN's
Python ``mnnconvert`` wrapper: that wrapper imports ``MNN.tools.utils.log``, which runs
``pip install aliyun-log-python-sdk`` and sends usage logs. A converter crash (it
segfaults on a TFLite custom op) or hang ends the subprocess, not the caller. Nothing
here imports MNN.

Example::

    convert_to_mnn("det.onnx", "det.mnn")
    path, converted_now = cached_conversion(open_model("det.onnx"), "3.6.1")
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from edgekit.cache import atomic_path, cached_file
from edgekit.errors import UnsupportedModelError
from edgekit.isolation import python_command
from edgekit.models.formats import ModelFile, open_model

__all__ = ["cached_conversion", "convert_to_mnn"]

_FRAMEWORK = {"onnx": "ONNX", "tflite": "TFLITE"}
#: run as edgekit's workers run (isolated mode: nothing from the working folder): the native converter
_CONVERT_SCRIPT = "import sys, _tools; _tools.mnnconvert(['mnnconvert'] + sys.argv[1:])"


def convert_to_mnn(source: str | os.PathLike[str], dest: str | os.PathLike[str], *, fmt: str | None = None,
                   timeout: float = 600.0) -> Path:
    """Convert an ONNX or TFLite model to ``dest`` with MNN's native converter, in a subprocess.

    ``dest`` appears atomically. Raises UnsupportedModelError with the converter's
    message (and ``operators`` when it names unsupported ones).
    """
    src = Path(source)
    fmt = fmt or open_model(src).format
    if fmt not in _FRAMEWORK:
        raise UnsupportedModelError(f"MNN converts {sorted(_FRAMEWORK)} models, not {fmt!r} ({src.name}).")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The converter creates the file itself (so the umask applies); a unique name per attempt.
    with atomic_path(dest) as tmp:
        args = ["-f", _FRAMEWORK[fmt], "--modelFile", str(src.resolve()), "--MNNModel", str(tmp),
                "--bizCode", "edgekit"]
        argv, setup = python_command(_CONVERT_SCRIPT)
        try:
            proc = subprocess.run([*argv, *args], cwd=dest.parent, timeout=timeout, env=dict(os.environ, **setup),
                                  capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise UnsupportedModelError(
                f"MNN's converter did not finish converting {src.name} within {timeout:g} s. Pass "
                "options={'convert_timeout': <seconds>} for a large model, or convert it yourself to .mnn."
            ) from exc
        log = (proc.stdout + proc.stderr).strip()
        failed = proc.returncode != 0 or "Converted Failed" in log  # it exits 0 after "Converted Failed!"
        if failed or not tmp.is_file() or tmp.stat().st_size == 0:
            raise _conversion_error(src, fmt, proc.returncode, log)
    return dest


def _tflite_custom_ops(path: Path) -> list[str]:
    """The custom operator names in ``path``'s operator codes ([] when the file cannot be read)."""
    from edgekit.errors import CorruptModelError
    from edgekit.models import tflite_schema

    try:
        info = tflite_schema.read_file(path)
    except CorruptModelError:  # only naming ops for an error message: the converter's error stands
        return []
    return [code.name for code in info.operator_codes if code.custom]


def _conversion_error(src: Path, fmt: str, returncode: int, log: str) -> UnsupportedModelError:
    ops: list[str] = []
    for line in re.findall(r"(?:Op Not Support|not supported? op)[^:]*:\s*(.*)", log, flags=re.IGNORECASE):
        ops += [tok.rsplit("::", 1)[-1] for tok in line.replace(",", " ").split() if tok]
    if fmt == "tflite" and "Custom op" in log:  # the converter aborts on the first custom op, unnamed
        ops += [op for op in _tflite_custom_ops(src) if op != "TFLite_Detection_PostProcess"]
    ops = list(dict.fromkeys(ops))
    tail = "\n".join(ln for ln in log.splitlines() if "device supports" not in ln)[-1500:] or "(no output)"
    if returncode < 0:
        import signal

        why = f"MNN's converter crashed ({signal.Signals(-returncode).name})"
        if ops:
            why += f" on unsupported operator(s) {', '.join(ops)}"
    elif ops:
        why = f"MNN's converter does not support operator(s) {', '.join(ops)}"
    else:
        why = f"MNN's converter failed (exit status {returncode})"
    return UnsupportedModelError(
        f"{why} converting {fmt} model {src.name}. Converter output:\n{tail}\n"
        "Run the model on another runtime (`edgekit check` lists who supports it), or re-export it without "
        "those operators.",
        operators=tuple(ops),
    )


def cached_conversion(model: ModelFile, version: str, timeout: float = 600.0) -> tuple[Path, bool]:
    """The cached ``.mnn`` for ``model``, converting on a miss; returns ``(path, converted_now)``."""
    from edgekit.cache import cache_dir

    # keyed by the content of every file the model uses (ModelFile.sha256) and the converter's version;
    # the artifact's own digest is kept beside it, so a planted or damaged .mnn is converted again
    path = cache_dir("mnn") / f"{model.sha256()}-{version}.mnn"
    return cached_file(path, lambda tmp: convert_to_mnn(model.path, tmp, fmt=model.format, timeout=timeout))
