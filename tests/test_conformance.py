"""Every built-in runtime passes the shipped conformance suite, in every format it reads.

Each class below is what a plugin author writes: a ``RuntimeConformance`` subclass naming the
runtime, nothing else; ``pytest -v`` shows ``test_case[<case>/<format>]`` for each. CI installs
every runtime, so nothing here is skipped for a missing library there: a missing runtime fails.
Skips are capabilities a runtime does not declare; known failures are data in runtimes/*.toml.
"""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from edgekit.errors import ConfigError, InputError, UnknownFormatError
from edgekit.registry import get_runtime
from edgekit.runtime import CAPABILITIES
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import BUILDERS, RuntimeConformance, build_model, conformance_params, known_failures

pytest_plugins = ["pytester"]


class TestOnnxRuntime(RuntimeConformance):
    runtime = "onnxruntime"


class TestLiteRT(RuntimeConformance):
    runtime = "litert"


class TestOpenVINO(RuntimeConformance):
    runtime = "openvino"


class TestOpenCV(RuntimeConformance):
    runtime = "opencv"


class TestMNN(RuntimeConformance):
    runtime = "mnn"


@pytest.fixture(scope="module")
def pnnx() -> None:
    """ncnn reads ONNX through pnnx: fetched once from its pinned wheel, like the real models."""
    from edgekit.runtimes.ncnn_convert import fetch_pnnx

    fetch_pnnx()


@pytest.mark.usefixtures("pnnx")
class TestNCNN(RuntimeConformance):
    runtime = "ncnn"


class TestEmulated(RuntimeConformance):
    runtime = "emulated"


class TestReference(RuntimeConformance):
    runtime = "reference"


def test_every_builtin_runtime_has_a_conformance_class() -> None:
    builtins = {ep.name for ep in importlib.metadata.entry_points(group="edgekit.runtimes")
                if ep.value.startswith("edgekit.")}
    tested = {cls.runtime for cls in RuntimeConformance.__subclasses__() if cls.__module__ == __name__}
    assert builtins == tested, f"add a RuntimeConformance subclass here for: {sorted(builtins - tested)}"


def test_cases_declare_known_capabilities() -> None:
    assert CASES["dynamic_batch"].requires == ("dynamic_shapes",)
    assert CASES["two_in_two_out"].requires == ("multi_output",)
    assert CASES["int8_fc"].requires == ("int8",)
    assert all(set(c.requires) <= set(CAPABILITIES) for c in CASES.values())


def test_params_come_from_the_runtime_formats() -> None:
    params = conformance_params(["openvino", "reference"])
    assert {fmt for rt, _, fmt in params if rt == "openvino"} == set(get_runtime("openvino").formats)
    assert {fmt for rt, _, fmt in params if rt == "reference"} == {"onnx"}
    assert len(params) == len(CASES) * (len(get_runtime("openvino").formats) + 1)


def test_build_model_refuses_a_format_it_cannot_build(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match=r"cannot build 'tengine' models; it builds \['mnn', 'ncnn', "
                                                 r"'onnx', 'openvino', 'tflite'\]"):
        build_model("conv_relu", "tengine", tmp_path)
    assert sorted(BUILDERS) == ["mnn", "ncnn", "onnx", "openvino", "tflite"]


def test_known_failures_carry_their_error_class() -> None:
    mnn = known_failures("mnn")
    assert mnn["dynamic_batch/mnn"].error is InputError
    assert mnn["int8_fc/onnx"].error is AssertionError
    assert all(kf.reason for kf in mnn.values())


# --- the suite's own behaviour, as a plugin author meets it (a separate pytest process) ------------

