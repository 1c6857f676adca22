"""ONNX twins of the conformance cases, built with ``onnx.helper`` from the cases' weights.

Example::

    path = build_onnx("conv_relu", tmp_path / "conv_relu.onnx")
    edgekit.load(path)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.models.build import OPSET, save_onnx
from edgekit.testing.cases import CASES, INT8

__all__ = ["OPSET", "build_custom_op_onnx", "build_onnx", "save_onnx"]

_DT = {"float32": TensorProto.FLOAT, "int8": TensorProto.INT8}


def _const(name: str, value: np.ndarray | float | int, dtype: type | None = None) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _graph(case: str) -> onnx.GraphProto:
    c = CASES[case]
    w = c.weights()

    def vin(name: str, shape: tuple[int | str, ...]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, _DT[c.onnx_inputs[name][1]], list(shape))

    def vout(name: str, dtype: int, shape: list[int | str]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, dtype, shape)

    F = TensorProto.FLOAT
    if case == "conv_relu":
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="conv"),
                 helper.make_node("Relu", ["c"], ["y"], name="relu")]
        return helper.make_graph(nodes, case, [vin("x", (1, 3, 8, 8))], [vout("y", F, [1, 4, 8, 8])],
                                 [_const("w", w["w"]), _const("b", w["b"])])
    if case == "matmul_add_softmax":
        nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
                 helper.make_node("Add", ["m", "b"], ["z"], name="add"),
                 helper.make_node("Softmax", ["z"], ["probs"], axis=-1, name="softmax")]
        return helper.make_graph(nodes, case, [vin("x", (2, 16))], [vout("probs", F, [2, 10])],
                                 [_const("w", w["w"]), _const("b", w["b"])])
    if case == "two_in_two_out":
        nodes = [helper.make_node("Add", ["a", "b"], ["z_sum"], name="add"),
                 helper.make_node("Mul", ["a", "b"], ["a_prod"], name="mul")]
        return helper.make_graph(nodes, case, [vin("a", (1, 4)), vin("b", (1, 4))],
                                 [vout("z_sum", F, [1, 4]), vout("a_prod", F, [1, 4])])
    if case == "dynamic_batch":
        nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
                 helper.make_node("Add", ["m", "b"], ["z"], name="add"),
                 helper.make_node("Relu", ["z"], ["y"], name="relu")]
        return helper.make_graph(nodes, case, [vin("x", ("batch", 6))], [vout("y", F, ["batch", 3])],
                                 [_const("w", w["w"]), _const("b", w["b"])])
    if case == "int8_fc":
        q = INT8
        inits = [
            _const("x_scale", q["x_scale"], np.float32), _const("x_zp", q["x_zp"], np.int8),
            _const("w_q", w["w_q"]), _const("w_scale", q["w_scale"], np.float32), _const("w_zp", 0, np.int8),
            _const("b_q", w["b_q"]), _const("b_scale", q["x_scale"] * q["w_scale"], np.float32),
            _const("b_zp", 0, np.int32),
            _const("y_scale", q["y_scale"], np.float32), _const("y_zp", q["y_zp"], np.int8),
        ]
        nodes = [
            helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zp"], ["x_f"], name="dq_x"),
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_f"], name="dq_w"),
            helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b_f"], name="dq_b"),
            helper.make_node("MatMul", ["x_f", "w_f"], ["m"], name="matmul"),
            helper.make_node("Add", ["m", "b_f"], ["z"], name="add"),
            helper.make_node("QuantizeLinear", ["z", "y_scale", "y_zp"], ["y"], name="q_y"),
        ]
        return helper.make_graph(nodes, case, [vin("x", (1, 8))], [vout("y", TensorProto.INT8, [1, 4])], inits)
    raise KeyError(f"no ONNX builder for case {case!r}; cases: {sorted(CASES)}")


def build_onnx(case: str, path: str | Path) -> Path:
    """Write the ONNX model of conformance case ``case`` to ``path``."""
    return save_onnx(_graph(case), path)


def build_custom_op_onnx(path: str | Path, op_name: str = "EdgekitNoSuchOp", domain: str = "com.example") -> Path:
    """A model ``y = op_name(x)`` using an operator no runtime has (for error tests); not checked."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node(op_name, ["x"], ["y"], domain=domain, name="custom0")], "custom", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(domain, 1)])
    model.ir_version = 7
    path = Path(path)
    onnx.save(model, str(path))  # onnx.checker would reject the unknown operator
    return path
