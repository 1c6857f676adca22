"""Which TFLite builtin operators LiteRT's interpreter has a kernel for: a registration probe.

LiteRT cannot run ONNX's conformance cases and ships no single-operator TFLite suite, so
operator support is probed here at the level LiteRT itself checks first: for each builtin of
the TFLite schema a one-operator model (float32 ``[1, 4]`` in and out) is written with
:func:`edgekit.testing.tflite_models.write_tflite` and handed to ``Interpreter``. LiteRT's
``InterpreterBuilder`` looks every operator up in its builtin resolver before anything else;
a missing kernel raises "Didn't find op for builtin opcode 'X' version 'N'". Versions 1-8 are
tried, since some builtins start above 1 (``BROADCAST_TO`` is version 2). Any other outcome
(including an error about the operator's parameters, which comes after the lookup) means the
kernel is registered. Values are not measured; run it in a subprocess (a malformed model may
crash a native library).

Example::

    res = probe_builtins()
    res["CONV_2D"]          # {'status': 'registered', 'version': 1}
    res["STABLEHLO_ABS"]    # {'status': 'not_registered', 'reason': "Didn't find op ..."}
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

__all__ = ["probe_builtins"]

_NOT_OPERATORS = {"CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"}
_NOT_FOUND = "Didn't find op for builtin opcode"


def probe_builtins(max_version: int = 8) -> dict[str, dict[str, Any]]:
    """``{builtin name: {"status": "registered" | "not_registered", "version"?, "reason"?}}``."""
    import tflite
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.testing.tflite_models import OpDef, TensorDef, write_tflite

    names = sorted(k for k, v in vars(tflite.BuiltinOperator).items()
                   if not k.startswith("_") and isinstance(v, int) and k not in _NOT_OPERATORS)
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="edgekit-tflreg-") as tmp:
        for name in names:
            last = ""
            for version in range(1, max_version + 1):
                path = Path(tmp) / f"{name}_{version}.tflite"
                write_tflite([TensorDef("x", [1, 4]), TensorDef("y", [1, 4])],
                            [OpDef(name, [0], [1], version=version)], [0], [1], path)
                try:
                    Interpreter(model_path=str(path), num_threads=1)
                except Exception as exc:  # noqa: BLE001 - the message is the measurement
                    last = " ".join(str(exc).split())
                    if _NOT_FOUND in last:
                        continue
                out[name] = {"status": "registered", "version": version}
                break
            else:
                out[name] = {"status": "not_registered", "reason": last.split(". ")[0][:200]}
    return out
