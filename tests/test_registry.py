"""Runtime registration: the reference runtime (no native library), register_runtime(), plugins that break.

The adapters registered here are real ones, defined in this module; nothing is monkeypatched.
Every test leaves the registry as it found it (the ``clean_registry`` fixture).
"""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgekit
from edgekit.errors import CorruptModelError, InvalidOptionError, UnknownRuntimeError, UnsupportedModelError
from edgekit.models.formats import ModelFile
from edgekit.registry import get_runtime, iter_runtimes, list_runtimes, refresh, runtime_names, unregister_runtime
from edgekit.runtime import Runtime, RuntimeInfo, Session
from edgekit.runtimes.reference import Reference
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import check_case
from edgekit.testing.onnx_models import build_custom_op_onnx

TINY_INFO = RuntimeInfo("tiny", "Tiny test runtime (over the reference runtime)", "numpy", ("numpy",), "tiny",
                        ("onnx",), accelerators={"cpu": "numpy"})


class Tiny(Runtime):
    """A whole adapter in a few lines: the reference runtime's session under another name."""

    name = "tiny"
    default_info = TINY_INFO
    capabilities = frozenset({"multi_output", "dynamic_shapes"})

    def accelerators(self) -> list[str]:
        return ["cpu"]

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        return get_runtime("reference").open(model)


class _Doubling(Session):
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [feeds[s.name] * 2 for s in self.inputs]


class Doubler(Runtime):
    """A numpy adapter that ignores the graph: y = 2 * x, with the model's own specs (so a replacement shows)."""

    name = "tiny"
    default_info = TINY_INFO

    def accelerators(self) -> list[str]:
        return ["cpu"]

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        from edgekit.models.model_io import onnx_io

        inputs, outputs = onnx_io(model.path)
        return _Doubling(inputs, outputs, options={"threads": threads})


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    yield
    for name in ("tiny", "broken", "reference"):  # what these tests register (unregistering is idempotent)
        unregister_runtime(name)
    refresh()


# --- the reference runtime ---------------------------------------------------------------------

def test_reference_is_a_builtin_without_a_native_library() -> None:
    rt = get_runtime("reference")
    assert isinstance(rt, Reference) and rt.is_installed()
    assert rt.info.module == "onnx" and rt.formats == ("onnx",) and rt.accelerators() == ["cpu"]
    assert rt.capabilities <= {"dynamic_shapes", "multi_output", "int8"} and not rt.has("op_profile")
    row = {r.name: r for r in list_runtimes()}["reference"]
    assert row.installed and row.accelerators == ("cpu",) and row.error is None


def test_reference_comes_after_every_real_runtime_and_is_not_picked_by_default(build) -> None:
    names = runtime_names()
    assert names[-1] == "reference", names
    assert get_runtime("reference").picked_by_default is False
    with edgekit.load(build("conv_relu")) as m:
        assert m.placement.runtime != "reference"


@pytest.mark.parametrize("case", ["conv_relu", "matmul_add_softmax", "two_in_two_out", "dynamic_batch"])
def test_reference_matches_the_numpy_references(case: str, model_dir: Path) -> None:
    check_case("reference", case, "onnx", model_dir / "onnx")


def test_reference_keeps_model_order_dtypes_and_the_declared_specs(build) -> None:
    case = CASES["two_in_two_out"]
    with edgekit.load(build("two_in_two_out"), runtime="reference", threads=4) as m:
        out = m(case.inputs("onnx"))
        assert list(out) == ["z_sum", "a_prod"] and all(v.dtype == np.float32 for v in out.values())
        assert [(s.name, s.shape) for s in m.inputs] == [("a", (1, 4)), ("b", (1, 4))]
        assert m.placement.accelerator == "cpu" and m.placement.precision == "fp32"
        assert m.placement.options == {"threads": 1}  # one Python thread, whatever was asked
        assert m.session.thread_safe is False
    with edgekit.load(build("dynamic_batch"), runtime="reference") as m:
        assert m.inputs[0].shape == ("batch", 6)


def test_reference_names_an_unknown_operator(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="EdgekitNoSuchOp") as e:
        edgekit.load(build_custom_op_onnx(tmp_path / "custom.onnx"), runtime="reference")
    assert e.value.operators == ("EdgekitNoSuchOp",)


def test_reference_names_an_operator_it_lacks_at_this_opset(build) -> None:
    # onnx.reference implements DequantizeLinear from opset 19; the int8 case is opset 13
    with pytest.raises(UnsupportedModelError, match=r"DequantizeLinear.*re-export it at an opset") as e:
        edgekit.load(build("int8_fc"), runtime="reference")
    assert e.value.operators == ("DequantizeLinear",)
    assert not get_runtime("reference").has("int8")


def test_reference_translates_an_unparsable_file(build, tmp_path: Path) -> None:
    data = build("conv_relu").read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match="reference runtime cannot parse broken.onnx"):
        get_runtime("reference").open(ModelFile(broken, "onnx"))  # past edgekit.load's own check


def test_reference_refuses_other_formats(build) -> None:
    with pytest.raises(UnsupportedModelError, match="cannot read tflite models"):
        edgekit.load(build("conv_relu", "tflite"), runtime="reference")


# --- register_runtime / unregister_runtime / refresh --------------------------------------------

def test_a_registered_adapter_is_used_by_load(build) -> None:
    assert edgekit.register_runtime(Tiny) is Tiny
    assert "tiny" in runtime_names() and isinstance(get_runtime("tiny"), Tiny)
    case = CASES["matmul_add_softmax"]
    feeds = case.inputs("onnx")
    with edgekit.load(build("matmul_add_softmax"), runtime="tiny") as m:
        assert m.placement.runtime == "tiny"
        np.testing.assert_allclose(m(feeds)["probs"], case.reference("onnx", feeds)["probs"], atol=1e-5)