_PLUGIN_MODULE = '''
import numpy as np

from edgekit.registry import get_runtime, register_runtime
from edgekit.runtime import Runtime, RuntimeInfo
from edgekit.testing.conformance import RuntimeConformance


class Plugin(Runtime):
    """Delegates to the reference runtime; reads ONNX; declares {caps}."""

    name = "plugrt"
    capabilities = frozenset({caps})
    default_info = RuntimeInfo("plugrt", "Plugin", "numpy", ("numpy",), "plugrt", ("onnx",),
                               conformance={{"known_failures": {known}}})

    def accelerators(self):
        return ["cpu"]

    def _open(self, model, *, accelerator, threads, precision, options, profile_ops):
        return get_runtime("reference").open(model)


register_runtime(Plugin)


class TestPlugin(RuntimeConformance):
    runtime = "plugrt"
'''


def _run_plugin_suite(pytester: pytest.Pytester, caps: set[str], known: dict) -> pytest.RunResult:
    pytester.makepyfile(test_plugin=textwrap.dedent(_PLUGIN_MODULE).format(caps=caps or "()", known=known))
    return pytester.runpytest_subprocess("-v", "-rsx", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")


def test_a_plugin_subclass_gets_one_test_per_case_and_format(pytester: pytest.Pytester) -> None:
    res = _run_plugin_suite(pytester, {"multi_output", "dynamic_shapes"}, {})
    for case in CASES:
        res.stdout.fnmatch_lines([f"*TestPlugin::test_case?{case}/onnx? *"])
    res.stdout.fnmatch_lines(["*test_case?int8_fc/onnx? SKIPPED*", "SKIPPED*: plugrt does not declare 'int8'"])
    res.assert_outcomes(passed=len(CASES) - 1 + 1, skipped=1)  # + test_known_failures_name_cases_it_runs


def test_a_known_failure_that_raises_its_class_is_an_xfail(pytester: pytest.Pytester) -> None:
    known = {"int8_fc/onnx": {"error": "UnsupportedModelError", "reason": "no QDQ at opset 13"}}
    res = _run_plugin_suite(pytester, {"multi_output", "dynamic_shapes", "int8"}, known)
    res.stdout.fnmatch_lines(["XFAIL *test_case?int8_fc/onnx? - known failure, UnsupportedModelError: no QDQ at opset 13"])
    res.assert_outcomes(passed=len(CASES), xfailed=1)


def test_a_known_failure_that_passes_now_fails(pytester: pytest.Pytester) -> None:
    known = {"conv_relu/onnx": {"error": "UnsupportedModelError", "reason": "was broken"}}
    res = _run_plugin_suite(pytester, {"multi_output", "dynamic_shapes"}, known)
    res.stdout.fnmatch_lines(["*plugrt conv_relu/onnx passes now; remove it from the `conformance` table of "
                              "Plugin.default_info*"])
    res.assert_outcomes(passed=len(CASES) - 1, skipped=1, failed=1)


def test_a_known_failure_with_another_error_class_fails(pytester: pytest.Pytester) -> None:
    known = {"int8_fc/onnx": {"error": "AssertionError", "reason": "wrong values"}}
    res = _run_plugin_suite(pytester, {"multi_output", "dynamic_shapes"}, known)
    res.stdout.fnmatch_lines(["*known failure expects AssertionError (wrong values), but it raised "
                              "UnsupportedModelError*"])
    res.assert_outcomes(passed=len(CASES), failed=1)


def test_a_known_failure_without_an_error_class_is_a_config_error(pytester: pytest.Pytester) -> None:
    res = _run_plugin_suite(pytester, {"multi_output"}, {"conv_relu/onnx": "old format: a bare reason"})
    res.stdout.fnmatch_lines([f"*{ConfigError.__name__}*'conv_relu/onnx': expected a table "
                              "{ error = \"UnsupportedModelError\", reason = \"why\" }*"])
    assert res.ret != 0


def test_a_subclass_without_a_runtime_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_empty="from edgekit.testing.conformance import RuntimeConformance\n\n\n"
                                   "class TestNothing(RuntimeConformance):\n    pass\n")
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.stdout.fnmatch_lines(["*TestNothing subclasses RuntimeConformance without naming its runtime*"])
    assert res.ret != 0
