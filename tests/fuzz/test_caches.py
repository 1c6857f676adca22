"""The fuzz fixtures keep their state to themselves (issue 14, item 13).

A private ``EDGEKIT_CACHE`` is for the tests that ask for one (``fuzz_env``), for their duration; the
real models the mutants are seeded from come from the shared cache, fetched once; a real model that
cannot be had is a skip with its reason, never a silent drop from the seeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENV = "EDGEKIT_CACHE"
START = os.environ.get(ENV)  # at collection, before any fixture ran
ROOT = Path(__file__).resolve().parents[2]


def test_mutants_leave_this_process_on_the_shared_cache(mutant_paths) -> None:
    """The private cache was set for the whole session as soon as mutants were made."""
    assert mutant_paths("onnx", 2)
    assert os.environ.get(ENV) == START


def test_real_seeds_come_from_the_shared_cache(mutant_paths, fuzz_env: dict[str, str]) -> None:
    """The ~50 MB of model wheels were fetched again into the private cache on every run."""
    assert os.environ[ENV] == fuzz_env[ENV]  # this test asked for the private cache: it has it, here too
    assert mutant_paths("tflite", 2)
    private = Path(fuzz_env[ENV])
    assert not (private / "wheels").exists() and not (private / "models").exists(), sorted(private.iterdir())


def test_a_real_model_that_cannot_be_fetched_is_a_visible_skip(tmp_path: Path) -> None:
    """Offline, with nothing cached, the real models dropped out of the seeds silently and the test passed."""
    env = {**os.environ, ENV: str(tmp_path / "empty-cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "",
           "EDGEKIT_FUZZ_REAL": "1"}
    case = "tests/fuzz/test_model_files.py::test_mutants_end_in_a_typed_error_or_a_correct_load[onnx-onnxruntime]"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", case],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    out = proc.stdout + proc.stderr
    assert "1 skipped" in out, out[-3000:]
    assert "ppocr-cls" in out and "EDGEKIT_FUZZ_REAL=0" in out, out[-3000:]
