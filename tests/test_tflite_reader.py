"""edgekit's one TFLite reader (:mod:`edgekit.models.tflite_schema`) against the ``tflite`` package.

- Static: no module of edgekit imports the unchecked ``tflite`` package to read models; only the
  writer (``models/build.py``) and the test helpers (``edgekit/testing/``) may import it.
- Oracle: the bounds-checked reader sees the same operators, options, tensors and constant data
  as the ``tflite`` package's generated accessors, on the sample model and every conformance case.
- Corrupt files: every caller that now reads through the schema (FLOPs, ``inspect``, the
  emulated graph, weight rounding, MNN's error messages) raises CorruptModelError on a
  truncated or bit-flipped file, never IndexError or struct.error.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.errors import CorruptModelError, UnsupportedModelError
from edgekit.models import tflite_schema, tflite_types
from edgekit.models.sample import sample_model
from edgekit.testing.cases import CASES
from edgekit.testing.tflite_models import OpDef, TensorDef, build_tflite, write_tflite

SRC = Path(edgekit.__file__).parent
#: may import the ``tflite`` package: the writer and the test helpers
TFLITE_ALLOWED = ("models/build.py", "testing/")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` of every import anywhere in ``tree`` (functions included), and import_module("...")."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_only_the_writer_imports_the_tflite_package() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(TFLITE_ALLOWED):
            continue
        for line, module in _imported_modules(ast.parse(path.read_text(), rel)):
            if module == "tflite" or module.startswith("tflite."):
                offenders.append(f"{rel}:{line} imports {module}")
    assert not offenders, ("read TFLite files with edgekit.models.tflite_schema (bounds-checked), not the "
                           "`tflite` package: " + "; ".join(offenders))


def test_rules_and_types_sit_below_the_schema_walk() -> None:
    rules = {m for _, m in _imported_modules(ast.parse((SRC / "models/tflite_rules.py").read_text()))}
    assert "edgekit.models.tflite_schema" not in rules
    types = {m for _, m in _imported_modules(ast.parse((SRC / "models/tflite_types.py").read_text()))}
    assert not any(m.startswith("edgekit") for m in types)


def test_builtin_table_matches_the_tflite_package() -> None:
    from tflite.utils import BUILTIN_OPCODE2NAME

    ours = tflite_types.BUILTIN_OPERATORS
    assert {k: ours.get(k) for k in BUILTIN_OPCODE2NAME} == BUILTIN_OPCODE2NAME
    assert sorted(ours) == list(range(len(ours)))
    assert ours[tflite_types.CUSTOM] == "CUSTOM"
    assert tflite_schema.builtin_name(3) == "CONV_2D" and tflite_schema.builtin_name(10_000) is None


# --- the tflite package as an oracle ----------------------------------------------------------------


def _mixed_model(path: Path) -> Path:
    """Pooling, depthwise conv, fused activations, a reduction, batch matmul and a custom op in one graph."""
    r = np.random.default_rng(0)
    t = [TensorDef("x", [1, 8, 8, 4]), TensorDef("p", [1, 4, 4, 4]),
         TensorDef("dw", [1, 3, 3, 4], data=r.random((1, 3, 3, 4), np.float32)), TensorDef("dwo", [1, 4, 4, 4]),
         TensorDef("a", [1, 4, 4, 4]), TensorDef("m", [1, 1, 1, 4]),
         TensorDef("axes", [2], "int32", data=np.array([1, 2], np.int32)), TensorDef("unused", [2]),
         TensorDef("bm_b", [1, 4, 3], data=r.random((1, 4, 3), np.float32)), TensorDef("r", [1, 4, 4]),
         TensorDef("bmo", [1, 4, 3]), TensorDef("shape", [3], "int32", data=np.array([1, 4, 4], np.int32)),
         TensorDef("half", [4], "float16", data=np.ones(4, np.float16)), TensorDef("co", [1, 1, 1, 4])]
    ops = [OpDef("AVERAGE_POOL_2D", [0], [1], {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                                               "filter_height": 3, "fused_activation_function": "RELU6"}),
           OpDef("DEPTHWISE_CONV_2D", [1, 2, -1], [3], {"padding": "SAME", "stride_w": 1, "stride_h": 1,
                                                        "depth_multiplier": 1, "fused_activation_function": "RELU"}),
           OpDef("ADD", [3, 1], [4], {"fused_activation_function": "RELU"}),
           OpDef("MEAN", [4, 6], [5], {"keep_dims": True}),
           OpDef("RESHAPE", [4, 11], [9]),
           OpDef("BATCH_MATMUL", [9, 8], [10]),
           OpDef("MyCustomOp", [5], [13], custom=True)]
    return write_tflite(t, ops, [0], [10, 13], path)


def _models(tmp: Path) -> list[Path]:
    return [sample_model("tflite"), _mixed_model(tmp / "mixed.tflite"),
            *(build_tflite(case, tmp / f"{case}.tflite") for case in sorted(CASES))]


def _camel(field: str) -> str:
    return "".join(p.capitalize() for p in field.split("_"))


def _oracle_check(path: Path) -> None:
    import tflite
    from tflite.utils import BUILTIN_OPCODE2NAME

    data = path.read_bytes()
    info = tflite_schema.read_file(path)
    model = tflite.Model.GetRootAsModel(data, 0)
    type_names = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    assert info.version == model.Version()
    assert len(info.subgraphs) == model.SubgraphsLength()

    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    expected_codes = []
    for c in codes:
        builtin = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        name = c.CustomCode().decode() if builtin == tflite.BuiltinOperator.CUSTOM else BUILTIN_OPCODE2NAME[builtin]
        expected_codes.append((builtin, name, c.Version()))
    assert [(c.builtin, c.name, c.version) for c in info.operator_codes] == expected_codes

    for g, sg_info in enumerate(info.subgraphs):
        sg = model.Subgraphs(g)
        assert list(sg_info.input_indices) == list(sg.InputsAsNumpy())
        assert list(sg_info.output_indices) == list(sg.OutputsAsNumpy())
        assert len(sg_info.tensors) == sg.TensorsLength()
        for i, t in enumerate(sg_info.tensors):
            raw = sg.Tensors(i)
            assert t.name == raw.Name().decode()
            assert t.shape == (tuple(int(d) for d in raw.ShapeAsNumpy()) if raw.ShapeLength() else ())
            sig = tuple(int(d) for d in raw.ShapeSignatureAsNumpy()) if raw.ShapeSignatureLength() else None
            assert (t.shape_signature or None) == sig
            assert t.dtype == type_names[raw.Type()]
            assert t.buffer == raw.Buffer()
            buf = model.Buffers(raw.Buffer())
            raw_data = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
            assert info.buffer(t.buffer) == raw_data
            assert info.constant(t) == (raw_data if not raw.IsVariable() else b"")
            if raw_data and t.dtype in ("float32", "float16", "int32", "int8"):  # the data as numbers, too
                arr = np.frombuffer(info.constant(t), t.dtype).reshape(t.shape)
                assert np.array_equal(arr, np.frombuffer(raw_data, t.dtype).reshape(t.shape))
            q = raw.Quantization()
            scales = tuple(q.ScaleAsNumpy()) if q is not None and q.ScaleLength() else ()
            if t.quantization is None:
                assert not scales
            else:
                assert t.quantization[0] == tuple(float(s) for s in scales)
                assert list(t.quantization[1]) == list(q.ZeroPointAsNumpy() if q.ZeroPointLength() else [])
                assert t.quantization[2] == q.QuantizedDimension()
        assert len(sg_info.operators) == sg.OperatorsLength()
        for i, op in enumerate(sg_info.operators):
            raw = sg.Operators(i)
            builtin, name, _ = expected_codes[raw.OpcodeIndex()]
            assert (op.name, op.custom) == (name, builtin == tflite.BuiltinOperator.CUSTOM)
            assert list(op.inputs) == (list(raw.InputsAsNumpy()) if raw.InputsLength() else [])
            assert list(op.outputs) == (list(raw.OutputsAsNumpy()) if raw.OutputsLength() else [])
            table = tflite_types.OPTIONS_OF.get(op.name)
            if table is None or raw.BuiltinOptions() is None:
                assert op.options is None
                continue
            assert raw.BuiltinOptionsType() == tflite_types.OPTIONS[table][0]
            opts = getattr(tflite, table)()
            opts.Init(raw.BuiltinOptions().Bytes, raw.BuiltinOptions().Pos)
            assert op.options == {f: getattr(opts, _camel(f))() for f in tflite_types.OPTIONS[table][1]}, op


def test_reader_agrees_with_the_tflite_package(tmp_path: Path) -> None:
    models = _models(tmp_path)
    assert len(models) == len(CASES) + 2
    for path in models:
        _oracle_check(path)


def test_reader_reads_options_and_custom_ops(tmp_path: Path) -> None:
    info = tflite_schema.read_file(_mixed_model(tmp_path / "mixed.tflite"))
    ops = {op.name: op for op in info.subgraphs[0].operators}
    pool = ops["AVERAGE_POOL_2D"].options
    assert pool is not None and (pool["filter_width"], pool["filter_height"], pool["stride_w"]) == (2, 3, 2)
    assert tflite_types.PADDINGS[pool["padding"]] == "VALID"
    assert tflite_types.ACTIVATIONS[pool["fused_activation_function"]] == "RELU6"
    assert ops["BATCH_MATMUL"].options is None and ops["MEAN"].options is None
    assert ops["MyCustomOp"].custom and not ops["ADD"].custom
    assert [c.name for c in info.operator_codes if c.custom] == ["MyCustomOp"]


def test_callers_read_through_the_schema(tmp_path: Path) -> None:
    from edgekit.emulation.graph import tflite_graph
    from edgekit.models.flops import count_tflite
    from edgekit.runtimes.mnn_convert import _tflite_custom_ops
    from edgekit.tools.inspect import inspect_model

    path = _mixed_model(tmp_path / "mixed.tflite")
    fc = count_tflite(path)
    by_name = {op.name: op for op in fc.ops}
    assert by_name["p"].flops == 16 * 4 * 6 + 64  # kernel area per output element + fused RELU6
    assert by_name["co"].type == "CUSTOM:MyCustomOp" and fc.uncounted == ("CUSTOM:MyCustomOp",)
    s = inspect_model(path)
    assert s.custom_ops == ["MyCustomOp"] and s.operators["MyCustomOp"] == 1
    g = tflite_graph(path)
    assert [n.op for n in g.nodes][-1] == "CUSTOM:MyCustomOp"
    assert g.tensors["dw"].const and not g.tensors["x"].const and not g.tensors["unused"].const
    assert _tflite_custom_ops(path) == ["MyCustomOp"]


# --- corrupt files through the new code paths --------------------------------------------------------


def _readers() -> dict[str, Callable[[Path], object]]:
    from edgekit.emulation.graph import tflite_graph
    from edgekit.emulation.precision import round_tflite_weights
    from edgekit.models.flops import count_tflite
    from edgekit.models.formats import ModelFile
    from edgekit.models.precision import _tflite as precision_tflite
    from edgekit.tools.inspect import _tflite as inspect_tflite

    return {
        "flops": count_tflite,
        "graph": tflite_graph,
        "round": lambda p: round_tflite_weights(p, p.with_suffix(".out"), {"w", "dw"}, "fp16"),
        "inspect": lambda p: inspect_tflite(ModelFile(p, "tflite")),
        "precision": lambda p: precision_tflite(ModelFile(p, "tflite")),
    }


def _mutants(data: bytes) -> list[bytes]:
    """Truncations at many lengths and single-byte corruptions across the whole file (deterministic)."""
    cuts = [data[:n] for n in (0, 3, 7, 8, 12, 16, 33, len(data) // 3, len(data) // 2, len(data) - 1)]
    flips = []
    for pos in range(0, len(data), max(1, len(data) // 300)):
        for value in (0x00, 0xFF, data[pos] ^ 0x80):
            mutant = bytearray(data)
            mutant[pos] = value
            flips.append(bytes(mutant))
    return cuts + flips


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # flipped weights, rounded
@pytest.mark.parametrize("case", ["conv_relu", "int8_fc"])
def test_corrupt_files_raise_corrupt_model_error(tmp_path: Path, case: str) -> None:
    from edgekit.runtimes.mnn_convert import _tflite_custom_ops

    data = build_tflite(case, tmp_path / "ok.tflite").read_bytes()
    readers = _readers()
    path = tmp_path / "bad.tflite"
    refused = 0
    for i, mutant in enumerate(_mutants(data)):
        path.write_bytes(mutant)
        try:
            tflite_schema.verify(mutant)
        except tflite_schema.SchemaViolation:
            refused += 1
            for name, read in readers.items():
                try:
                    read(path)
                except CorruptModelError:
                    continue
                except Exception as exc:  # the point of the test: nothing else escapes
                    pytest.fail(f"mutant {i}: {name} raised {type(exc).__name__}, not CorruptModelError: {exc}")
                pytest.fail(f"mutant {i}: {name} read a file the schema refuses")
            assert _tflite_custom_ops(path) == []
            continue
        for name, read in readers.items():  # a mutant the schema accepts reads without a crash
            try:
                read(path)
            except (CorruptModelError, UnsupportedModelError):
                pass
            except Exception as exc:  # the point of the test: nothing else escapes
                pytest.fail(f"mutant {i}: {name} raised {type(exc).__name__}: {exc}")
    assert refused > 10


def test_truncated_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    from edgekit.models.flops import count_tflite

    path = tmp_path / "cut.tflite"
    path.write_bytes(sample_model("tflite").read_bytes()[:5000])
    with pytest.raises(CorruptModelError, match=r"cut\.tflite: not a valid TFLite model \(.*\)\. .*re-download"):
        count_tflite(path)
    with pytest.raises(tflite_schema.SchemaViolation, match="outside the 5000-byte file"):
        tflite_schema.read_model(path.read_bytes())
