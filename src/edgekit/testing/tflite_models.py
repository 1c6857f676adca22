"""TFLite files of the conformance cases, written without TensorFlow (:mod:`edgekit.models.build`).

Example::

    path = build_tflite("conv_relu", tmp_path / "conv_relu.tflite")
    edgekit.load(path, runtime="litert")
"""

from __future__ import annotations

from pathlib import Path

from edgekit.models.build import TENSOR_TYPES, OpDef, TensorDef, write_tflite
from edgekit.testing.cases import CASES, INT8

__all__ = ["TENSOR_TYPES", "OpDef", "TensorDef", "build_custom_op_model", "build_tflite", "write_tflite"]


# --- the conformance cases ----------------------------------------------------------------------

def _case_graph(case: str) -> tuple[list[TensorDef], list[OpDef], list[int], list[int]]:
    w = CASES[case].weights()
    if case == "conv_relu":
        t = [TensorDef("x", [1, 8, 8, 3]), TensorDef("w", [4, 3, 3, 3], data=w["w"].transpose(0, 2, 3, 1)),
             TensorDef("b", [4], data=w["b"]), TensorDef("y", [1, 8, 8, 4])]
        opts = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU"}
        return t, [OpDef("CONV_2D", [0, 1, 2], [3], opts)], [0], [3]
    if case == "matmul_add_softmax":
        t = [TensorDef("x", [2, 16]), TensorDef("w", [10, 16], data=w["w"].T), TensorDef("b", [10], data=w["b"]),
             TensorDef("logits", [2, 10]), TensorDef("probs", [2, 10])]
        ops = [OpDef("FULLY_CONNECTED", [0, 1, 2], [3]), OpDef("SOFTMAX", [3], [4], {"beta": 1.0})]
        return t, ops, [0], [4]
    if case == "two_in_two_out":
        t = [TensorDef("a", [1, 4]), TensorDef("b", [1, 4]), TensorDef("z_sum", [1, 4]), TensorDef("a_prod", [1, 4])]
        return t, [OpDef("ADD", [0, 1], [2]), OpDef("MUL", [0, 1], [3])], [0, 1], [2, 3]
    if case == "dynamic_batch":
        t = [TensorDef("x", [1, 6], shape_signature=[-1, 6]), TensorDef("w", [3, 6], data=w["w"].T),
             TensorDef("b", [3], data=w["b"]), TensorDef("y", [1, 3], shape_signature=[-1, 3])]
        return t, [OpDef("FULLY_CONNECTED", [0, 1, 2], [3], {"fused_activation_function": "RELU"})], [0], [3]
    if case == "int8_fc":
        q = INT8
        t = [TensorDef("x", [1, 8], "int8", quantization=([q["x_scale"]], [q["x_zp"]], 0)),
             TensorDef("w", [4, 8], "int8", data=w["w_q"].T, quantization=([q["w_scale"]], [0], 0)),
             TensorDef("b", [4], "int32", data=w["b_q"], quantization=([q["x_scale"] * q["w_scale"]], [0], 0)),
             TensorDef("y", [1, 4], "int8", quantization=([q["y_scale"]], [q["y_zp"]], 0))]
        return t, [OpDef("FULLY_CONNECTED", [0, 1, 2], [3], version=4)], [0], [3]
    raise KeyError(f"no conformance case {case!r}; known: {sorted(CASES)}")


def build_tflite(case_name: str, path: str | Path) -> Path:
    """Write conformance case ``case_name`` (NHWC where the ONNX twin is NCHW) to ``path``.

    >>> build_tflite("two_in_two_out", "two.tflite")  # doctest: +SKIP
    """
    tensors, ops, inputs, outputs = _case_graph(case_name)
    return write_tflite(tensors, ops, inputs, outputs, path, description=f"edgekit conformance case {case_name}")


def build_custom_op_model(path: str | Path, op_name: str = "EdgekitNoSuchOp") -> Path:
    """A model ``y = op_name(x)`` using a custom operator no runtime has (for error tests)."""
    t = [TensorDef("x", [1, 4]), TensorDef("y", [1, 4])]
    return write_tflite(t, [OpDef(op_name, [0], [1], custom=True)], [0], [1], path)
