"""The reference runtime: ONNX's own pure-Python evaluator (``onnx.reference.ReferenceEvaluator``).

It needs no native library (``onnx`` is a core dependency of edgekit), so it is always
installed: a runtime to compare others with, and to test edgekit itself where no native
runtime is. It is slow — numpy, one Python thread — so it is never picked by default (its
catalog ``priority`` comes after every real runtime) and ``edgekit profile`` measures it only
when named (``picked_by_default = False``). It reads ONNX only, on the ``cpu``, in fp32.

Every operator's implementation is looked up when the model is opened, so an operator the
evaluator lacks — a custom op, or a standard op at an opset it has no version for (its
QuantizeLinear/DequantizeLinear start at opset 19) — raises ``UnsupportedModelError`` naming it.

Example::

    m = edgekit.load("det.onnx", runtime="reference")
    m(x)
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from edgekit.errors import CorruptModelError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.runtime import Runtime, Session
from edgekit.tensors import TensorSpec

__all__ = ["Reference"]

#: operator names in ReferenceEvaluator's messages: "Node type 'X' from domain 'D' is unknown",
#: "No registered schema for operator 'X'", "No implementation for operator 'X' domain '' and version 13",
#: "Domain 'D' (node type: 'X') is not specified"
_OPERATOR = re.compile(r"(?:[Oo]perator|[Nn]ode type:?) '([^']+)'")


class _ReferenceSession(Session):
    """``ReferenceEvaluator.run`` in the model's output order, cast to the declared dtypes."""

    thread_safe = False  # the evaluator keeps per-run state on its node objects

    def __init__(self, evaluator: Any, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        super().__init__(inputs, outputs, accelerator="cpu", precision="fp32", options={"threads": 1})
        self._evaluator = evaluator
        self._names = [o.name for o in self.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = self._evaluator.run(self._names, feeds)
        return [np.asarray(r).astype(spec.dtype, copy=False) for r, spec in zip(results, self.outputs)]

    def close(self) -> None:
        self._evaluator = None


class Reference(Runtime):
    """ONNX's reference evaluator: dependency-free, single-threaded, fp32 on the CPU."""

    name = "reference"
    capabilities = frozenset({"dynamic_shapes", "multi_output"})
    #: a pure-Python evaluator: ``edgekit profile`` measures it only when named
    picked_by_default = False

    def accelerators(self) -> list[str]:
        return ["cpu"]

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        import onnx
        from google.protobuf.message import Error as ProtobufError
        from onnx.reference import ReferenceEvaluator

        from edgekit.models.model_io import onnx_io

        name = model.path.name
        if model.format != "onnx":
            raise UnsupportedModelError(f"the reference runtime reads ONNX models only, not {model.format} ({name}). "
                                        "Convert the model to ONNX, or use a runtime that reads it (`edgekit runtimes`).")
        try:
            proto = onnx.load(str(model.path))
        except (ProtobufError, ValueError, OSError) as exc:
            raise CorruptModelError(f"the reference runtime cannot parse {name}: {exc}. It is not a sound ONNX file "
                                    "(or its external data is missing): re-export or re-download it.") from exc
        if not proto.graph.output:
            raise CorruptModelError(f"{name} declares no graph outputs, so there is nothing to evaluate: re-export it.")
        inputs, outputs = onnx_io(model.path)
        try:
            evaluator = ReferenceEvaluator(proto)
        except (NotImplementedError, RuntimeError, TypeError, ValueError, KeyError) as exc:
            raise _translate(exc, name) from exc
        return _ReferenceSession(evaluator, inputs, outputs)


def _translate(exc: Exception, name: str) -> UnsupportedModelError:
    """An UnsupportedModelError naming the operators ReferenceEvaluator could not load."""
    msg = " ".join(str(exc).split())
    ops = tuple(dict.fromkeys(_OPERATOR.findall(msg)))
    if ops:
        opset = ", or re-export it at an opset the evaluator implements" if "version" in msg else ""
        return UnsupportedModelError(
            f"the reference runtime (onnx.reference) has no implementation of operator(s) {', '.join(ops)} in {name} "
            f"({msg[:300]}). Run the model on a native runtime (`edgekit check` lists who supports each operator)"
            f"{opset}.", operators=ops)
    return UnsupportedModelError(f"the reference runtime (onnx.reference) cannot evaluate {name}: {msg[:400]}. "
                                 "Run it on a native runtime (`edgekit runtimes`).")
