"""The conformance suite every runtime adapter passes — shipped, so plugin authors run it too.

A plugin's test module needs two lines::

    from edgekit.testing.conformance import RuntimeConformance

    class TestMyRuntime(RuntimeConformance):
        runtime = "myrt"

The suite builds each case of :mod:`edgekit.testing.cases` in every format the runtime
reads (natively or by converting), runs it through :func:`edgekit.load` and compares
with the numpy reference: output names and order, dtypes, shapes and values within the
case's tolerance. Known failures are data in ``runtimes/<name>.toml``
(``[conformance.known_failures]``, ``"case/format" = "reason"``), never silent skips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES, Case

__all__ = ["RuntimeConformance", "build_model", "check_case", "conformance_params", "known_failures"]


def build_model(case: str, fmt: str, folder: Path) -> Path:
    """Write case ``case`` in format ``fmt`` under ``folder`` (cached by file name)."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = {"onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml", "mnn": ".mnn"}[fmt]
    path = folder / f"{case}{suffix}"
    if path.exists():
        return path
    if fmt == "onnx":
        from edgekit.testing.onnx_models import build_onnx

        return build_onnx(case, path)
    if fmt == "tflite":
        from edgekit.testing.tflite_models import build_tflite

        return build_tflite(case, path)
    onnx_path = build_model(case, "onnx", folder)
    if fmt == "openvino":
        import openvino as ov

        ov.save_model(ov.Core().read_model(str(onnx_path)), str(path), compress_to_fp16=False)
        return path
    if fmt == "mnn":
        from edgekit.runtimes.mnn import convert_to_mnn

        convert_to_mnn(onnx_path, path)
        return path
    raise ValueError(f"unknown format {fmt!r}")


def known_failures(runtime: str) -> dict[str, str]:
    """``{"case/format": reason}`` recorded for ``runtime`` in its catalog TOML."""
    return dict(get_runtime(runtime).info.conformance.get("known_failures", {}))


def _formats(runtime: str) -> list[str]:
    info = get_runtime(runtime).info
    return list(info.formats) + [f for f in info.converts if f not in info.formats]


def conformance_params(runtimes: list[str]) -> list[tuple[str, str, str]]:
    """``(runtime, case, format)`` triples for pytest parametrisation."""
    return [(rt, case, fmt) for rt in runtimes for fmt in _formats(rt) for case in CASES]


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
    """Run one conformance case; raise AssertionError describing the first mismatch."""
    import edgekit

    case = CASES[case_name]
    path = build_model(case_name, fmt, folder)
    where = f"{runtime}/{case_name}/{fmt}"
    with edgekit.load(path, runtime=runtime, **load_options) as m:
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


class RuntimeConformance:
    """Subclass with ``runtime = "<name>"`` in a pytest module to run the whole suite."""

    runtime: str = ""

    def test_conformance(self, tmp_path_factory: Any) -> None:
        import pytest

        if not get_runtime(self.runtime).is_installed():
            pytest.fail(f"runtime {self.runtime!r} is not installed: {get_runtime(self.runtime).info.install_hint}")
        folder = tmp_path_factory.mktemp("conformance")
        expected_fail = known_failures(self.runtime)
        problems = []
        for fmt in _formats(self.runtime):
            for case in CASES:
                key = f"{case}/{fmt}"
                try:
                    check_case(self.runtime, case, fmt, folder / fmt)
                except Exception as exc:
                    if key not in expected_fail:
                        problems.append(f"{key}: {type(exc).__name__}: {exc}")
                else:
                    if key in expected_fail:
                        problems.append(f"{key}: passes now; remove it from the known failures")
        assert not problems, "\n".join(problems)
