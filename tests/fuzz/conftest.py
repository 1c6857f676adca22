"""Fuzz and hardening tests: seeded, bounded for CI (the whole folder runs in about a minute on 2 cores).

Every test here that loads a damaged model does it in a worker process
(:func:`edgekit.testing.fuzz.fuzz_runtime`), so a crash is a failed assertion naming the file,
not a dead test run. ``benchmarks/robustness.py`` runs the same machinery at full size.

Caches. A test that asks for ``fuzz_env`` gets a private ``EDGEKIT_CACHE`` (MNN conversions and
probe verdicts of damaged files stay out of the user's cache): in its worker processes through the
returned environment, and in this process for the test's duration only. Everything else — the real
models the mutants are seeded from among them — uses the shared cache (``~/.cache/edgekit`` or the
``EDGEKIT_CACHE`` the run started with), so their wheels are fetched once, not on every run. A real
model that cannot be fetched skips the test that needs it, with the reason (``EDGEKIT_FUZZ_REAL=0``
fuzzes without them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.testing.fuzz import seed_models, write_mutants

SEED = 20260601
ENV = "EDGEKIT_CACHE"
#: the cache the run started with (None: the default), read before any fixture changes the environment
_SHARED = os.environ.get(ENV)

#: real models :func:`edgekit.testing.fuzz.seed_models` adds to the seeds of each format
REAL_SEEDS = {"onnx": ("ppocr-cls",), "tflite": ("blazeface",), "mnn": ("ppocr-cls", "blazeface")}


@pytest.fixture(scope="session")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a private EDGEKIT_CACHE, for worker processes (and, through the autouse fixture
    below, for this process during each test that asks for it)."""
    cache = tmp_path_factory.mktemp("fuzz-cache")
    _with_tools(cache)
    return {ENV: str(cache)}


def _with_tools(cache: Path) -> None:
    """Converters fetched from pinned wheels (pnnx for ncnn) are copied in: the private cache is for what
    edgekit derives from the mutants, not for re-downloading tools."""
    from edgekit.errors import ModelFetchError
    from edgekit.runtimes.ncnn_convert import copy_pnnx, fetch_pnnx

    try:
        fetch_pnnx()
    except ModelFetchError:  # offline with nothing cached: ncnn's ONNX cases skip, saying why (not_ready)
        return
    copy_pnnx(cache)


@pytest.fixture(autouse=True)
def _private_cache_in_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point this process at the private cache while a test that uses ``fuzz_env`` runs, and only then."""
    if "fuzz_env" not in request.fixturenames:
        yield
        return
    env: dict[str, str] = request.getfixturevalue("fuzz_env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, env[ENV])
        yield


@pytest.fixture(scope="session")
def shared_cache() -> str | None:
    """The EDGEKIT_CACHE the run started with (None: the default, ``~/.cache/edgekit``)."""
    return _SHARED


def fetch_errors(names: tuple[str, ...]) -> dict[str, str]:
    """The real models among ``names`` that cannot be fetched (nor found in the cache), with why."""
    from edgekit.testing.real_models import fetch

    out = {}
    for name in names:
        try:
            fetch(name)
        except Exception as exc:  # the reason is the message
            out[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return out


@pytest.fixture(scope="session")
def mutant_paths(tmp_path_factory: pytest.TempPathFactory, shared_cache: str | None):
    """``mutant_paths(fmt, count) -> [path, ...]``: seeded mutants of the project's and the real models.

    The real models come from the shared cache even inside a test that has a private one; one that
    cannot be fetched skips the calling test with the reason, unless ``EDGEKIT_FUZZ_REAL=0``.
    """
    root = tmp_path_factory.mktemp("mutants")
    made: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}

    def get(fmt: str, count: int) -> list[str]:
        if fmt in skipped:
            pytest.skip(skipped[fmt])
        if fmt not in made or len(made[fmt]) < count:
            real = os.environ.get("EDGEKIT_FUZZ_REAL", "1") != "0"
            with pytest.MonkeyPatch.context() as mp:
                if shared_cache is None:
                    mp.delenv(ENV, raising=False)
                else:
                    mp.setenv(ENV, shared_cache)
                missing = fetch_errors(REAL_SEEDS[fmt]) if real else {}
                if not missing:
                    seeds = seed_models(fmt, root / "seeds", real=real)
                    missing = {n: "fetched, but not among the seeds" for n in REAL_SEEDS[fmt] if real and n not in seeds}
            if missing:
                skipped[fmt] = (f"real model(s) for the {fmt} fuzz seeds unavailable: "
                                + "; ".join(f"{n}: {why}" for n, why in missing.items())
                                + ". Fetch them once with network access (python samples/fetch_models.py), or set "
                                "EDGEKIT_FUZZ_REAL=0 to fuzz the project's own models only.")
                pytest.skip(skipped[fmt])
            made[fmt] = write_mutants(seeds, fmt, count, SEED, root / fmt)
        return made[fmt][:count]

    return get


@pytest.fixture(scope="session")
def seeds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seeds")
