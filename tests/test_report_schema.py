"""The report's JSON Schema is generated from the dataclasses, and ``validate`` agrees with a real validator.

A real report (the bundled sample on ONNX Runtime) must validate against :data:`SCHEMA` with
``jsonschema``'s Draft 2020-12 validator, and every mutated document must be accepted or
rejected by ``jsonschema`` and by edgekit's own :func:`validate` alike: hand-picked mutations
(missing key, wrong type, unknown key, bad status, ...) and seeded random ones.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from edgekit.cli import cli
from edgekit.errors import ReportError
from edgekit.models.sample import sample_model
from edgekit.profiling import ProfileReport, profile
from edgekit.profiling.results import SCHEMA_ID, SCHEMA_VERSION, STATUSES, RuntimeResult
from edgekit.profiling.schema import SCHEMA, json_schema, validate
from edgekit.profiling.stats import LatencyStats
from edgekit.profiling.worker import FAULT_ENV

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def report_data(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    """A real report as JSON data: the sample's ONNX model on ONNX Runtime (private EDGEKIT_CACHE)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv(FAULT_ENV, raising=False)
        report = profile(sample_model("onnx"), runtimes=["onnxruntime"], duration=0.2, warmup=2)
    assert report.results[0].status == "ok", report.results[0].error
    return json.loads(report.to_json())


VALIDATOR = Draft202012Validator(SCHEMA)


def jsonschema_accepts(data: Any) -> bool:
    return VALIDATOR.is_valid(data)


def validate_accepts(data: Any) -> bool:
    try:
        validate(data)
    except ReportError:
        return False
    return True


def test_schema_is_draft_2020_12_with_the_versioned_id() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == f"{SCHEMA_ID}/{SCHEMA_VERSION}"
    assert SCHEMA["$defs"]["RuntimeResult"]["properties"]["status"]["enum"] == list(STATUSES)


def test_schema_is_generated_from_the_dataclasses() -> None:
    """Every dataclass field is a property and nothing else is: there is no second description."""
    assert list(SCHEMA["properties"]) == [f.name for f in dataclasses.fields(ProfileReport)]
    for name, body in SCHEMA["$defs"].items():
        cls = {"RuntimeResult": RuntimeResult, "LatencyStats": LatencyStats}.get(name)
        if cls is not None:
            assert list(body["properties"]) == [f.name for f in dataclasses.fields(cls)]
    # absent means null: only keys whose field defaults to None may be left out
    assert SCHEMA["$defs"]["RuntimeResult"]["required"] == ["id", "runtime", "model", "format", "status", "libraries"]
    assert "reference" not in SCHEMA["required"] and "schema_version" in SCHEMA["required"]


