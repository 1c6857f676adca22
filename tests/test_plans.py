"""Deployment plans in use: the file (round trip, refusals), check(), load(plan=...), the plan cache behind
device="auto", plans embedded in bundles, and load(verify=True).

Real runtimes and real files throughout. The two test adapters (a runtime that adds 0.1 to every output,
and ONNX Runtime with a counter on opens) are registered with ``register_runtime`` and unregistered after
each test; nothing is monkeypatched except ``EDGEKIT_CACHE``, which isolates the cache per test.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import edgekit
from edgekit.cli import cli
from edgekit.devices import detect
from edgekit.errors import AccuracyError, BundleError, InvalidOptionError, PlanError
from edgekit.models.formats import ModelFile, open_model
from edgekit.plan import PLAN_VERSION, Config, Plan, check
from edgekit.plan_cache import cache_plan, find_plan, plan_cache_path
from edgekit.registry import get_runtime, register_runtime, unregister_runtime
from edgekit.runtime import Runtime, RuntimeInfo, Session
from edgekit.runtimes.onnxruntime import OnnxRuntime
from edgekit.testing.cases import CASES
from edgekit.testing.onnx_models import build_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder of this test's own; test runtimes are unregistered afterwards."""
    root = tmp_path / "cache"
    monkeypatch.setenv("EDGEKIT_CACHE", str(root))
    yield root
    for name in ("offby", "onnxruntime"):
        unregister_runtime(name)  # idempotent: entry points (the real onnxruntime) come back


@pytest.fixture()
def model(tmp_path: Path) -> ModelFile:
    return open_model(build_onnx("conv_relu", tmp_path / "conv.onnx"))


def _plan(model: ModelFile, *, device: str | None = None, **changes: Any) -> Plan:
    chosen = Config("openvino", "cpu", "fp32", threads=1, options={"hint": "latency"})
    plan = Plan.for_here(chosen, model, device=device, p50_ms=0.05, p50_ci_ms=(0.049, 0.051),
                         accuracy={"max_abs": 1.2e-7, "cosine": 1.0, "y": {"max_abs": 1.2e-7}},
                         runner_up=Config("onnxruntime", threads=1), runner_up_p50_ms=0.07,
                         default=Config("onnxruntime", threads=2), default_p50_ms=0.08, runtimes=["onnxruntime"])
    return dataclasses.replace(plan, **changes)


def _feeds() -> np.ndarray:
    return CASES["conv_relu"].inputs("onnx")["x"]


# --- the file --------------------------------------------------------------------------------------

def test_plan_round_trips_through_a_readable_toml_file(model: ModelFile, tmp_path: Path) -> None:
    plan = _plan(model, device="raspberry-pi-5")
    plan.accuracy["per output"] = {"y": {"cosine": np.float64(0.99999), "argmax": np.float32(1.0), "n": np.int64(3),
                                         "finite": np.bool_(True), "note": 'odd "text"\n\x7f'}}
    path = plan.write(tmp_path / "plan.toml")
    text = path.read_text()
    assert f'version = "{PLAN_VERSION}"' in text and "[chosen]" in text and "[chosen.options]" in text
    assert 'runtime = "openvino"' in text and f'sha256 = "{model.sha256()}"' in text
    back = Plan.read(path)
    assert back.accuracy["per output"] == {"y": {"cosine": 0.99999, "argmax": 1.0, "n": 3, "finite": True,
                                                 "note": 'odd "text"\n\x7f'}}
    assert back == plan and back.source == str(path)
    assert back.runtime_versions["openvino"] == get_runtime("openvino").version()
    assert back.chosen.load_kwargs() == {"runtime": "openvino", "accelerator": "cpu", "precision": "fp32",
                                         "threads": 1, "hint": "latency"}


