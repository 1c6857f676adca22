"""Guarded loading: load and run each new model file once in a probe process before loading it in-process.

Some native readers cannot be protected by validating the file first. Measured by fuzzing:
MNN 3.6.1 crashed (SIGSEGV, SIGABRT) on about 4% of bit-flipped ``.mnn`` files that are
still well-formed flatbuffers, and on a converted ONNX model with a damaged op type;
OpenCV 5.0's ONNX importer crashed (SIGSEGV, SIGFPE, SIGABRT at release) on 1.3% of mutated
ONNX files, some of which no structural rule catches (an input typed uint8 feeding a float
MatMul), and it segfaults on some valid real models too. Adapters of such runtimes call
:func:`probe` first: the file is loaded, run once on zeros and closed in a child process
(:func:`~edgekit.isolation.run_isolated`); a crash or hang there becomes a typed
error here. A file that passed is remembered by runtime, its version, the options that
matter and the model's sha256, external data included (in memory and under ``<cache>/probed/``), so each file is
probed once: 0.2-1 s on its first load, a hash of the file after. The runtime option
``probe=False`` skips it for trusted files.

Example::

    probe("opencv", Path("det.onnx"), "5.0.0", source_name="det.onnx", options={"engine": "auto"})
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from edgekit.cache import cache_dir, file_sha256
from edgekit.errors import CorruptModelError, InferenceTimeoutError, UnsupportedModelError

__all__ = ["probe", "probe_worker"]

_MAX_FEED_BYTES = 64 << 20
_PASSED: set[str] = set()


def probe_worker(path: str, runtime: str, options: dict[str, Any]) -> bool:
    """Runs in the probe process: load ``path`` unguarded, run it once on zeros, close it."""
    import numpy as np

    from edgekit.models.formats import open_model
    from edgekit.registry import get_runtime

    opts = dict(options)
    accelerator = opts.pop("accelerator", None)
    session = get_runtime(runtime).open(open_model(path), accelerator=accelerator, threads=1,
                                        options=dict(opts, probe=False))
    try:
        shapes = {s.name: (s.concrete_shape(), s.dtype) for s in session.inputs}
        if sum(math.prod(shape) * dtype.itemsize for shape, dtype in shapes.values()) <= _MAX_FEED_BYTES:
            session.run({name: np.zeros(shape, dtype) for name, (shape, dtype) in shapes.items()})
    finally:
        session.close()
    return True


def _key(runtime: str, version: str, digest: str, options: dict[str, Any]) -> str:
    setting = json.dumps([runtime, version, options], sort_keys=True, default=str)
    return f"{runtime}-{hashlib.sha256(f'{setting}|{digest}'.encode()).hexdigest()}"


def probe(runtime: str, path: Path, version: str, *, source_name: str, corrupt_on_crash: bool = False,
          options: dict[str, Any] | None = None, timeout: float = 60.0, digest: str | None = None) -> None:
    """Load, run and close ``path`` with ``runtime`` once in a child process, unless it passed before.

    Passed files are remembered by ``digest`` — pass ``ModelFile.sha256()``, which covers every
    file the model uses (external data too); default: the sha256 of ``path`` alone.

    A crash there raises CorruptModelError when ``corrupt_on_crash`` (the file was checked and a
    sound one does not crash this runtime), else UnsupportedModelError; a hang raises
    InferenceTimeoutError. An ordinary error in the child is left for the in-process load to raise.
    """
    from edgekit.isolation import IsolatedFailure, run_isolated

    opts = dict(options or {})
    key = _key(runtime, version, digest or file_sha256(path), opts)
    marker = cache_dir("probed") / key
    if key in _PASSED or marker.is_file():
        _PASSED.add(key)
        return
    # strict_exit: damage that surfaces only when the child exits (heap corruption) is a crash too
    result = run_isolated("edgekit.runtimes._probe:probe_worker", (str(path), runtime, opts), timeout=timeout,
                          strict_exit=True)
    if not isinstance(result, IsolatedFailure):
        marker.touch()
        _PASSED.add(key)
        return
    if result.kind == "timeout":
        raise InferenceTimeoutError(
            f"{runtime} did not finish loading and running {source_name} within {timeout:g} s in edgekit's probe "
            "process (it may hang on this file). Pass probe_timeout=<seconds> for a very large model, or "
            "probe=False to load a trusted file without the probe.")
    if result.kind == "crash":
        what = f"{runtime} {version} crashed loading or running {source_name} in edgekit's probe process ({result.describe()})"
        if corrupt_on_crash:
            raise CorruptModelError(
                f"{what}: the file is well-formed but its contents are damaged or not meant for this version. "
                "Re-convert or re-download the model, and compare its checksum with the original.")
        raise UnsupportedModelError(f"{what}: {runtime} cannot handle this model. Run it on another runtime "
                                    "(`edgekit check` compares them), or re-export it.")
    # kind == "error": a typed failure that the in-process load reports itself
