"""The adapter contract: the template ``Runtime.open``, declared capabilities, and placement's Decision."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.errors import InvalidOptionError
from edgekit.models.formats import open_model
from edgekit.placement import Decision, place
from edgekit.registry import get_runtime, iter_runtimes
from edgekit.runtime import CAPABILITIES, Runtime, default_threads
from edgekit.testing.cases import CASES


def test_every_adapter_declares_known_capabilities_and_tunables_it_accepts() -> None:
    for rt in iter_runtimes():
        assert rt.capabilities <= set(CAPABILITIES), (rt.name, rt.capabilities - set(CAPABILITIES))
        assert set(rt.tunables) <= set(rt.options_help), (rt.name, "a tunable must be an option the runtime takes")
        assert all(values for values in rt.tunables.values()), rt.name
        assert not {"open"} & set(vars(type(rt))), f"{rt.name} overrides open(); implement _open() instead"


def test_open_runs_the_shared_checks_before_the_adapter(build) -> None:
    rt = get_runtime("onnxruntime")
    model = open_model(build("conv_relu", "onnx"))
    with pytest.raises(InvalidOptionError, match=r"does not take option\(s\) \['nope'\]"):
        rt.open(model, options={"nope": 1})
    with pytest.raises(InvalidOptionError, match="cannot compute in precision 'bf16'"):
        rt.open(model, precision="bf16")
    with pytest.raises(edgekit.AcceleratorUnavailableError, match="not available on this host"):
        rt.open(model, accelerator="no-such-accelerator")
    with pytest.raises(InvalidOptionError, match="cannot time individual operators"):
        get_runtime("litert").open(open_model(build("conv_relu", "tflite")), profile_ops=True)
    session = rt.open(model, threads=1)
    try:
        assert session.options["threads"] == 1 and session.precision == "fp32" and session.accelerator == "cpu"
    finally:
        session.close()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_thread_counts_are_checked_in_one_place(bad: object, build) -> None:
    with pytest.raises(InvalidOptionError, match="threads must be a positive integer"):
        default_threads(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="threads must be a positive integer"):
        edgekit.load(build("conv_relu", "onnx"), threads=bad)  # type: ignore[arg-type]


def test_default_threads_is_every_core(build) -> None:
    import os

    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino") as m:
        assert m.placement.options["threads"] == (os.cpu_count() or 1)


def test_place_returns_a_decision_and_load_wraps_it(build) -> None:
    model = open_model(build("two_in_two_out", "onnx"))
    decision = place(model, runtime="onnxruntime", threads=1)
    try:
        assert isinstance(decision, Decision)
        assert decision.placement.runtime == "onnxruntime" and decision.placement.options["threads"] == 1
        assert [s.name for s in decision.session.inputs] == ["a", "b"]
    finally:
        decision.session.close()
    with edgekit.load(model, runtime="onnxruntime", threads=1) as m:  # a ModelFile is accepted as well as a path
        assert m.placement.runtime == "onnxruntime"


@pytest.mark.parametrize("runtime", [rt.name for rt in iter_runtimes() if rt.has("op_profile")])
def test_op_profile_is_a_declared_capability(runtime: str, build) -> None:
    fmt = "onnx"
    feeds = CASES["conv_relu"].inputs(fmt)
    with edgekit.load(build("conv_relu", fmt), runtime=runtime, threads=1, profile_ops=True) as m:
        for _ in range(4):
            m(feeds)
        profile = m.op_profile(skip=1)
    assert profile.runs == 3, profile
    assert profile.ops and all(op.time_us >= 0 for op in profile.ops)
    assert any("conv" in op.type.lower() for op in profile.ops), profile.ops


def test_op_profile_without_the_capability_or_the_flag_is_a_clear_error(build) -> None:
    with edgekit.load(build("conv_relu", "onnx"), runtime="onnxruntime") as m:
        m(CASES["conv_relu"].inputs("onnx"))
        with pytest.raises(InvalidOptionError, match="profile_ops=True"):
            m.op_profile()
    with edgekit.load(build("conv_relu", "tflite"), runtime="litert") as m:
        assert m.session.op_profile() is None and m.session.estimate() is None


def test_estimate_comes_from_the_session_not_from_sniffing(build) -> None:
    with edgekit.load(build("conv_relu", "onnx"), runtime="onnxruntime") as m:
        with pytest.raises(InvalidOptionError, match="emulated placements only"):
            m.estimate()
    with edgekit.load(build("conv_relu", "onnx"), device="snapdragon-8-gen-3", emulate=True) as m:
        est = m.estimate()
        assert est.total_ms > 0
        assert m.placement.emulated and m.placement.runtime == "emulated"


def test_emulation_is_chosen_by_capability_for_a_named_runtime(build) -> None:
    """``runtime="emulated"`` is routed by the runtime's declared ``estimate`` capability."""
    assert get_runtime("emulated").has("estimate")
    assert not any(rt.has("estimate") for rt in iter_runtimes() if rt.name != "emulated")
    with edgekit.load(build("conv_relu", "onnx"), runtime="emulated") as m:
        assert m.placement.emulated and m.placement.device == "generic-x86-64"
        out = m(CASES["conv_relu"].inputs("onnx"))["y"]
        assert np.isfinite(out).all()


def test_a_timeout_predictor_is_placed_in_the_worker(build) -> None:
    x = CASES["conv_relu"].inputs("onnx")
    with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", threads=1, timeout=60) as m:
        assert m.placement.runtime == "openvino" and m.session.options["timeout"] == 60
        with edgekit.load(build("conv_relu", "onnx"), runtime="openvino", threads=1) as local:
            np.testing.assert_allclose(m(x)["y"], local(x)["y"], rtol=1e-6)


def test_a_minimal_plugin_implements_only_accelerators_and__open() -> None:
    abstract = getattr(Runtime, "__abstractmethods__", frozenset())
    assert abstract == {"accelerators", "_open"}