def test_a_registered_adapter_passes_conformance(model_dir: Path) -> None:
    edgekit.register_runtime(Tiny)
    for case in ("conv_relu", "two_in_two_out", "dynamic_batch"):
        check_case("tiny", case, "onnx", model_dir / "onnx")


def test_a_duplicate_name_needs_replace(build) -> None:
    edgekit.register_runtime(Tiny)
    with pytest.raises(InvalidOptionError, match="'tiny' is already registered; pass replace=True"):
        edgekit.register_runtime(Doubler)
    edgekit.register_runtime(Doubler, replace=True)
    x = CASES["dynamic_batch"].inputs("onnx")["x"]
    with edgekit.load(build("dynamic_batch"), runtime="tiny") as m:
        np.testing.assert_array_equal(m(x)["y"], 2 * x)  # the replacement runs


def test_a_builtin_name_needs_replace_and_comes_back_when_unregistered() -> None:
    class Impostor(Tiny):
        name = "reference"

    with pytest.raises(InvalidOptionError, match="'reference' is already registered"):
        edgekit.register_runtime(Impostor)
    edgekit.register_runtime(Impostor, replace=True)
    assert isinstance(get_runtime("reference"), Impostor)
    unregister_runtime("reference")
    assert type(get_runtime("reference")) is Reference  # the entry point again


@pytest.mark.parametrize(("bad", "message"), [
    (object, "takes a Runtime subclass"),
    (Tiny(TINY_INFO), "takes a Runtime subclass"),
    (type("Nameless", (Tiny,), {"name": ""}), "Nameless has no `name`"),
    (type("Unlisted", (Tiny,), {"name": "unlisted", "default_info": None}), "no catalog entry: set `default_info`"),
])
def test_bad_classes_are_refused(bad: Any, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        edgekit.register_runtime(bad)
    assert "unlisted" not in runtime_names()


def test_unregister_removes_it(build) -> None:
    edgekit.register_runtime(Tiny)
    unregister_runtime("tiny")
    assert "tiny" not in runtime_names()
    with pytest.raises(UnknownRuntimeError, match="no runtime named 'tiny'"):
        edgekit.load(build("conv_relu"), runtime="tiny")
    unregister_runtime("tiny")  # forgetting twice is harmless


def test_refresh_forgets_adapter_instances() -> None:
    first = get_runtime("reference")
    assert get_runtime("reference") is first
    refresh()
    again = get_runtime("reference")
    assert again is not first and type(again) is type(first)


def test_a_registered_class_that_breaks_is_a_warning_not_a_crash() -> None:
    class Broken(Tiny):
        name = "broken"
        default_info = RuntimeInfo("broken", "Broken", "numpy", ("numpy",), "broken", ("onnx",))

        def __init__(self, info: RuntimeInfo) -> None:
            raise RuntimeError("its native library is missing")

    edgekit.register_runtime(Broken)
    with pytest.warns(UserWarning, match="'broken' failed to load and is ignored: its native library is missing"):
        names = [rt.name for rt in iter_runtimes()]
    assert "broken" not in names and "reference" in names


# --- plugins installed in the entry-point group ---------------------------------------------------

@pytest.fixture
def plugin_site(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path that holds installed distributions (``*.dist-info``), as site-packages does."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("edgekit_test_plugin")]:
            del sys.modules[name]
        refresh()


def _install_plugin(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"  # '-' separates name and version here
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[edgekit.runtimes]\n{entry}\n")


def test_an_installed_plugin_is_discovered_after_refresh(plugin_site: Path, build) -> None:
    assert "goodrt" not in runtime_names()  # entry points are discovered once ...
    _install_plugin(plugin_site, "edgekit-test-plugin-good", "goodrt = edgekit_test_plugin_good:Good",
                    "edgekit_test_plugin_good", """
        from edgekit.registry import get_runtime
        from edgekit.runtime import Runtime, RuntimeInfo

        class Good(Runtime):
            name = "goodrt"
            default_info = RuntimeInfo("goodrt", "Good", "numpy", ("numpy",), "goodrt", ("onnx",))
            def accelerators(self): return ["cpu"]
            def _open(self, model, **kw): return get_runtime("reference").open(model)
    """)
    assert "goodrt" not in runtime_names()
    refresh()  # ... until refreshed
    assert "goodrt" in runtime_names()
    with edgekit.load(build("conv_relu"), runtime="goodrt") as m:
        assert m.placement.runtime == "goodrt"


@pytest.mark.parametrize(("source", "why"), [
    ("raise ImportError('No module named mylib')\n", "No module named mylib"),
    ("from edgekit.runtime import Runtime\n\nclass Bad(Runtime):\n    name = 'badrt'\n", "has no catalog entry"),
])
def test_a_broken_plugin_is_a_warning_not_a_crash(plugin_site: Path, source: str, why: str) -> None:
    _install_plugin(plugin_site, "edgekit-test-plugin-bad", "badrt = edgekit_test_plugin_bad:Bad",
                    "edgekit_test_plugin_bad", source)
    refresh()
    assert "badrt" in runtime_names()
    with pytest.warns(UserWarning, match=f"'badrt' failed to load and is ignored: .*{why}"):
        names = [rt.name for rt in iter_runtimes()]
    assert "badrt" not in names and "onnxruntime" in names
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rows = {r.name for r in list_runtimes(probe=False)}
    assert "badrt" not in rows and "reference" in rows and seen
