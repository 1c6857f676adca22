"""ONNX's own backend node tests, run through :func:`edgekit.load` against any runtime.

The ``onnx==1.22.0`` wheel ships 1,765 single-operator cases under
``onnx/backend/test/data/node/<case>/`` (``model.onnx`` + ``test_data_set_0/input_*.pb`` and
``output_*.pb``); later wheels dropped them. A case passes when every output has the
expected shape and dtype and matches within the case's tolerance (ONNX's defaults:
``rtol=1e-3``, ``atol=1e-7``; ``assert_allclose`` semantics, NaN equal to NaN), exactly as
ONNX's own backend test runner decides.

Outcomes (``status``): ``passed``; ``passed_const`` (passes only once inputs 2.. are turned
into constants, as exported models have them — weights, shapes, axes, scales — see below);
``failed`` (ran, wrong values, shape or dtype);
``unsupported`` (the runtime refused to load or to run it); ``skipped`` (the case has
sequence/optional graph inputs or outputs, which edgekit's numpy-array interface cannot
express: no statement about the runtime). ``crashed`` and ``timeout`` are decided by the
caller (``scripts/measure_op_support.py``), which runs :func:`run_batch` in a subprocess.

Node tests feed every operand at run time (a BatchNormalization's mean and variance, a Reshape's
shape); real models hold those as constants, and some runtimes (MNN's converter, OpenVINO's
constant folding) only handle them so. A case that fails is therefore tried again with inputs
2.. frozen into initializers; passing then gives ``passed_const``.

Each non-expanded case tests one operator; an ``*_expanded`` case runs the same test through
the operator's function body (other operators), so it is evidence about those, not the named op.

Example::

    cases = node_cases()
    results = run_batch("onnxruntime", [c.name for c in cases[:10]])
    results["test_abs"]["status"]            # 'passed'
"""

from __future__ import annotations

import faulthandler
import functools
import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError, UnsupportedModelError
from edgekit.models.model_io import NUMPY_ELEM_TYPES, element_type

__all__ = ["ONNX_VERSION", "NodeCase", "compare_outputs", "data_dir", "node_cases", "run_batch",
           "run_case"]

#: the onnx release whose wheel ships the node test data this project measures with
ONNX_VERSION = "1.22.0"
_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")
#: ONNX element types with a standard numpy dtype (float, uint8, int8, uint16, int16, int32, int64, bool,
#: float16, double, uint32, uint64); strings, bfloat16, float8/4 and int4/2 are not passed by edgekit


@dataclass(frozen=True)
class NodeCase:
    """One backend node test: its folder, the operator it tests and its tolerance."""

    name: str
    path: Path
    op: str  # domain-qualified outside the default domain: "ai.onnx.ml:LabelEncoder"
    expanded: bool  # runs the op's function body instead of the op
    dtype: str = ""  # element type of the first input: "float32", "int8", ...
    rtol: float = 1e-3
    atol: float = 1e-7


def data_dir() -> Path:
    """``onnx/backend/test/data/node`` of the installed onnx wheel; UnsupportedModelError when absent."""
    import onnx

    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    if not folder.is_dir() or not any(folder.glob("*/model.onnx")):
        raise UnsupportedModelError(
            f"onnx {onnx.__version__} ships no backend node test data (looked in {folder}); the cases are in the "
            f"onnx=={ONNX_VERSION} wheel. Install it: `pip install onnx=={ONNX_VERSION}` (the `test` extra pins it)."
        )
    return folder


