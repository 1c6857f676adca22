"""Every registered runtime passes the shipped conformance suite, in every format it reads.

CI installs every runtime, so nothing here is skipped there: a missing runtime fails.
"""

from __future__ import annotations

import pytest

from edgekit.registry import get_runtime, runtime_names
from edgekit.testing.conformance import RuntimeConformance, check_case, conformance_params, known_failures


@pytest.mark.parametrize(("runtime", "case", "fmt"), conformance_params(runtime_names()))
def test_conformance(runtime: str, case: str, fmt: str, model_dir) -> None:
    rt = get_runtime(runtime)
    assert rt.is_installed(), f"{runtime} is not installed; CI installs all runtimes: {rt.info.install_hint}"
    reason = known_failures(runtime).get(f"{case}/{fmt}")
    if reason:
        with pytest.raises(Exception):  # noqa: B017 - a known failure must still fail, else remove it
            check_case(runtime, case, fmt, model_dir / f"{runtime}-{fmt}")
        return
    check_case(runtime, case, fmt, model_dir / fmt)


class TestShippedSuiteClass(RuntimeConformance):
    """The class plugin authors subclass works as documented (here on ONNX Runtime)."""

    runtime = "onnxruntime"
