"""Property-based inputs, every runtime: a correct result or a typed error, never a crash or a wrong number.

Hypothesis draws a conformance model and a way to feed it: valid arrays (also non-contiguous,
read-only, Fortran-ordered, as Python lists, as keyword arguments, other lossless dtypes, any
dynamic batch), NaN/Inf, wrong dtypes, shapes, ranks, names and counts, scalars, strings.
Expected: a valid feed gives the numpy reference; a wrong one raises InputError; NaN/Inf give
outputs whose every element is the reference's where that is finite (or itself not finite):
never a wrong finite number. Seeded (``derandomize``), a few examples per runtime for CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgekit
from edgekit.errors import EdgekitError, InputError
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import build_model, known_failures

RUNTIMES = [rt for rt in ("onnxruntime", "litert", "openvino", "opencv", "mnn", "emulated")
            if get_runtime(rt).is_installed()]
PAIRS = [(rt, fmt) for rt in RUNTIMES for fmt in ("onnx", "tflite", "mnn")
         if get_runtime(rt).can_read(fmt) and (fmt != "mnn" or rt == "mnn")]
KINDS = ("valid", "valid", "noncontiguous", "readonly", "fortran", "list", "kwargs", "float16", "float64",
         "int16", "bool", "nan_inf", "shape", "rank", "scalar", "wrong_name", "extra_name", "count", "strings")
EXAMPLES = 25
#: measured deviations on NaN/Inf inputs (shape and dtype still checked): pair -> what happens
NONFINITE_DEVIATIONS = {
    ("opencv", "onnx"): "OpenCV 5.0's new DNN engine (engine='auto' on ONNX) returns +3.4e38 where a Conv "
                        "output of -inf goes through its fused ReLU (0 in the classic engine and every other runtime)",
}


@pytest.fixture(scope="module")
def predictors(tmp_path_factory: pytest.TempPathFactory, fuzz_env) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("input-models")
    loaded: dict[tuple[str, str, str], Any] = {}

    def get(rt: str, fmt: str, case: str) -> Any:
        if (rt, fmt, case) not in loaded:
            loaded[rt, fmt, case] = edgekit.load(build_model(case, fmt, folder / fmt), runtime=rt, threads=1)
        return loaded[rt, fmt, case]

    yield get
    for m in loaded.values():
        m.close()


def _cases(rt: str, fmt: str) -> list[str]:
    skip = known_failures(rt)
    return [c for c in CASES if f"{c}/{fmt}" not in skip]


def _feed(kind: str, m: Any, base: dict[str, np.ndarray], draw: Any) -> tuple[Any, dict[str, Any], str]:
    """``(how to call run, values the reference sees, expectation: ok|error|nonfinite|any)``."""
    specs = m.inputs
    first = specs[0]
    floats = first.dtype.kind == "f"
    if kind in ("valid", "noncontiguous", "readonly", "fortran"):
        feeds = {}
        for k, v in base.items():
            if kind == "noncontiguous":
                w = np.repeat(v, 2, axis=-1)[..., ::2]
                assert not w.flags.c_contiguous or v.shape[-1] == 1
            elif kind == "readonly":
                w = v.copy()
                w.setflags(write=False)
            elif kind == "fortran":
                w = np.asfortranarray(v)
            else:
                w = v
            feeds[k] = w
        return ("dict", feeds), base, "ok"
    if kind == "list":  # one nested list is the tensor itself; several inputs: a list of nested lists
        lists = [v.tolist() for v in base.values()]
        return (("single", lists[0]) if len(lists) == 1 else ("list", lists)), base, "ok"
    if kind == "kwargs":
        return ("kwargs", base), base, "ok"
    if kind in ("float16", "float64", "int16", "bool"):
        target = np.dtype(kind if kind != "bool" else np.bool_)
        cast = {k: (v > 0 if kind == "bool" else np.clip(v, -100, 100).astype(target)) for k, v in base.items()}
        ok = all(np.can_cast(target, s.dtype, "safe") for s in specs)
        seen = {k: v.astype(s.dtype) for (k, v), s in zip(cast.items(), specs)}
        return ("dict", cast), seen, "ok" if ok else "error"
    if kind == "nan_inf":
        if not floats:
            return ("dict", {k: v.astype(np.float32) for k, v in base.items()}), base, "error"
        feeds = {k: v.copy() for k, v in base.items()}
        name = draw(st.sampled_from(sorted(feeds)))
        flat = feeds[name].reshape(-1)
        for _ in range(draw(st.integers(1, 3))):
            flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return ("dict", feeds), feeds, "nonfinite"
    if kind == "shape":
        arr = base[first.name]
        axis = draw(st.integers(0, arr.ndim - 1))
        size = draw(st.integers(0, 9).filter(lambda n: n != arr.shape[axis]))
        shape = list(arr.shape)
        shape[axis] = size
        new = np.zeros(shape, arr.dtype)
        fits = first.accepts(tuple(shape))
        feeds = dict(base, **{first.name: new})
        if fits and size == 0:
            return ("dict", feeds), feeds, "any"  # an empty batch: a typed error or an empty result
        return ("dict", feeds), feeds, "ok" if fits else "error"
    if kind == "rank":
        arr = base[first.name]
        new = arr[None] if draw(st.booleans()) else arr.reshape(-1)
        return ("dict", dict(base, **{first.name: new})), base, "error"
    if kind == "scalar":
        return ("single", draw(st.sampled_from([1.5, 3, True, np.float32(2.0)]))), base, "error"
    if kind == "wrong_name":
        feeds = dict(base)
        feeds[first.name + "_typo"] = feeds.pop(first.name)
        return ("dict", feeds), base, "error"
    if kind == "extra_name":
        return ("dict", dict(base, extra=base[first.name])), base, "error"
    if kind == "count":
        arrays = list(base.values())
        arrays = arrays + arrays[:1] if draw(st.booleans()) or len(arrays) == 1 else arrays[:-1]
        return ("list", arrays), base, "error"
    return ("single" if len(specs) == 1 else "dict",
            np.full(base[first.name].shape, "x") if len(specs) == 1 else {s.name: "x" for s in specs}), base, "error"


def _call(m: Any, how: tuple[str, Any]) -> dict[str, np.ndarray]:
    style, value = how
    if style == "kwargs":
        return m.run(**value)
    return m.run(value)


def _check(case: Any, fmt: str, out: dict[str, np.ndarray], seen: dict[str, np.ndarray], expect: str) -> None:
    with np.errstate(all="ignore"):
        ref = case.reference(fmt, {k: np.asarray(v) for k, v in seen.items()})
    assert list(out) == list(ref), (list(out), list(ref))
    for name, exp in ref.items():
        got = out[name]
        assert got.dtype == exp.dtype and got.shape == exp.shape, (name, got.dtype, got.shape, exp.dtype, exp.shape)
        g, e = got.astype(np.float64), exp.astype(np.float64)
        with np.errstate(all="ignore"):
            close = np.abs(g - e) <= case.atol + case.rtol * np.abs(e)
        if expect == "ok":
            assert close.all(), f"{name}: max error {np.abs(g - e).max()}"
        elif expect == "nonfinite":  # NaN/Inf fed: where the reference is finite, the output is right or not finite
            wrong = np.isfinite(e) & np.isfinite(g) & ~close
            assert not wrong.any(), f"{name}: {int(wrong.sum())} finite outputs differ from a finite reference"


@pytest.mark.parametrize(("rt", "fmt"), PAIRS, ids=[f"{r}-{f}" for r, f in PAIRS])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_inputs_give_the_reference_or_a_typed_error(rt: str, fmt: str, predictors, data: Any) -> None:
    case_name = data.draw(st.sampled_from(_cases(rt, fmt)), label="case")
    case = CASES[case_name]
    m = predictors(rt, fmt, case_name)
    batch = data.draw(st.integers(1, 4), label="batch") if case.dynamic_batch and fmt != "mnn" else 1
    base = case.inputs(fmt, batch=batch, seed=data.draw(st.integers(0, 999), label="seed"))
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    how, seen, expect = _feed(kind, m, base, data.draw)
    try:
        out = _call(m, how)
    except InputError:
        assert expect in ("error", "any"), f"{kind}: a valid feed was refused"
        return
    except EdgekitError:
        assert expect == "any", f"{kind}: only an empty batch may fail at run time"
        return
    assert expect != "error", f"{kind}: an invalid feed was accepted: {how[0]}"
    if expect == "any" and all(v.size == 0 for v in out.values()):
        return
    _check(case, fmt, out, seen, "shape-only" if expect == "nonfinite" and (rt, fmt) in NONFINITE_DEVIATIONS else expect)


SHAPES = [(1, 3, h, w) for h in (1, 2, 8, 16, 24, 32, 33, 48) for w in (1, 8, 32, 192)]


@pytest.mark.slow
@pytest.mark.parametrize("rt", [rt for rt in RUNTIMES if rt != "emulated" and get_runtime(rt).can_read("onnx")])
def test_dynamic_image_sizes_of_a_real_model_never_damage_the_process(rt: str, build, fuzz_env) -> None:
    """PP-OCR cls (dynamic H, W) on 32 sizes, then a canary model, in a worker: OpenVINO 2026.4 corrupted its heap
    on sizes its shape inference rejects (crashing a later call) until edgekit checked new shapes."""
    from edgekit.isolation import IsolatedFailure, run_isolated
    from edgekit.testing.real_models import fetch

    try:
        path = fetch("ppocr-cls")
    except Exception as exc:
        pytest.skip(f"PP-OCR cls not available: {exc}")
    out = run_isolated("edgekit.testing.fuzz:sweep_shapes", (str(path), rt, SHAPES, str(build("conv_relu", "onnx"))),
                       timeout=300, env=fuzz_env, strict_exit=True)
    assert not isinstance(out, IsolatedFailure), f"{rt}: {out.describe()}\n{out.output_tail[-1500:]}"
    assert "ok" in out and set(out) <= {"ok", "InputError", "InferenceError"}, out