def _describe(model_path: Path) -> tuple[str, str]:
    """``(tested operator, element type of the first input)`` of a case's model."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    node = graph.node[0]
    op = f"{node.domain}:{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
    inits = {i.name for i in graph.initializer}
    first = next((vi for vi in graph.input if vi.name not in inits), None)
    return op, element_type(first) if first is not None else ""


@functools.cache
def node_cases(folder: Path | None = None) -> tuple[NodeCase, ...]:
    """Every case in ``folder`` (default :func:`data_dir`), sorted by name, with its tested operator."""
    folder = folder or data_dir()
    dirs = sorted(p.parent for p in folder.glob("*/model.onnx"))
    info = {d.name: _describe(d / "model.onnx") for d in dirs}
    cases = []
    for d in dirs:
        base = _EXPANDED.sub("", d.name)
        tol: dict[str, float] = {}
        if (d / "data.json").is_file():
            tol = {k: v for k, v in json.loads((d / "data.json").read_text()).items() if k in ("rtol", "atol")}
        op = info[base][0] if base in info else info[d.name][0]
        cases.append(NodeCase(d.name, d, op, base != d.name, info[d.name][1], **tol))
    return tuple(cases)


def _load_tensors(folder: Path, prefix: str) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    files = sorted(folder.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in files]


def compare_outputs(got: Sequence[np.ndarray], expected: Sequence[np.ndarray], names: Sequence[str],
                    rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``expected`` as ONNX's backend runner requires, else why not."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for name, g, e in zip(names, got, expected):
        g = np.asarray(g)
        if g.shape != e.shape:
            return f"output {name!r} has shape {g.shape}, expected {e.shape}"
        if e.dtype == object:
            if not np.array_equal(g, e):
                return f"output {name!r}: strings differ"
            continue
        if g.dtype != e.dtype:
            return f"output {name!r} has dtype {g.dtype}, expected {e.dtype}"
        try:
            gf, ef = g.astype(np.float64), e.astype(np.float64)
        except (TypeError, ValueError):
            if not np.array_equal(g, e):
                return f"output {name!r}: values differ"
            continue
        both_nan = np.isnan(gf) & np.isnan(ef)
        close = np.isclose(gf, ef, rtol=rtol, atol=atol) | both_nan | (gf == ef)
        if not close.all():
            with np.errstate(invalid="ignore"):
                diff = np.abs(gf - ef)[~close]
            return (f"output {name!r}: {int((~close).sum())} of {e.size} elements off, max |diff| "
                    f"{float(np.nanmax(diff)) if np.isfinite(diff).any() else float('nan'):.3g} "
                    f"(rtol {rtol:g}, atol {atol:g})")
    return None


def _short(exc: BaseException, case_dir: Path) -> str:
    text = " ".join(str(exc).split())
    text = text.replace(str(case_dir), "<case>").replace(str(case_dir.parent), "<node>")
    text = re.sub(r"\[\d\d:\d\d:\d\d\]\s*", "", text)  # converter log timestamps: keep the data stable
    text = re.sub(r"(?:/[\w.+-]+)+/([\w.+-]+)", r"\1", text)  # absolute paths -> file names
    return f"{type(exc).__name__}: {text[:300]}"


def run_case(runtime: str, case_dir: str | Path, rtol: float = 1e-3, atol: float = 1e-7,
             options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one case on ``runtime`` (one thread, fp32): ``{"status", "reason", "seconds"}``."""
    t0 = time.perf_counter()
    case_dir = Path(case_dir)
    res = _run_case(runtime, case_dir, rtol, atol, options)
    res["seconds"] = time.perf_counter() - t0
    return res


