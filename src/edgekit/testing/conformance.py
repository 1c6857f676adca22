"""The conformance suite every runtime adapter passes — shipped, so plugin authors run it too.

A plugin's test module needs two lines::

    from edgekit.testing.conformance import RuntimeConformance

    class TestMyRuntime(RuntimeConformance):
        runtime = "myrt"

``pytest -v`` then shows one test per case and format, ``test_case[conv_relu/onnx]``: the
class's ``pytest_generate_tests`` (pytest calls it on test classes, subclasses included)
crosses :data:`~edgekit.testing.cases.CASES` with the formats the runtime reads
(``Runtime.formats``: natively, then by converting). Each test builds the case in that format
(:data:`BUILDERS`), runs it through :func:`edgekit.load` and compares with the numpy
reference: output names and order, dtypes, shapes and values within the case's tolerance,
called with a dict, a list and a single array; dynamic cases run batches 1, 5, 1.

Three outcomes besides a pass, all decided by data:

* a case needs a capability (``Case.requires``) the runtime does not declare in
  ``Runtime.capabilities``: SKIP, e.g. "opencv does not declare 'dynamic_shapes'";
* a known failure, ``[conformance.known_failures]`` in ``runtimes/<name>.toml`` (or
  ``default_info.conformance`` of a plugin)::

      "int8_fc/tflite" = { error = "UnsupportedModelError", reason = "no int8 FULLY_CONNECTED kernel" }

  ``error`` is an :mod:`edgekit.errors` class name, or ``"AssertionError"`` for wrong names,
  dtypes, shapes or values. The test expects exactly that class (XFAIL with the reason); another
  error, or a pass ("passes now; remove it from runtimes/<name>.toml"), FAILS it. A known failure
  is checked even where a capability is missing: the entry is the more specific record;
* anything else that raises: FAIL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from edgekit.catalog import runtime_info
from edgekit.errors import ConfigError, UnknownFormatError
from edgekit.models.formats import FORMATS
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES, Case

__all__ = ["BUILDERS", "KnownFailure", "RuntimeConformance", "build_model", "check_case", "conformance_params",
           "known_failures"]


# --- building the case models --------------------------------------------------------------------

def _build_onnx(case: str, path: Path, folder: Path) -> Path:
    from edgekit.testing.onnx_models import build_onnx

    return build_onnx(case, path)


def _build_tflite(case: str, path: Path, folder: Path) -> Path:
    from edgekit.testing.tflite_models import build_tflite

    return build_tflite(case, path)


def _build_openvino(case: str, path: Path, folder: Path) -> Path:
    from edgekit.runtimes.openvino import import_openvino

    ov = import_openvino()

    onnx_path = build_model(case, "onnx", folder)
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(path), compress_to_fp16=False)
    return path


def _build_mnn(case: str, path: Path, folder: Path) -> Path:
    from edgekit.runtimes.mnn import convert_to_mnn

    convert_to_mnn(build_model(case, "onnx", folder), path)
    return path


def _build_ncnn(case: str, path: Path, folder: Path) -> Path:
    """ncnn's .param + .bin, converted from the ONNX twin with pnnx (fetched from its pinned wheel once)."""
    from edgekit.models.formats import open_model
    from edgekit.runtimes.ncnn_convert import convert_to_ncnn, fetch_pnnx

    fetch_pnnx()  # a no-op once the verified binary is in the cache
    convert_to_ncnn(open_model(build_model(case, "onnx", folder)), path, path.with_suffix(".bin"))
    return path


#: format -> ``builder(case, path, folder) -> path``: writes case ``case`` to ``path`` (ONNX and
#: TFLite by edgekit; OpenVINO IR, MNN and ncnn converted from the ONNX twin, built in ``folder``).
#: A plugin whose runtime reads another format adds its builder here before the suite runs.
BUILDERS: dict[str, Callable[[str, Path, Path], Path]] = {
    "onnx": _build_onnx,
    "tflite": _build_tflite,
    "openvino": _build_openvino,
    "mnn": _build_mnn,
    "ncnn": _build_ncnn,
}