def test_cli_prints_the_generated_schema() -> None:
    res = CliRunner().invoke(cli, ["profile", "--schema"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == SCHEMA


def test_real_report_validates_with_jsonschema_and_validate(report_data: Doc) -> None:
    VALIDATOR.validate(report_data)  # raises jsonschema.ValidationError with the path
    validate(report_data)
    assert ProfileReport.from_dict(report_data).to_dict() == report_data
    assert validate_accepts(dict(report_data, schema_version="1.7"))  # any minor version of 1
    assert not validate_accepts(dict(report_data, schema_version="2.0"))


def _delete(*path: Any) -> Callable[[Doc], None]:
    def mutate(d: Doc) -> None:
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return mutate


def _set(value: Any, *path: Any) -> Callable[[Doc], None]:
    def mutate(d: Doc) -> None:
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return mutate


R0 = ("results", 0)
REJECTED = [
    # (mutation, what validate's message must say)
    (_delete(*R0, "status"), r"\$\.results\[0\]: missing required key 'status'"),
    (_delete("created"), r"\$: missing required key 'created'"),
    (_delete("schema"), r"\$: missing required key 'schema'"),
    (_delete(*R0, "latency", "p99"), r"\$\.results\[0\]\.latency: missing required key 'p99'"),
    (_delete(*R0, "libraries"), r"\$\.results\[0\]: missing required key 'libraries'"),
    (_delete("provenance", "cpu"), r"\$\.provenance: missing required key 'cpu'"),
    (_delete("models", 0, "inputs", 0, "dtype"), r"\$\.models\[0\]\.inputs\[0\]: missing required key 'dtype'"),
    (_set("fast", *R0, "latency", "p50"), r"\$\.results\[0\]\.latency\.p50: expected number, got string 'fast'"),
    (_set(True, *R0, "latency", "n"), r"latency\.n: expected integer, got boolean True"),
    (_set(1.5, "models", 0, "size_bytes"), r"size_bytes: expected integer, got number 1\.5"),
    (_set(None, *R0, "runtime"), r"\$\.results\[0\]\.runtime: expected string, got null None"),
    (_set("x", *R0, "load_ms"), r"load_ms: expected number or null, got string 'x'"),
    (_set([], *R0, "memory"), r"\$\.results\[0\]\.memory: expected object or null, got array \[\]"),
    (_set(3, *R0, "libraries", "onnxruntime"), r"libraries\.onnxruntime: expected string, got integer 3"),
    (_set({}, "results"), r"\$\.results: expected array, got object"),
    (_set(1, *R0, "extra"), r"\$\.results\[0\]: unexpected key 'extra'"),
    (_set(1, "comment"), r"\$: unexpected key 'comment'"),
    (_set(1, *R0, "latency", "p95"), r"\$\.results\[0\]\.latency: unexpected key 'p95'"),
    (_set("fine", *R0, "status"), r"\$\.results\[0\]\.status: expected one of \['ok', .*\], got string 'fine'"),
    (_set("OK", *R0, "status"), r"status: expected one of"),
    (_set("whenever", *R0, "latency", "stop_reason"), r"stop_reason: expected one of \['ci', 'budget'"),
    (_set(0, *R0, "latency", "n"), r"latency\.n: expected >= 1, got 0"),
    (_set("https://example.com/other", "schema"), r"\$\.schema: expected 'https://edgekit\.dev/"),
]


@pytest.mark.parametrize(("mutate", "message"), REJECTED, ids=[m for _, m in REJECTED])
def test_jsonschema_and_validate_reject_the_same_broken_documents(report_data: Doc, mutate: Callable[[Doc], None],
                                                                   message: str) -> None:
    data = copy.deepcopy(report_data)
    mutate(data)
    assert not jsonschema_accepts(data)
    with pytest.raises(ReportError, match=message) as info:
        validate(data)
    assert f"not a valid edgekit profile report (schema {SCHEMA_VERSION})" in str(info.value)


ACCEPTED = [
    _delete(*R0, "error"),  # absent means null
    _delete("reference"),
    _set(None, *R0, "latency"),
    _set(None, *R0, "ops"),
    _set(3, *R0, "latency", "p50"),  # a JSON integer is a number
    _set(10.0, "models", 0, "size_bytes"),  # and 10.0 is an integer
    _set("anything", "provenance", "extra"),  # provenance, placement and inputs[] are open objects
    _set([1, 2], "models", 0, "inputs", 0, "extra"),
]


@pytest.mark.parametrize("mutate", ACCEPTED)
def test_jsonschema_and_validate_accept_the_same_variations(report_data: Doc, mutate: Callable[[Doc], None]) -> None:
    data = copy.deepcopy(report_data)
    mutate(data)
    assert jsonschema_accepts(data)
    validate(data)
    assert isinstance(ProfileReport.from_dict(data), ProfileReport)


def test_several_errors_are_listed_together(report_data: Doc) -> None:
    data = copy.deepcopy(report_data)
    del data["results"][0]["status"]
    data["results"][0]["latency"]["p50"] = "fast"
    with pytest.raises(ReportError, match=r"missing required key 'status'; .*latency\.p50: expected number"):
        validate(data)
    with pytest.raises(ReportError, match=r"\$: expected object, got array"):
        validate([report_data])


def _locations(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index in a JSON document (``samples_ms`` shortened to its first entry)."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node[:1] if path[-1:] == ("samples_ms",) else node) \
        if isinstance(node, list) else []
    for k, v in items:
        out.append((*path, k))
        out.extend(_locations(v, (*path, k)))
    return out


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False) | st.sampled_from(
        ["", "ok", "ci", "x", SCHEMA_ID, "1.0"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["name", "n", "k"]), inner, max_size=2),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_mutations_are_judged_alike(report_data: Doc, data: st.DataObject) -> None:
    doc = copy.deepcopy(report_data)
    where = data.draw(st.sampled_from(_locations(doc)))
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    action = data.draw(st.sampled_from(["delete", "replace", "add"]))
    if action == "delete" and isinstance(parent, dict):
        del parent[where[-1]]
    elif action == "add" and isinstance(parent[where[-1]], dict):
        parent[where[-1]][data.draw(st.sampled_from(["extra", "n", "name", "kernel"]))] = data.draw(JSON_VALUES)
    else:
        parent[where[-1]] = data.draw(JSON_VALUES)
    version = doc.get("schema_version")
    other_major = isinstance(version, str) and version.split(".")[0] != "1"
    assert validate_accepts(doc) == (jsonschema_accepts(doc) and not other_major), (action, where)


def test_the_generator_refuses_what_it_cannot_express() -> None:
    @dataclasses.dataclass
    class Sets:
        tags: set[str]

    @dataclasses.dataclass
    class Pattern:
        name: Annotated[str, {"pattern": "^a"}]  # a keyword validate() would not check

    with pytest.raises(TypeError, match="no JSON Schema"):
        json_schema(Sets)
    with pytest.raises(TypeError, match="unsupported schema keyword"):
        json_schema(Pattern)
