"""Seeded mutations of model files, for fuzzing edgekit's loaders and the runtimes behind them.

Byte-level mutations work on any format: ``truncate``, ``bitflip``, ``bytes`` (interesting
byte values), ``splice`` (the head of one model and the tail of another), ``random`` (random
bytes, sometimes behind the format's magic), ``empty`` (zero length) and ``huge`` (a
4-byte-aligned word overwritten with a huge or negative size: flatbuffer offsets, vector
lengths and dims). ONNX gets ``proto`` mutations too: the file still parses, but dims,
data types, raw data, attributes, op types, names, opsets or external-data locations are
damaged — what a protobuf parser cannot catch.

Every mutant is a pure function of ``(seed, index)``, so a failing case can be rebuilt.

Example::

    seeds = {"conv": Path("conv.onnx").read_bytes()}
    for case in mutants(seeds, "onnx", 100, seed=1):
        path = folder / f"{case.name}.onnx"
        path.write_bytes(case.data)
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["BYTE_KINDS", "Mutant", "mutants", "mutate_bytes", "mutate_onnx"]

BYTE_KINDS = ("truncate", "bitflip", "bytes", "splice", "random", "empty", "huge")
_MAGIC = {"tflite": (4, b"TFL3")}
_HUGE32 = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x40000000, 0x10000000, 1 << 20, 0xFFFF, 0)
_HUGE64 = (1 << 31, 1 << 40, (1 << 62) + 1, -1, -(1 << 40), 0, 3 << 30, 65536)
_INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


@dataclass(frozen=True)
class Mutant:
    """One mutated model: ``name`` is unique and says how it was made."""

    name: str
    kind: str
    seed_model: str
    data: bytes


def mutate_bytes(data: bytes, kind: str, rng: random.Random, *, other: bytes = b"", fmt: str = "") -> bytes:
    """Apply one byte-level mutation ``kind`` (see :data:`BYTE_KINDS`)."""
    buf = bytearray(data)
    n = len(buf)
    if kind == "empty" or n == 0:
        return b""
    if kind == "truncate":
        return bytes(buf[: rng.randrange(n)])
    if kind == "bitflip":
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if kind == "bytes":
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(n)] = rng.choice(_INTERESTING)
        return bytes(buf)
    if kind == "splice":
        other = other or data
        return bytes(buf[: rng.randrange(n)]) + other[rng.randrange(len(other)):] if other else bytes(buf)
    if kind == "random":
        size = rng.choice((1, 7, 16, 64, 256, 4096, min(n, 1 << 16)))
        out = bytearray(rng.getrandbits(8) for _ in range(size))
        if fmt in _MAGIC and size >= 8 and rng.random() < 0.5:
            at, magic = _MAGIC[fmt]
            out[at : at + len(magic)] = magic
        return bytes(out)
    if kind == "huge":
        for _ in range(rng.randint(1, 2)):
            pos = rng.randrange(0, max(n - 4, 1), 4)
            buf[pos : pos + 4] = rng.choice(_HUGE32).to_bytes(4, "little")
        return bytes(buf)
    raise ValueError(f"unknown mutation {kind!r}; known: {BYTE_KINDS}")


def mutate_onnx(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A mutation that keeps the ONNX protobuf parseable; returns ``(what, bytes)``."""
    import onnx

    model = onnx.load_from_string(data)
    g = model.graph
    choices = ["init_dims", "init_raw", "init_type", "attr", "op_type", "rename", "io_dims", "io_type", "opset",
               "drop", "external", "duplicate"]
    what = rng.choice(choices)
    inits = list(g.initializer)
    if what.startswith("init") and not inits:
        what = "attr"
    if what == "init_dims":
        t = rng.choice(inits)
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(_HUGE64)
        else:
            t.dims.append(rng.choice(_HUGE64))
    elif what == "init_raw":
        t = rng.choice(inits)
        raw = bytearray(t.raw_data)
        if raw:
            op = rng.randrange(3)
            if op == 0:
                raw = raw[: rng.randrange(len(raw))]
            elif op == 1:
                raw += bytes(rng.randrange(1, 64))
            else:
                for _ in range(rng.randint(1, 16)):
                    raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            t.raw_data = bytes(raw)
        else:
            t.raw_data = bytes(rng.randrange(0, 64))
    elif what == "init_type":
        rng.choice(inits).data_type = rng.randrange(0, 27)
    elif what == "attr":
        nodes = [n for n in g.node if n.attribute]
        if nodes:
            a = rng.choice(rng.choice(nodes).attribute)
            if a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice(_HUGE64)
            elif a.type == onnx.AttributeProto.INT:
                a.i = rng.choice(_HUGE64)
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice((float("nan"), float("inf"), -1e30, 0.0))
            else:
                a.type = rng.randrange(0, 15)
        else:
            g.node[rng.randrange(len(g.node))].op_type = "Conv"
    elif what == "op_type":
        node = rng.choice(g.node)
        node.op_type = rng.choice(("Conv", "Gemm", "Reshape", "Loop", "If", "Resize", "NoSuchOp", "", "Scan",
                                   "ConstantOfShape", "Expand", "TopK", "NonZero"))
        if rng.random() < 0.2:
            node.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "evil.domain"))
    elif what == "rename":
        node = rng.choice(g.node)
        seq = node.input if (node.input and rng.random() < 0.6) else node.output
        if seq:
            seq[rng.randrange(len(seq))] = rng.choice(("", "missing", g.input[0].name, g.output[0].name))
    elif what in ("io_dims", "io_type"):
        vi = rng.choice(list(g.input) + list(g.output))
        tt = vi.type.tensor_type
        if what == "io_type":
            tt.elem_type = rng.randrange(0, 27)
        elif tt.shape.dim:
            d = tt.shape.dim[rng.randrange(len(tt.shape.dim))]
            d.dim_value = rng.choice(_HUGE64)
        else:
            tt.shape.dim.add().dim_value = rng.choice(_HUGE64)
    elif what == "opset":
        model.opset_import[0].version = rng.choice((0, 1, 6, 99, 1 << 40))
    elif what == "drop":
        seq = g.initializer if (inits and rng.random() < 0.5) else g.node
        if len(seq) > 1 or seq is g.initializer:
            del seq[rng.randrange(len(seq))]
    elif what == "external" and inits:
        t = rng.choice(inits)
        t.data_location = onnx.TensorProto.EXTERNAL
        t.ClearField("raw_data")
        entry = t.external_data.add()
        entry.key, entry.value = "location", rng.choice(("../../../etc/passwd", "/etc/passwd", "missing.bin"))
    elif what == "duplicate":
        g.node.append(rng.choice(g.node))
    return what, model.SerializeToString()


def mutants(seeds: Mapping[str, bytes], fmt: str, count: int, *, seed: int = 0,
            proto_share: float = 0.4) -> Iterator[Mutant]:
    """``count`` mutants of the models in ``seeds`` (name -> bytes), cycling through the mutation kinds.

    For ONNX, ``proto_share`` of them are protobuf-level mutations that still parse.
    """
    names = sorted(seeds)
    for i in range(count):
        rng = random.Random(f"{seed}:{fmt}:{i}")
        base = names[i % len(names)]
        data = seeds[base]
        if fmt == "onnx" and rng.random() < proto_share:
            try:
                what, out = mutate_onnx(data, rng)
            except Exception:  # noqa: BLE001 - a seed the mutator cannot handle: fall back to bytes
                what, out = "bitflip", mutate_bytes(data, "bitflip", rng)
            kind = f"proto-{what}"
        else:
            kind = BYTE_KINDS[(i // max(len(names), 1)) % len(BYTE_KINDS)]
            other = seeds[names[rng.randrange(len(names))]]
            out = mutate_bytes(data, kind, rng, other=other, fmt=fmt)
        yield Mutant(f"{i:05d}-{base}-{kind}", kind, base, out)
