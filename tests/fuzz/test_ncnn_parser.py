"""Hostile ncnn models: the Python checks of a .param, and mutated .param/.bin pairs loaded through ncnn.

ncnn's C++ parser had never seen hostile input. The Python parser must end every mutated text
in a parsed graph or a CorruptModelError; every mutated pair loaded through ``edgekit.load``
(in worker processes, the probe on) must end in a typed error or a correct load: no crash,
no hang, no untyped exception.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.errors import CorruptModelError
from edgekit.models.ncnn_param import parse
from edgekit.registry import get_runtime
from edgekit.testing.fuzz import BAD_OUTCOMES, fuzz_runtime, summarize

SEED = 20261129
_PARAM = """7767517
5 5
Input                    in0                      0 1 in0 0=8 1=8 2=3
Convolution              conv_0                   1 1 in0 1 0=4 1=3 11=3 12=1 13=1 14=1 2=1 3=1 4=1 5=1 6=108 9=1
Split                    split_0                  1 2 1 2 3
BinaryOp                 add_0                    2 1 2 3 4 0=0
Reshape                  reshape_0                1 1 4 out0 0=-1 6="1,1,//(96,0n),0n"
"""


def _mutate_text(text: str, rng: random.Random) -> str:
    tokens = text.split(" ")
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(6)
    if kind == 0:  # a number replaced by an extreme one
        idx = [i for i, t in enumerate(tokens) if any(c.isdigit() for c in t)]
        i = rng.choice(idx)
        key, eq, _ = tokens[i].partition("=")
        value = str(rng.choice([0, -1, -23300, -23331, 2**31 - 1, 2**31, 65536, rng.randrange(-100, 10**6)]))
        tokens[i] = f"{key}={value}" if eq else value
        return " ".join(tokens)
    if kind == 1:  # a line dropped or doubled
        i = rng.randrange(len(lines))
        return "".join(lines[:i] + ([lines[i]] * 2 if rng.random() < 0.5 else []) + lines[i + 1:])
    if kind == 2:  # a blob name swapped for another token
        i = rng.randrange(len(tokens))
        tokens[i] = rng.choice(tokens)
        return " ".join(tokens)
    if kind == 3:  # bytes flipped
        data = bytearray(text.encode())
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(32, 127)
        return data.decode("ascii", "replace")
    if kind == 4:  # cut short
        return text[: rng.randrange(len(text))]
    return text.replace("Convolution ", rng.choice(["Deconvolution ", "Pooling ", "InnerProduct ", "Crop "]), 1)


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_the_param_parser_ends_in_a_graph_or_a_corrupt_model_error(seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    text = _PARAM
    for _ in range(rounds):
        text = _mutate_text(text, rng)
    try:
        param = parse(text)
    except CorruptModelError as exc:
        assert "not a valid ncnn model" in str(exc)
        return
    assert parse(param.text()).text() == param.text()  # what it writes back, it reads back the same


def _write_mutants(seed_param: Path, count: int, folder: Path) -> list[str]:
    """Seeded mutants of a .param/.bin pair: the .param mutated as text, or the .bin cut or bit-flipped."""
    rng = random.Random(SEED)
    text, weights = seed_param.read_text(), seed_param.with_suffix(".bin").read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        param = folder / f"m{i:03d}.param"
        if i % 3 == 2:
            data = bytearray(weights)
            if rng.random() < 0.5:
                data = data[: rng.randrange(len(data))]
            else:
                for _ in range(rng.randrange(1, 64)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            param.write_text(text)
            param.with_suffix(".bin").write_bytes(bytes(data))
        else:
            mutated = text
            for _ in range(rng.randrange(1, 3)):
                mutated = _mutate_text(mutated, rng)
            param.write_text(mutated, errors="replace")
            param.with_suffix(".bin").write_bytes(weights)
        paths.append(str(param))
    return paths


@pytest.mark.skipif(not get_runtime("ncnn").is_installed(), reason="needs `pip install 'edgekit[ncnn]'`")
def test_mutated_pairs_end_in_a_typed_error_or_a_correct_load(tmp_path: Path, fuzz_env: dict[str, str]) -> None:
    from edgekit.models.formats import open_model
    from edgekit.models.sample import sample_model
    from edgekit.runtimes.ncnn_convert import convert_to_ncnn, fetch_pnnx

    binary = fetch_pnnx()  # into the default cache; the worker's private cache needs no converter: pairs are native
    assert binary.is_file()
    seed = tmp_path / "seed" / "sample.param"
    seed.parent.mkdir()
    convert_to_ncnn(open_model(sample_model("onnx")), seed, seed.with_suffix(".bin"))
    paths = _write_mutants(seed, 36, tmp_path / "mutants")
    results = fuzz_runtime(paths, "ncnn", case_timeout=30, env=fuzz_env)
    bad = [f"{r.outcome}: {r.path} ({r.error}: {r.message[:300]})" for r in results if r.outcome in BAD_OUTCOMES]
    assert not bad, f"{len(bad)} of {len(results)} ncnn mutants were not handled:\n" + "\n".join(bad)
    counts = summarize(results)
    assert counts["rejected"] and counts["loaded"], counts
    shutil.rmtree(tmp_path / "mutants", ignore_errors=True)
