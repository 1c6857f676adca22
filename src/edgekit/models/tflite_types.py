"""What a TFLite model holds, as data: the schema's enums and the records its reader returns.

The bottom of the TFLite reading stack: :mod:`edgekit.models.tflite_rules` (semantic checks)
and :mod:`edgekit.models.tflite_schema` (the bounds-checked walk) import this module, and it
imports neither. The enums are literal tables, so reading a model imports no generated
flatbuffer code (the ``tflite`` package is used only to *write* models, in
:mod:`edgekit.models.build`).

Example::

    BUILTIN_OPERATORS[3]                          # 'CONV_2D'
    info = read_model(data)                       # from edgekit.models.tflite_schema
    op = info.subgraphs[0].operators[0]
    op.name, op.custom, op.options                # 'CONV_2D', False, {'padding': 0, 'stride_w': 1, ...}
    info.constant(info.subgraphs[0].tensors[op.inputs[1]])   # the filter's bytes
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ACTIVATIONS", "BUILTIN_OPERATORS", "CUSTOM", "OPTIONS", "OPTIONS_OF", "PADDINGS", "TENSOR_TYPES",
           "ModelInfo", "OperatorCode", "OperatorInfo", "SubgraphInfo", "TensorInfo"]

#: TensorType value -> (name, bytes per element; 0 when not fixed: strings, resources, packed int4/int2)
TENSOR_TYPES = {
    0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8), 5: ("string", 0),
    6: ("bool", 1), 7: ("int16", 2), 8: ("complex64", 8), 9: ("int8", 1), 10: ("float64", 8),
    11: ("complex128", 16), 12: ("uint64", 8), 13: ("resource", 0), 14: ("variant", 0), 15: ("uint32", 4),
    16: ("uint16", 2), 17: ("int4", 0), 18: ("bfloat16", 2), 19: ("int2", 0), 20: ("uint4", 0),
    21: ("float8_e4m3fn", 1), 22: ("float8_e5m2", 1),
}
#: the BuiltinOperator value of a custom operator (its name is the operator code's ``custom_code``)
CUSTOM = 32
#: BuiltinOperator value -> name. Generated once from the BuiltinOperator enum of the TFLite schema
#: (version 3) in ai-edge-litert 2.3.0's ``schema_py_generated`` (the ``tflite`` 2.18 package's enum
#: is the same up to 208; it lacks 209 STABLEHLO_CASE). Newer operators get appended here.
BUILTIN_OPERATORS = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 5: "DEPTH_TO_SPACE",
    6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP", 8: "FLOOR", 9: "FULLY_CONNECTED", 10: "HASHTABLE_LOOKUP",
    11: "L2_NORMALIZATION", 12: "L2_POOL_2D", 13: "LOCAL_RESPONSE_NORMALIZATION", 14: "LOGISTIC",
    15: "LSH_PROJECTION", 16: "LSTM", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6",
    22: "RESHAPE", 23: "RESIZE_BILINEAR", 24: "RNN", 25: "SOFTMAX", 26: "SPACE_TO_DEPTH", 27: "SVDF", 28: "TANH",
    29: "CONCAT_EMBEDDINGS", 30: "SKIP_GRAM", 31: "CALL", 32: "CUSTOM", 33: "EMBEDDING_LOOKUP_SPARSE", 34: "PAD",
    35: "UNIDIRECTIONAL_SEQUENCE_RNN", 36: "GATHER", 37: "BATCH_TO_SPACE_ND", 38: "SPACE_TO_BATCH_ND",
    39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 42: "DIV", 43: "SQUEEZE", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM",
    45: "STRIDED_SLICE", 46: "BIDIRECTIONAL_SEQUENCE_RNN", 47: "EXP", 48: "TOPK_V2", 49: "SPLIT", 50: "LOG_SOFTMAX",
    51: "DELEGATE", 52: "BIDIRECTIONAL_SEQUENCE_LSTM", 53: "CAST", 54: "PRELU", 55: "MAXIMUM", 56: "ARG_MAX",
    57: "MINIMUM", 58: "LESS", 59: "NEG", 60: "PADV2", 61: "GREATER", 62: "GREATER_EQUAL", 63: "LESS_EQUAL",
    64: "SELECT", 65: "SLICE", 66: "SIN", 67: "TRANSPOSE_CONV", 68: "SPARSE_TO_DENSE", 69: "TILE", 70: "EXPAND_DIMS",
    71: "EQUAL", 72: "NOT_EQUAL", 73: "LOG", 74: "SUM", 75: "SQRT", 76: "RSQRT", 77: "SHAPE", 78: "POW",
    79: "ARG_MIN", 80: "FAKE_QUANT", 81: "REDUCE_PROD", 82: "REDUCE_MAX", 83: "PACK", 84: "LOGICAL_OR",
    85: "ONE_HOT", 86: "LOGICAL_AND", 87: "LOGICAL_NOT", 88: "UNPACK", 89: "REDUCE_MIN", 90: "FLOOR_DIV",
    91: "REDUCE_ANY", 92: "SQUARE", 93: "ZEROS_LIKE", 94: "FILL", 95: "FLOOR_MOD", 96: "RANGE",
    97: "RESIZE_NEAREST_NEIGHBOR", 98: "LEAKY_RELU", 99: "SQUARED_DIFFERENCE", 100: "MIRROR_PAD", 101: "ABS",
    102: "SPLIT_V", 103: "UNIQUE", 104: "CEIL", 105: "REVERSE_V2", 106: "ADD_N", 107: "GATHER_ND", 108: "COS",
    109: "WHERE", 110: "RANK", 111: "ELU", 112: "REVERSE_SEQUENCE", 113: "MATRIX_DIAG", 114: "QUANTIZE",
    115: "MATRIX_SET_DIAG", 116: "ROUND", 117: "HARD_SWISH", 118: "IF", 119: "WHILE", 120: "NON_MAX_SUPPRESSION_V4",
    121: "NON_MAX_SUPPRESSION_V5", 122: "SCATTER_ND", 123: "SELECT_V2", 124: "DENSIFY", 125: "SEGMENT_SUM",
    126: "BATCH_MATMUL", 127: "PLACEHOLDER_FOR_GREATER_OP_CODES", 128: "CUMSUM", 129: "CALL_ONCE",
    130: "BROADCAST_TO", 131: "RFFT2D", 132: "CONV_3D", 133: "IMAG", 134: "REAL", 135: "COMPLEX_ABS",
    136: "HASHTABLE", 137: "HASHTABLE_FIND", 138: "HASHTABLE_IMPORT", 139: "HASHTABLE_SIZE", 140: "REDUCE_ALL",
    141: "CONV_3D_TRANSPOSE", 142: "VAR_HANDLE", 143: "READ_VARIABLE", 144: "ASSIGN_VARIABLE", 145: "BROADCAST_ARGS",
    146: "RANDOM_STANDARD_NORMAL", 147: "BUCKETIZE", 148: "RANDOM_UNIFORM", 149: "MULTINOMIAL", 150: "GELU",
    151: "DYNAMIC_UPDATE_SLICE", 152: "RELU_0_TO_1", 153: "UNSORTED_SEGMENT_PROD", 154: "UNSORTED_SEGMENT_MAX",
    155: "UNSORTED_SEGMENT_SUM", 156: "ATAN2", 157: "UNSORTED_SEGMENT_MIN", 158: "SIGN", 159: "BITCAST",
    160: "BITWISE_XOR", 161: "RIGHT_SHIFT", 162: "STABLEHLO_LOGISTIC", 163: "STABLEHLO_ADD", 164: "STABLEHLO_DIVIDE",
    165: "STABLEHLO_MULTIPLY", 166: "STABLEHLO_MAXIMUM", 167: "STABLEHLO_RESHAPE", 168: "STABLEHLO_CLAMP",
    169: "STABLEHLO_CONCATENATE", 170: "STABLEHLO_BROADCAST_IN_DIM", 171: "STABLEHLO_CONVOLUTION",
    172: "STABLEHLO_SLICE", 173: "STABLEHLO_CUSTOM_CALL", 174: "STABLEHLO_REDUCE", 175: "STABLEHLO_ABS",
    176: "STABLEHLO_AND", 177: "STABLEHLO_COSINE", 178: "STABLEHLO_EXPONENTIAL", 179: "STABLEHLO_FLOOR",
    180: "STABLEHLO_LOG", 181: "STABLEHLO_MINIMUM", 182: "STABLEHLO_NEGATE", 183: "STABLEHLO_OR",
    184: "STABLEHLO_POWER", 185: "STABLEHLO_REMAINDER", 186: "STABLEHLO_RSQRT", 187: "STABLEHLO_SELECT",
    188: "STABLEHLO_SUBTRACT", 189: "STABLEHLO_TANH", 190: "STABLEHLO_SCATTER", 191: "STABLEHLO_COMPARE",
    192: "STABLEHLO_CONVERT", 193: "STABLEHLO_DYNAMIC_SLICE", 194: "STABLEHLO_DYNAMIC_UPDATE_SLICE",
    195: "STABLEHLO_PAD", 196: "STABLEHLO_IOTA", 197: "STABLEHLO_DOT_GENERAL", 198: "STABLEHLO_REDUCE_WINDOW",
    199: "STABLEHLO_SORT", 200: "STABLEHLO_WHILE", 201: "STABLEHLO_GATHER", 202: "STABLEHLO_TRANSPOSE",
    203: "DILATE", 204: "STABLEHLO_RNG_BIT_GENERATOR", 205: "REDUCE_WINDOW", 206: "STABLEHLO_COMPOSITE",
    207: "STABLEHLO_SHIFT_LEFT", 208: "STABLEHLO_CBRT", 209: "STABLEHLO_CASE",
}

#: options table -> (its BuiltinOptions union value, {field: (vtable slot, struct format, default)}),
#: from the same schema; enums are kept as numbers (see PADDINGS, ACTIVATIONS)
OPTIONS: dict[str, tuple[int, dict[str, tuple[int, str, int | bool]]]] = {
    "Conv2DOptions": (1, {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0),
                          "fused_activation_function": (3, "b", 0), "dilation_w_factor": (4, "i", 1),
                          "dilation_h_factor": (5, "i", 1)}),
    "DepthwiseConv2DOptions": (2, {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0),
                                   "depth_multiplier": (3, "i", 0), "fused_activation_function": (4, "b", 0),
                                   "dilation_w_factor": (5, "i", 1), "dilation_h_factor": (6, "i", 1)}),
    "Pool2DOptions": (5, {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0),
                          "filter_width": (3, "i", 0), "filter_height": (4, "i", 0),
                          "fused_activation_function": (5, "b", 0)}),
    "FullyConnectedOptions": (8, {"fused_activation_function": (0, "b", 0), "weights_format": (1, "b", 0),
                                  "keep_num_dims": (2, "?", False)}),
    "ConcatenationOptions": (10, {"axis": (0, "i", 0), "fused_activation_function": (1, "b", 0)}),
    "AddOptions": (11, {"fused_activation_function": (0, "b", 0)}),
    "MulOptions": (21, {"fused_activation_function": (0, "b", 0)}),
    "SubOptions": (28, {"fused_activation_function": (0, "b", 0)}),
    "DivOptions": (29, {"fused_activation_function": (0, "b", 0)}),
    "TransposeConvOptions": (49, {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0),
                                  "fused_activation_function": (3, "b", 0)}),
    "BatchMatMulOptions": (101, {"adj_x": (0, "?", False), "adj_y": (1, "?", False)}),
}
#: builtin operator -> the options table :class:`OperatorInfo` ``.options`` is read from
OPTIONS_OF = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions", "FULLY_CONNECTED": "FullyConnectedOptions",
    "CONCATENATION": "ConcatenationOptions", "ADD": "AddOptions", "MUL": "MulOptions", "SUB": "SubOptions",
    "DIV": "DivOptions", "TRANSPOSE_CONV": "TransposeConvOptions", "BATCH_MATMUL": "BatchMatMulOptions",
}
#: Padding and ActivationFunctionType values -> names
PADDINGS = {0: "SAME", 1: "VALID"}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the file declares it; ``nbytes`` is the size of its constant data (0 if none)."""

    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    dtype: str
    buffer: int
    nbytes: int
    quantization: tuple[tuple[float, ...], tuple[int, ...], int] | None  # scales, zero points, axis


