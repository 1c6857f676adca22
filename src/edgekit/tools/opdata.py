"""Operator-support data of the runtimes: ``runtimes/onnx_ops/<rt>.toml`` and ``runtimes/tflite_ops/<rt>.toml``.

The files are written by ``scripts/measure_op_support.py`` and referenced from the ``[ops]``
table of ``runtimes/<rt>.toml`` (``onnx = "onnx_ops/onnxruntime.toml"``). Each says how it was
obtained (``evidence``: ``measured`` from ONNX's backend cases, ``registered`` for a kernel
registration probe, ``documented`` for a vendor list) and, per operator, a ``status``:

=================  ===================================================================
``supported``      every case of the operator passed
``partial``        some cases passed, some failed or were refused (``cases`` says which)
``failing``        it runs but no case gave the right values
``unsupported``    no case ran (refused at load or run, crashed or timed out)
``registered``     LiteRT has a kernel for it (values not measured)
``not_registered`` LiteRT has no kernel for it
``untested``       the data has no case for it (so: unknown)
=================  ===================================================================

Example::

    data = op_support("opencv", "onnx")
    data.status("Softmax"), data.failures("Softmax")      # ('partial', {'test_softmax_...': 'failed: ...'})
    data.status("Add", "float32")                          # 'supported' (where int8 Add is not)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.catalog import catalog_dir, runtime_info
from edgekit.errors import ConfigError
from edgekit.tomlfile import read_toml

__all__ = ["BLOCKING", "OpSupport", "op_support"]

#: statuses that stop a model from running on a runtime
BLOCKING = frozenset({"failing", "unsupported", "not_registered"})


@dataclass(frozen=True)
class OpSupport:
    """One runtime's operator-support data for one model format."""

    runtime: str
    format: str
    version: str
    evidence: str
    source: str
    path: Path
    totals: Mapping[str, int] = field(default_factory=dict)
    ops: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def status(self, op: str, dtype: str | None = None) -> str:
        """The operator's status (``untested`` when the data has no case for it).

        With ``dtype`` (the element type of the operator's first input, ``"float32"``), the status of
        the cases of that type where the data distinguishes types (an ``int8`` Add may crash where a
        ``float32`` one passes); else the operator's overall status.
        """
        rec = self.ops.get(op, {})
        by_type = rec.get("dtypes", {})
        if dtype and dtype in by_type:
            return str(by_type[dtype])
        return str(rec.get("status", "untested"))

    def failures(self, op: str) -> dict[str, str]:
        """Non-passing cases of ``op`` with their reasons (measured data only)."""
        return dict(self.ops.get(op, {}).get("cases", {}))

    def describe(self) -> str:
        """``'onnxruntime 1.32.0, measured: ONNX backend node test cases ...'``."""
        return f"{self.runtime} {self.version}, {self.evidence}: {self.source}"


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    return read_toml(path)


def op_support(runtime: str, fmt: str) -> OpSupport | None:
    """The ``fmt`` (``"onnx"``/``"tflite"``) operator data of ``runtime``; None when there is none."""
    info = runtime_info(runtime)
    if info is None:
        return None
    rel = info.ops.get(fmt)
    if rel is None:
        return None
    where = f"runtimes/{runtime}.toml [ops] {fmt}"
    if not isinstance(rel, str):
        raise ConfigError(f"{where}: expected a path relative to runtimes/, got {rel!r}.")
    path = catalog_dir("runtimes") / rel
    if not path.is_file():
        raise ConfigError(f"{where}: {path} does not exist. Regenerate it: python scripts/measure_op_support.py "
                           f"--runtime {runtime}")
    data = _read(path)
    ops = data.get("ops", {})
    if not isinstance(ops, dict):
        raise ConfigError(f"{path}: key 'ops' expected a table, got {type(ops).__name__}.")
    return OpSupport(runtime=runtime, format=str(data.get("format", fmt)), version=str(data.get("version", "?")),
                     evidence=str(data.get("evidence", "?")), source=str(data.get("source", "")), path=path,
                     totals=dict(data.get("totals", {})), ops=ops)