def _run_case(runtime: str, case_dir: Path, rtol: float, atol: float,
              options: dict[str, Any] | None) -> dict[str, Any]:
    import onnx

    graph = onnx.load(str(case_dir / "model.onnx"), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    io = [vi for vi in graph.input if vi.name not in inits] + list(graph.output)
    if any(vi.type.WhichOneof("value") != "tensor_type" for vi in io):
        return {"status": "skipped", "reason": "sequence/optional graph input or output: edgekit passes numpy "
                "arrays only"}
    odd = sorted({onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type) for vi in io
                  if vi.type.tensor_type.elem_type not in NUMPY_ELEM_TYPES})
    if odd:
        return {"status": "skipped", "reason": f"graph input/output of type {', '.join(odd)}: edgekit passes "
                "numpy arrays of standard dtypes only"}
    data = case_dir / "test_data_set_0"
    try:
        inputs = _load_tensors(data, "input")
        expected = _load_tensors(data, "output")
    except Exception as exc:  # noqa: BLE001 - a dtype numpy cannot hold is not the runtime's fault
        return {"status": "skipped", "reason": f"test data not representable in numpy ({_short(exc, case_dir)})",
}
    feeds = {graph.input[i].name: x for i, x in enumerate(inputs)}
    res = _attempt(runtime, case_dir / "model.onnx", feeds, expected, graph, rtol, atol, options, case_dir)
    if res["status"] in ("failed", "unsupported") and len(feeds) > 1:
        with tempfile.TemporaryDirectory(prefix="edgekit-case-") as tmp:
            frozen, first = _freeze(case_dir / "model.onnx", feeds, Path(tmp) / "model.onnx")
            again = _attempt(runtime, frozen, first, expected, graph, rtol, atol, options, case_dir)
        if again["status"] == "passed":
            res = {"status": "passed_const", "reason": "passes when inputs 2.. are constants (as in exported "
                   f"models), not when they are fed at run time: {res['reason']}"}
    return res


def _freeze(model: Path, feeds: dict[str, np.ndarray], out: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """The case with every input but the first turned into an initializer of its test value."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    names = list(feeds)
    keep = [vi for vi in proto.graph.input if vi.name not in names[1:]]
    del proto.graph.input[:]
    proto.graph.input.extend(keep)
    proto.graph.initializer.extend(numpy_helper.from_array(feeds[n], n) for n in names[1:])
    proto.ir_version = max(proto.ir_version, 4)  # initializers need not be graph inputs from IR 4 on
    onnx.save(proto, str(out))
    return out, {names[0]: feeds[names[0]]}


def _attempt(runtime: str, path: Path, feeds: dict[str, np.ndarray], expected: list[np.ndarray], graph: Any,
             rtol: float, atol: float, options: dict[str, Any] | None, case_dir: Path) -> dict[str, Any]:
    from edgekit.predictor import load
    from edgekit.registry import get_runtime

    # The batch already runs isolated and attributes a crash to its case: the runtime's own behaviour is
    # measured, without the probe process that OpenCV and MNN loads otherwise get (edgekit.runtimes._probe).
    if "probe" in get_runtime(runtime).options_help:
        options = {"probe": False, **(options or {})}
    stage = "load"
    try:
        with load(path, runtime=runtime, threads=1, precision="fp32", **(options or {})) as model:
            stage = "run"
            out = model.run(feeds)
    except (EdgekitError, Exception) as exc:  # noqa: BLE001 - every refusal is data here
        return {"status": "unsupported", "reason": f"{stage}: {_short(exc, case_dir)}"}
    why = compare_outputs(list(out.values()), expected, [o.name for o in graph.output], rtol, atol)
    return {"status": "failed" if why else "passed", "reason": why or ""}


def run_batch(runtime: str, cases: Sequence[str], *, timeout: float = 60.0, folder: str | None = None,
              options: dict[str, Any] | None = None, memory_mb: int | None = None,
              report: Callable[[Any], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``cases`` (names) in this process; ``report`` gets ``{"start": name}`` and ``{"done": name, ...}``.

    Meant for :func:`edgekit.isolation.run_isolated`: a case that runs past ``timeout``
    seconds ends the process (``faulthandler``'s watchdog works even inside native code), so
    the caller can attribute a hang, like a crash, to the case in flight. ``memory_mb`` caps
    this process's address space (``RLIMIT_AS``): some runtimes try to allocate tens of GB on
    some cases (MNN took 18 GB on one here), which must fail the case, not the machine.
    """
    if memory_mb:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    index = {c.name: c for c in node_cases(Path(folder) if folder else None)}
    results: dict[str, dict[str, Any]] = {}
    for name in cases:
        case = index[name]
        if report:
            report({"start": name})
        faulthandler.dump_traceback_later(timeout, exit=True)
        try:
            res = run_case(runtime, case.path, case.rtol, case.atol, options)
        finally:
            faulthandler.cancel_dump_traceback_later()
        results[name] = res
        if report:
            report({"done": name, **res})
    return results