def build_model(case: str, fmt: str, folder: Path) -> Path:
    """Write case ``case`` in format ``fmt`` under ``folder`` (cached by file name).

    >>> build_model("conv_relu", "onnx", Path("models"))      # doctest: +SKIP
    PosixPath('models/conv_relu.onnx')
    """
    if fmt not in BUILDERS:
        raise UnknownFormatError(
            f"the conformance suite cannot build {fmt!r} models; it builds {sorted(BUILDERS)}. A runtime that reads "
            f"another format adds a builder: edgekit.testing.conformance.BUILDERS[{fmt!r}] = "
            "builder(case, path, folder) -> path (build_model(case, 'onnx', folder) gives the ONNX twin to convert)."
        )
    if case not in CASES:
        raise KeyError(f"no conformance case {case!r}; cases: {sorted(CASES)}")
    folder.mkdir(parents=True, exist_ok=True)
    suffix = FORMATS[fmt][0] if fmt in FORMATS else f".{fmt}"
    path = folder / f"{case}{suffix}"
    if path.exists():
        return path
    return BUILDERS[fmt](case, path, folder)


# --- known failures: data with the expected error --------------------------------------------

@dataclass(frozen=True)
class KnownFailure:
    """A recorded failure of one ``case/format`` on one runtime: the error it raises, and why."""

    key: str  # "case/format"
    error: type[Exception]
    reason: str

    @property
    def error_name(self) -> str:
        return self.error.__name__


def _error_class(name: Any, where: str) -> type[Exception]:
    import edgekit.errors as errors

    if name == "AssertionError":
        return AssertionError
    if isinstance(name, str) and name in errors.__all__:
        return getattr(errors, name)
    raise ConfigError(
        f"{where}: key 'error' expected an edgekit error class name ({', '.join(sorted(errors.__all__))}) or "
        f"'AssertionError' (wrong names, dtypes, shapes or values), got {name!r}. Any other exception is a bug in the "
        "adapter to fix, not a failure to record."
    )


def _source(runtime: str) -> str:
    """Where ``runtime``'s known failures live, for messages."""
    if runtime_info(runtime) is not None:
        return f"runtimes/{runtime}.toml"
    return f"the `conformance` table of {type(get_runtime(runtime)).__name__}.default_info"


def known_failures(runtime: str) -> dict[str, KnownFailure]:
    """``{"case/format": KnownFailure}`` recorded for ``runtime`` (``[conformance.known_failures]``).

    Raises ConfigError for an entry that is not ``{ error = "<class>", reason = "..." }``.

    >>> known_failures("mnn")["dynamic_batch/mnn"].error_name      # doctest: +SKIP
    'InputError'
    """
    table = get_runtime(runtime).info.conformance.get("known_failures", {})
    where = f"{_source(runtime)} [conformance.known_failures]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of \"case/format\" = {{ error = ..., reason = ... }}, "
                          f"got {type(table).__name__}.")
    out = {}
    for key, entry in table.items():
        at = f"{where} {key!r}"
        if not isinstance(entry, dict) or set(entry) != {"error", "reason"} or not isinstance(entry["reason"], str):
            raise ConfigError(
                f"{at}: expected a table {{ error = \"UnsupportedModelError\", reason = \"why\" }} naming the error "
                f"class the case raises and why, got {entry!r}."
            )
        out[key] = KnownFailure(key, _error_class(entry["error"], at), entry["reason"])
    return out


def conformance_params(runtimes: list[str]) -> list[tuple[str, str, str]]:
    """``(runtime, case, format)`` triples: every case in every format each runtime reads."""
    return [(rt, case, fmt) for rt in runtimes for fmt in get_runtime(rt).formats for case in CASES]


# --- one case --------------------------------------------------------------------------------

def _compare(case: Case, fmt: str, out: dict[str, np.ndarray], ref: dict[str, np.ndarray], where: str) -> None:
    assert list(out) == list(ref), f"{where}: output names/order {list(out)}, expected {list(ref)}"
    for name in ref:
        got, exp = out[name], ref[name]
        assert got.dtype == exp.dtype, f"{where}: output {name!r} dtype {got.dtype}, expected {exp.dtype}"
        assert got.shape == exp.shape, f"{where}: output {name!r} shape {got.shape}, expected {exp.shape}"
        diff = np.abs(got.astype(np.float64) - exp.astype(np.float64))
        bound = case.atol + case.rtol * np.abs(exp.astype(np.float64))
        assert (diff <= bound).all(), (
            f"{where}: output {name!r} max abs error {diff.max():.3g} exceeds atol={case.atol} rtol={case.rtol}"
        )