@dataclass(frozen=True)
class OperatorInfo:
    """One operator: its builtin or custom name and tensor indices (-1: optional input absent).

    ``options``: the fields of its builtin options table (see :data:`OPTIONS_OF`), defaults
    filled in; ``None`` when the operator has no such table or the file omits it.
    """

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    custom: bool = False
    options: Mapping[str, int | bool] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class OperatorCode:
    """One entry of the model's operator codes: builtin value (:data:`CUSTOM` for custom ops), name, version."""

    builtin: int
    name: str
    version: int = 1

    @property
    def custom(self) -> bool:
        return self.builtin == CUSTOM


@dataclass(frozen=True)
class SubgraphInfo:
    """One subgraph: its tensors, operators in execution order, and input/output tensor indices."""

    name: str
    tensors: list[TensorInfo]
    operators: list[OperatorInfo]
    input_indices: tuple[int, ...]
    output_indices: tuple[int, ...]

    @property
    def inputs(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.input_indices]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.output_indices]


@dataclass(frozen=True)
class ModelInfo:
    """The structure of a verified model (what ``tflite_schema.read_model`` returns).

    ``buffers`` holds ``(start, size)`` of each buffer's bytes in ``data`` (the file), checked to
    lie inside it; ``(0, 0)`` for a buffer without data.
    """

    version: int
    description: str
    subgraphs: list[SubgraphInfo]
    signatures: dict[str, int] = field(default_factory=dict)  # signature key -> subgraph index
    operator_codes: tuple[OperatorCode, ...] = ()
    buffers: tuple[tuple[int, int], ...] = ()
    data: bytes = field(default=b"", repr=False, compare=False)

    def buffer(self, index: int) -> bytes:
        """The bytes of buffer ``index`` (``b""`` when it has none).

        >>> info.buffer(info.subgraphs[0].tensors[1].buffer)[:4]   # doctest: +SKIP
        b'\\x9a\\x99\\x19>'
        """
        start, size = self.buffers[index]
        return self.data[start : start + size]

    def constant(self, tensor: TensorInfo) -> bytes:
        """The constant data of ``tensor`` (``b""`` for activations and variables).

        >>> np.frombuffer(info.constant(w), w.dtype).reshape(w.shape)   # doctest: +SKIP
        """
        return self.buffer(tensor.buffer) if tensor.nbytes else b""
