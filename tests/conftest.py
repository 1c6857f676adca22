"""Shared fixtures: conformance models are built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.testing.conformance import build_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def build(model_dir: Path):
    """``build(case, fmt) -> Path`` of a conformance model, built once per session."""
    def _build(case: str, fmt: str = "onnx") -> Path:
        return build_model(case, fmt, model_dir / fmt)
    return _build