def check_case(runtime: str, case_name: str, fmt: str, folder: Path, **load_options: Any) -> None:
    """Run one conformance case; raise AssertionError describing the first mismatch.

    >>> check_case("onnxruntime", "conv_relu", "onnx", Path("models"))     # doctest: +SKIP
    """
    from edgekit.predictor import load

    case = CASES[case_name]
    path = build_model(case_name, fmt, folder)
    where = f"{runtime}/{case_name}/{fmt}"
    with load(path, runtime=runtime, **load_options) as m:
        assert m.placement.runtime == runtime, f"{where}: placed on {m.placement.runtime}"
        assert [s.name for s in m.inputs] == list(case.onnx_inputs), f"{where}: inputs {m.inputs}"
        batches = (1, 5, 1) if case.dynamic_batch else (1,)
        for batch in batches:
            feeds = case.inputs(fmt, batch=batch)
            ref = case.reference(fmt, feeds)
            _compare(case, fmt, m.run(feeds), ref, f"{where} (dict, batch {batch})")
            _compare(case, fmt, m.run(list(feeds.values())), ref, f"{where} (list)")
            if len(feeds) == 1:
                _compare(case, fmt, m(next(iter(feeds.values()))), ref, f"{where} (one array)")


# --- the pytest class --------------------------------------------------------------------------

class RuntimeConformance:
    """Subclass with ``runtime = "<name>"`` in a pytest module: one test per case and format.

    >>> class TestMyRuntime(RuntimeConformance):     # doctest: +SKIP
    ...     runtime = "myrt"
    """

    runtime: str = ""

    def pytest_generate_tests(self, metafunc: Any) -> None:
        """Parametrize ``test_case`` with every (case, format) of ``self.runtime`` (pytest calls this per class)."""
        if "conformance_case" not in metafunc.fixturenames:
            return
        if not self.runtime:
            raise ConfigError(f"{type(self).__name__} subclasses RuntimeConformance without naming its runtime: "
                              "set the class attribute runtime = 'myrt'.")
        params = [(case, fmt) for fmt in get_runtime(self.runtime).formats for case in CASES]
        metafunc.parametrize(("conformance_case", "conformance_format"), params,
                             ids=[f"{case}/{fmt}" for case, fmt in params])

    def test_case(self, conformance_case: str, conformance_format: str, tmp_path_factory: Any) -> None:
        import pytest

        rt = get_runtime(self.runtime)
        if not rt.is_installed():
            pytest.fail(f"runtime {self.runtime!r} is not installed: {rt.info.install_hint}", pytrace=False)
        case, fmt = CASES[conformance_case], conformance_format
        key = f"{case.name}/{fmt}"
        folder = tmp_path_factory.getbasetemp() / "edgekit-conformance-models" / fmt  # built once per session
        known = known_failures(self.runtime).get(key)
        if known is not None:
            _expect_known_failure(known, self.runtime, lambda: check_case(self.runtime, case.name, fmt, folder))
        missing = [c for c in case.requires if not rt.has(c)]
        if missing:
            pytest.skip(f"{self.runtime} does not declare {missing[0]!r}")
        check_case(self.runtime, case.name, fmt, folder)

    def test_known_failures_name_cases_it_runs(self) -> None:
        """Each known failure names a case and a format of this runtime, and an error class (else it is stale)."""
        formats = get_runtime(self.runtime).formats
        for key in known_failures(self.runtime):
            case, _, fmt = key.partition("/")
            assert case in CASES and fmt in formats, (
                f"known failure {key!r} in {_source(self.runtime)} is not a case/format this suite runs "
                f"(cases {sorted(CASES)}, formats {list(formats)}); fix or remove it."
            )


def _expect_known_failure(known: KnownFailure, runtime: str, run: Callable[[], None]) -> NoReturn:
    """Run ``run``; XFAIL when it raises exactly ``known.error``, FAIL when it raises another error or passes."""
    import pytest

    try:
        run()
    except Exception as exc:  # the class is compared below
        if type(exc) is not known.error:
            raise AssertionError(
                f"{runtime} {known.key}: known failure expects {known.error_name} ({known.reason}), but it raised "
                f"{type(exc).__name__}: {exc}. Fix the adapter, or update the entry in {_source(runtime)}."
            ) from exc
        pytest.xfail(f"known failure, {known.error_name}: {known.reason}")
    pytest.fail(f"{runtime} {known.key} passes now; remove it from {_source(runtime)}", pytrace=False)