def test_write_never_overwrites_without_force(model: ModelFile, tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("mine")
    (tmp_path / "new").mkdir()
    _plan(model).write(tmp_path / "new" / "plan.toml")  # a new file: written
    with pytest.raises(InvalidOptionError, match=r"already exists"):
        _plan(model).write(tmp_path / "new" / "plan.toml")
    with pytest.raises(InvalidOptionError, match=r"already exists.*force=True.*--force"):
        _plan(model).write(path)
    assert path.read_text() == "mine"
    _plan(model).write(path, force=True)
    assert Plan.read(path).chosen.runtime == "openvino"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.onnx", "new", "plan.toml"]  # no temporary file left


MALFORMED = {
    "missing key": (lambda t: t.replace("threads = 1\np50_ms = 0.05", "p50_ms = 0.05"), r"\[chosen\].*missing key 'threads'"),
    "wrong type": (lambda t: t.replace("cores = ", "cores = '") .replace("\nmachine", "'\nmachine"),
                   r"\[host\]: key 'cores' expected an integer, got str"),
    "other major version": (lambda t: t.replace(f'version = "{PLAN_VERSION}"', 'version = "2.0"'),
                            r"key 'version' expected 1\.x .*got '2\.0'.*newer edgekit"),
    "unknown key": (lambda t: t.replace("[chosen]\n", "[chosen]\nruntine = 'x'\n"), r"\[chosen\]: unknown key\(s\) \['runtine'\]"),
    "bad hash": (lambda t: t.replace('sha256 = "', 'sha256 = "zz'), r"key 'sha256' expected 64 lowercase hex"),
    "bad precision": (lambda t: t.replace('precision = "fp32"', 'precision = "fp64"', 1), r"key 'precision' expected one of"),
    "option table": (lambda t: t.replace('hint = "latency"', 'hint = {a = 1}'), r"options: key 'hint' expected a string"),
    "no chosen version": (lambda t: t.replace('openvino = "', 'x_openvino = "'), r"expected the version of the chosen runtime"),
    "oversized": (lambda t: t + "# " + "x" * (70 << 10) + "\n", r"larger than a plan can be"),
    "not toml": (lambda t: t + "[chosen\n", r"not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_plan_files_are_refused_naming_the_key(case: str, model: ModelFile, tmp_path: Path) -> None:
    edit, message = MALFORMED[case]
    path = tmp_path / "plan.toml"
    text = _plan(model).to_toml()
    path.write_text(edit(text))
    assert path.read_text() != text, "the edit did not apply"
    with pytest.raises(PlanError, match=message) as e:
        Plan.read(path)
    assert str(path) in str(e.value)


def test_a_newer_minor_version_is_read_and_its_new_keys_ignored(model: ModelFile, tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(_plan(model).to_toml().replace(f'version = "{PLAN_VERSION}"', 'version = "1.9"')
                    .replace("[chosen]\n", "[chosen]\nenergy_mj = 3.0\n"))
    assert Plan.read(path).chosen.runtime == "openvino"


# --- check() -----------------------------------------------------------------------------------------

def test_check_is_empty_for_a_plan_made_here(model: ModelFile) -> None:
    assert check(_plan(model), model) == []
    assert check(_plan(model, device="generic-x86-64"), model, device="generic-x86-64") == []


def test_check_names_a_changed_model(model: ModelFile, tmp_path: Path) -> None:
    plan = _plan(model)
    build_onnx("matmul_add_softmax", model.path)  # same path, other model
    assert any(r.startswith("the model changed") for r in check(plan, open_model(model.path)))


def test_external_data_is_part_of_the_model_hash(tmp_path: Path) -> None:
    proto = onnx.load(str(build_onnx("conv_relu", tmp_path / "src.onnx")))
    folder = tmp_path / "ext"
    folder.mkdir()
    onnx.save_model(proto, str(folder / "conv.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="conv.data", size_threshold=0)
    first = open_model(folder / "conv.onnx")
    assert first.external == ((folder / "conv.data").resolve(),)
    plan = _plan(first)
    data = folder / "conv.data"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF  # one weight changes; the .onnx file itself does not
    data.write_bytes(bytes(raw))
    second = open_model(folder / "conv.onnx")
    assert second.sha256() != first.sha256()
    assert any("the model changed" in r for r in check(plan, second))


def test_check_names_another_host_and_runtime_versions(model: ModelFile) -> None:
    other = _plan(model, host_cpu="Imaginary CPU 9000", host_cores=os.cpu_count() + 1, host_machine="riscv64")
    reasons = check(other, model)
    assert "other host: CPU 'Imaginary CPU 9000' -> " in reasons[0]
    assert any("cores" in r for r in reasons) and any("machine riscv64" in r for r in reasons)
    here = get_runtime("openvino").version()
    old = _plan(model, runtime_versions={"openvino": "2020.1.0", "onnxruntime": get_runtime("onnxruntime").version()})
    assert check(old, model) == [f"runtime version changed: openvino 2020.1.0 -> {here}"]


def test_check_refuses_options_that_are_not_speed_settings(model: ModelFile) -> None:
    chosen = Config("onnxruntime", threads=1, options={"custom_ops": "/tmp/evil.so"})
    reasons = check(_plan(model, chosen=chosen), model)
    assert any("custom_ops" in r and "not speed settings" in r for r in reasons)


# --- load(plan=...) ----------------------------------------------------------------------------------

def test_load_with_a_plan_runs_the_chosen_configuration(model: ModelFile, tmp_path: Path) -> None:
    path = _plan(model).write(tmp_path / "plan.toml")
    with edgekit.load(model.path, plan=path) as m:
        p = m.placement
        assert (p.runtime, p.accelerator, p.precision) == ("openvino", "cpu", "fp32")
        assert p.options["threads"] == 1 and p.options["hint"] == "latency"
        assert p.plan is not None and p.plan.startswith(str(path)) and not p.fell_back
        assert f"plan: {path} (tuned " in p.explain() and "p50 0.05 ms" in p.explain()
        feeds = CASES["conv_relu"].inputs("onnx")
        expected = CASES["conv_relu"].reference("onnx", feeds)  # the plan's runtime computes the right thing
        np.testing.assert_allclose(m(feeds)["y"], expected["y"], rtol=1e-4, atol=1e-5)
    with edgekit.load(model.path, plan=_plan(model), runtime="openvino", threads=1) as m:  # repeating is fine
        assert m.placement.runtime == "openvino"


def test_a_plan_and_a_conflicting_choice_are_refused(model: ModelFile) -> None:
    with pytest.raises(InvalidOptionError, match=r"runtime='onnxruntime' \(the plan chose 'openvino'\)"):
        edgekit.load(model.path, plan=_plan(model), runtime="onnxruntime")
    with pytest.raises(InvalidOptionError, match=r"hint='throughput'"):
        edgekit.load(model.path, plan=_plan(model), hint="throughput")


def test_a_plan_applies_in_a_worker_process_too(model: ModelFile) -> None:
    with edgekit.load(model.path, plan=_plan(model), timeout=60) as m:
        assert m.placement.runtime == "openvino" and m.placement.options["threads"] == 1
        assert m.placement.plan is not None and "worker process" in m.placement.explain()
        np.testing.assert_allclose(m(_feeds())["y"], CASES["conv_relu"].reference("onnx", {"x": _feeds()})["y"],
                                   rtol=1e-4, atol=1e-5)


def test_a_stale_plan_warns_and_falls_back(model: ModelFile, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stale = _plan(model, host_cpu="Imaginary CPU 9000")
    path = stale.write(tmp_path / "stale.toml")
    with caplog.at_level(logging.WARNING, logger="edgekit"), edgekit.load(model.path, plan=path) as m:
        p = m.placement
        assert p.runtime == "onnxruntime" and p.plan is None and p.fell_back  # what load() does without a plan
        assert p.trail[0].target == f"plan {path}" and "Imaginary CPU 9000" in p.trail[0].reason
        assert "not used" in p.explain() and "default runtime choice" in p.explain()
    assert any("does not apply here" in r.getMessage() and "Imaginary CPU 9000" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(PlanError, match=r"does not apply here: other host: CPU 'Imaginary CPU 9000'.*edgekit tune"):
        edgekit.load(model.path, plan=path, strict=True)


def test_a_stale_plan_with_a_device_falls_back_to_its_targets(model: ModelFile) -> None:
    old = _plan(model, runtime_versions={"openvino": "1.0", "onnxruntime": get_runtime("onnxruntime").version()})
    with edgekit.load(model.path, plan=old, device="generic-x86-64") as m:
        assert m.placement.device == "generic-x86-64" and m.placement.target.startswith("#1")
        assert "openvino 1.0 -> " in m.placement.trail[0].reason


# --- device="auto" and the plan cache ------------------------------------------------------------

def test_device_auto_uses_a_cached_plan(model: ModelFile, cache: Path) -> None:
    device = detect().profile.name
    path = cache_plan(_plan(model, device=device))
    assert path.is_relative_to(cache / "plans") and path == plan_cache_path(model.sha256(), device)
    with edgekit.load(model.path, device="auto") as m:
        assert m.placement.runtime == "openvino" and m.placement.options["hint"] == "latency"
        assert f"plan: {path}" in m.placement.explain()
    with edgekit.load(model.path, device="auto", runtime="onnxruntime") as m:  # an explicit choice wins
        assert m.placement.runtime == "onnxruntime" and m.placement.plan is None
        assert "plan cache was not consulted (runtime= given)" in m.placement.explain()


def test_device_auto_uses_a_plan_tuned_for_this_host_without_a_profile(model: ModelFile) -> None:
    cache_plan(_plan(model, device=None))
    with edgekit.load(model.path, device="auto") as m:
        assert m.placement.runtime == "openvino" and m.placement.plan is not None


def test_device_auto_without_a_cached_plan_says_so(model: ModelFile) -> None:
    with edgekit.load(model.path, device="auto") as m:
        assert m.placement.plan is None
        assert "no plan in the cache for conv.onnx" in m.placement.explain()
        assert f"device {detect().profile.name}'s targets" in m.placement.explain()


POISON = {
    "another model's plan": lambda model, other: _plan(other, device=detect().profile.name).to_toml(),
    "malformed": lambda model, other: "version = 1\n[chosen\n",
    "library-loading options": lambda model, other: _plan(model, device=detect().profile.name, chosen=Config(
        "onnxruntime", threads=1, options={"custom_ops": "/tmp/evil.so"})).to_toml(),
    "other device": lambda model, other: _plan(model, device="raspberry-pi-5").to_toml(),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_poisoned_cache_entry_is_ignored_with_its_reason(case: str, model: ModelFile, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    other = open_model(build_onnx("matmul_add_softmax", tmp_path / "other.onnx"))
    path = plan_cache_path(model.sha256(), detect().profile.name)
    path.parent.mkdir(parents=True)
    path.write_text(POISON[case](model, other))
    plan, reasons = find_plan(model, detect().profile.name)
    assert plan is None and len(reasons) == 1 and "ignored" in reasons[0]
    with caplog.at_level(logging.WARNING, logger="edgekit"), edgekit.load(model.path, device="auto") as m:
        assert m.placement.runtime == "onnxruntime" and m.placement.plan is None  # the profile's first target
        assert "ignored" in m.placement.explain()
    assert any("ignored" in r.getMessage() for r in caplog.records)


def test_a_cache_folder_every_user_may_write_is_not_trusted(model: ModelFile, cache: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    path = cache_plan(_plan(model, device=detect().profile.name))
    path.parent.chmod(0o777)  # anyone could have put this plan here
    plan, reasons = find_plan(model, detect().profile.name)
    assert plan is None and "writable by every user" in reasons[0]
    with caplog.at_level(logging.WARNING, logger="edgekit"), edgekit.load(model.path, device="auto") as m:
        assert m.placement.runtime == "onnxruntime" and m.placement.plan is None
    assert any("writable by every user" in r.getMessage() for r in caplog.records)


def test_a_symlinked_cache_entry_is_ignored(model: ModelFile, tmp_path: Path) -> None:
    real = _plan(model, device=detect().profile.name).write(tmp_path / "elsewhere.toml")
    path = plan_cache_path(model.sha256(), detect().profile.name)
    path.parent.mkdir(parents=True)
    path.symlink_to(real)
    plan, reasons = find_plan(model, detect().profile.name)
    assert plan is None and "symbolic link" in reasons[0]


# --- bundles -------------------------------------------------------------------------------------------

def _classifier(tmp_path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.testing.onnx_models import save_onnx

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]), helper.make_node("Mul", ["flat", "ten"], ["logits"])]
    graph = helper.make_graph(nodes, "classify", [x], [y], [numpy_helper.from_array(np.array(10.0, np.float32), "ten")])
    return save_onnx(graph, tmp_path / "color.onnx")


def test_a_bundle_carries_plans_per_device_and_load_bundle_uses_them(tmp_path: Path) -> None:
    from edgekit.pipeline.create import create_bundle

    model = open_model(_classifier(tmp_path))
    device = detect().profile.name
    plan_path = _plan(model, device=device).write(tmp_path / "plan.toml")
    for out in (tmp_path / "bundle", tmp_path / "bundle.zip"):
        bundle = create_bundle(model.path, "classifier", out, plans=[plan_path])
        with edgekit.load_bundle(bundle, device="auto") as pipe:
            assert pipe.placement.runtime == "openvino"
            assert f"plans/{device}.toml (tuned" in pipe.placement.explain()
            assert pipe.predict(np.zeros((40, 40, 3), np.uint8))
        with edgekit.load_bundle(bundle) as pipe:  # no device: no plan, as load() does
            assert pipe.placement.runtime == "onnxruntime"
    assert (tmp_path / "bundle" / "plans" / f"{device}.toml").is_file()


def test_bundle_create_refuses_a_plan_for_another_model(tmp_path: Path, model: ModelFile) -> None:
    from edgekit.pipeline.create import create_bundle

    plan_path = _plan(model, device="generic-x86-64").write(tmp_path / "plan.toml")
    with pytest.raises(BundleError, match="the plan is for conv.onnx"):
        create_bundle(_classifier(tmp_path), "classifier", tmp_path / "b", plans=[plan_path])
    no_device = _plan(open_model(_classifier(tmp_path))).write(tmp_path / "nodev.toml")
    with pytest.raises(BundleError, match="names no device profile"):
        create_bundle(_classifier(tmp_path), "classifier", tmp_path / "b", plans=[no_device])


@pytest.mark.parametrize("case", ["malformed", "misnamed", "symlink", "folder", "oversized"])
def test_bundle_plans_are_validated_like_other_bundle_files(case: str, tmp_path: Path) -> None:
    from edgekit.pipeline.create import create_bundle

    model = open_model(_classifier(tmp_path))
    bundle = create_bundle(model.path, "classifier", tmp_path / "bundle")
    plans = bundle / "plans"
    plans.mkdir()
    good = _plan(model, device="generic-x86-64").to_toml()
    if case == "malformed":
        (plans / "generic-x86-64.toml").write_text(good.replace("threads = 1\n", "threads = 0\n", 1))
        message = "key 'threads' expected a positive integer"
    elif case == "misnamed":
        (plans / "raspberry-pi-5.toml").write_text(good)
        message = "expected 'raspberry-pi-5' \\(the file name\\), got 'generic-x86-64'"
    elif case == "symlink":
        (tmp_path / "outside.toml").write_text(good)
        (plans / "generic-x86-64.toml").symlink_to(tmp_path / "outside.toml")
        message = "a symbolic link in plans/"
    elif case == "folder":
        (plans / "sub").mkdir()
        message = "a folder in plans/"
    else:
        (plans / "generic-x86-64.toml").write_text(good + "#" * (70 << 10))
        message = "larger than a plan can be"
    with pytest.raises(BundleError, match=message):
        edgekit.load_bundle(bundle, device="generic-x86-64")


# --- the CLI ---------------------------------------------------------------------------------------

def test_edgekit_run_takes_a_plan(model: ModelFile, tmp_path: Path) -> None:
    path = _plan(model).write(tmp_path / "plan.toml")
    np.save(tmp_path / "x.npy", _feeds())
    result = CliRunner().invoke(cli, ["run", str(model.path), "--input", str(tmp_path / "x.npy"), "--plan",
                                      str(path)])
    assert result.exit_code == 0, result.output
    assert "openvino" in result.output


# --- verify=True -----------------------------------------------------------------------------------

class _PlusTenth(Session):
    def __init__(self, inner: Session) -> None:
        super().__init__(inner.inputs, inner.outputs, accelerator=inner.accelerator, precision=inner.precision,
                         options=inner.options)
        self._inner = inner

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(r) + np.float32(0.1) for r in self._inner.run(feeds)]

    def close(self) -> None:
        self._inner.close()


class OffBy(Runtime):
    """ONNX Runtime, slightly wrong: every output plus 0.1 (what verify=True exists to catch)."""

    name = "offby"
    default_info = RuntimeInfo("offby", "Test runtime: onnxruntime + 0.1", "onnxruntime", ("onnxruntime",), "onnxruntime",
                               ("onnx",), accelerators={"cpu": "the host CPU"})
    picked_by_default = False

    def accelerators(self) -> list[str]:
        return ["cpu"]

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        return _PlusTenth(get_runtime("onnxruntime").open(model, threads=threads))


class CountingOnnxRuntime(OnnxRuntime):
    """The real ONNX Runtime adapter, counting the sessions it opens (the reference of verify=True)."""

    opened: ClassVar[int] = 0

    def _open(self, model: ModelFile, **kwargs: Any) -> Session:
        type(self).opened += 1
        return super()._open(model, **kwargs)


def test_verify_passes_once_and_remembers_the_verdict(model: ModelFile, cache: Path) -> None:
    register_runtime(CountingOnnxRuntime, replace=True)
    CountingOnnxRuntime.opened = 0
    with edgekit.load(model.path, runtime="openvino", verify=True) as m:
        assert CountingOnnxRuntime.opened == 1
        assert "verify: outputs match onnxruntime" in m.placement.explain()
    verdicts = list((cache / "verified").iterdir())
    assert len(verdicts) == 1
    record = json.loads(verdicts[0].read_text())
    assert record["verdict"] == "pass" and record["key"]["model_sha256"] == model.sha256()
    assert record["key"]["runtime"] == "openvino" and record["key"]["version"] == get_runtime("openvino").version()
    with edgekit.load(model.path, runtime="openvino", verify=True) as m:
        assert CountingOnnxRuntime.opened == 1  # the reference did not run again
        assert f"cached verdict {verdicts[0].name}" in m.placement.explain()
    with edgekit.load(model.path, runtime="openvino", verify=True, threads=1) as m:  # threads are not in the key
        assert CountingOnnxRuntime.opened == 1


def test_a_verdict_file_for_another_key_is_not_trusted(model: ModelFile, cache: Path) -> None:
    register_runtime(CountingOnnxRuntime, replace=True)
    CountingOnnxRuntime.opened = 0
    edgekit.load(model.path, runtime="openvino", verify=True).close()
    (verdict,) = (cache / "verified").iterdir()
    record = json.loads(verdict.read_text())
    record["key"]["model_sha256"] = "0" * 64  # a pass for another model, under this key's name
    verdict.write_text(json.dumps(record))
    edgekit.load(model.path, runtime="openvino", verify=True).close()
    assert CountingOnnxRuntime.opened == 2


def test_verify_raises_on_a_wrong_runtime_naming_outputs_and_numbers(model: ModelFile, cache: Path) -> None:
    register_runtime(OffBy)
    with pytest.raises(AccuracyError) as e:
        edgekit.load(model.path, runtime="offby", verify=True)
    msg = str(e.value)
    assert "offby" in msg and "float32 reference onnxruntime" in msg and "output 'y'" in msg
    assert "max abs error 0.1" in msg and "relative error" in msg and "tolerance" in msg and "MISMATCH" in msg
    assert "edgekit tune conv.onnx" in msg and "runtime='onnxruntime'" in msg
    assert not (cache / "verified").exists() or not list((cache / "verified").iterdir())  # failures are not cached
    with edgekit.load(model.path, runtime="offby") as m:  # without verify, nothing is checked
        assert m.placement.runtime == "offby"


def test_verify_skips_the_reference_itself(model: ModelFile) -> None:
    with edgekit.load(model.path, runtime="onnxruntime", verify=True) as m:
        assert "itself the float32 reference" in m.placement.explain()


def test_verify_allows_one_rounding_step_on_quantized_outputs(tmp_path: Path) -> None:
    """int8_fc's int8 output: OpenVINO and ONNX Runtime round differently by one step, which is not a mismatch."""
    with edgekit.load(build_onnx("int8_fc", tmp_path / "q.onnx"), runtime="openvino", verify=True) as m:
        assert "verify: outputs match onnxruntime" in m.placement.explain()
