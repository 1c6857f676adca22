"""Fuzz and hardening tests: seeded, bounded for CI (the whole folder runs in about a minute on 2 cores).

Every test here that loads a damaged model does it in a worker process
(:func:`edgekit.testing.fuzz.fuzz_runtime`), so a crash is a failed assertion naming the file,
not a dead test run. ``benchmarks/robustness.py`` runs the same machinery at full size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.testing.fuzz import seed_models, write_mutants

SEED = 20260601


@pytest.fixture(scope="session")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private EDGEKIT_CACHE for the session (MNN conversions, probe verdicts), here and in workers."""
    cache = tmp_path_factory.mktemp("fuzz-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(cache))
        yield {"EDGEKIT_CACHE": str(cache)}


@pytest.fixture(scope="session")
def mutant_paths(tmp_path_factory: pytest.TempPathFactory, fuzz_env: dict[str, str]):
    """``mutant_paths(fmt, count) -> [path, ...]``: seeded mutants of the project's and the real models."""
    root = tmp_path_factory.mktemp("mutants")
    made: dict[str, list[str]] = {}

    def get(fmt: str, count: int) -> list[str]:
        if fmt not in made or len(made[fmt]) < count:
            real = os.environ.get("EDGEKIT_FUZZ_REAL", "1") != "0"
            made[fmt] = write_mutants(seed_models(fmt, root / "seeds", real=real), fmt, count, SEED, root / fmt)
        return made[fmt][:count]

    return get


@pytest.fixture(scope="session")
def seeds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seeds")
