"""Bounds-checked reading of flatbuffers (TFLite, MNN), for files no native library has seen yet.

The generated Python accessors of flatbuffers check nothing, and ``struct`` silently wraps
negative offsets; :class:`Reader` checks every offset, vtable, vector and string against the
file like the C++ ``flatbuffers::Verifier`` does, and spends a work budget linear in the file
size so that crafted files that alias the same data over and over cannot make it hang.
Problems raise the ``error`` class given to the reader, with where and why.

Example::

    r = Reader(data, error=SchemaViolation)
    root = r.table(r.deref(0, "root offset"), "model")
    version = root.scalar(0, "I")              # field slot 0, uint32
    for sub in root.tables(2, "subgraphs"):    # vector of tables in slot 2
        shape = sub.ints(1, "inputs")
"""

from __future__ import annotations

import struct

__all__ = ["Reader", "Table"]


class Reader:
    """Bounds-checked flatbuffer access with a work budget linear in the file size."""

    def __init__(self, data: bytes, error: type[Exception] = ValueError) -> None:
        self.error = error
        self.data = data
        self.n = len(data)
        self.work = 0
        # real models need one read per 20-3000 bytes; a file needing more aliases its own data
        self.limit = self.n // 8 + 4096

    def spend(self, units: int, what: str) -> None:
        self.work += units
        if self.work > self.limit:
            raise self.error(f"{what}: the file refers to the same data over and over "
                             f"(more than {self.limit} reads for {self.n} bytes)")

    def unpack(self, fmt: str, pos: int, what: str) -> tuple:
        if pos < 0 or pos + struct.calcsize(fmt) > self.n:
            raise self.error(f"{what}: reads bytes {pos}..{pos + struct.calcsize(fmt)} of a {self.n}-byte file")
        return struct.unpack_from(fmt, self.data, pos)

    def deref(self, pos: int, what: str) -> int:
        (off,) = self.unpack("<I", pos, what)
        if off == 0 or off >= 1 << 31 or pos + off >= self.n:
            raise self.error(f"{what}: offset {off} at byte {pos} points outside the {self.n}-byte file")
        return pos + off

    def table(self, pos: int, what: str) -> Table:
        self.spend(1, what)
        if pos % 4:
            raise self.error(f"{what}: table at byte {pos} is not 4-byte aligned")
        (soff,) = self.unpack("<i", pos, what)
        vt = pos - soff
        if vt < 0 or vt % 2 or vt + 4 > self.n:
            raise self.error(f"{what}: vtable at byte {vt} is outside the {self.n}-byte file")
        vsize, tsize = self.unpack("<HH", vt, what)
        if vsize < 4 or vsize % 2 or vt + vsize > self.n or tsize < 4 or pos + tsize > self.n:
            raise self.error(f"{what}: vtable sizes {vsize}/{tsize} at byte {vt} are invalid")
        # every field the vtable declares, read or not, must start inside the table
        offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", self.data, vt + 4)
        if offsets and (max(offsets) >= tsize or 0 < min(o or 4 for o in offsets) < 4):
            raise self.error(f"{what}: a field offset in the vtable at byte {vt} lies outside its "
                             f"{tsize}-byte table")
        return Table(self, pos, vt, vsize, tsize, what)

    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        if pos % 4:
            raise self.error(f"{what}: vector at byte {pos} is not 4-byte aligned")
        (count,) = self.unpack("<I", pos, what)
        if pos + 4 + count * max(elem, 1) > self.n:
            raise self.error(f"{what}: vector of {count} x {elem} bytes at byte {pos} runs past the "
                             f"end of the {self.n}-byte file")
        return pos + 4, count

    def string(self, pos: int, what: str) -> str:
        start, count = self.vector(pos, 1, what)
        if start + count >= self.n or self.data[start + count] != 0:
            raise self.error(f"{what}: string at byte {pos} has no terminating zero inside the file")
        try:
            return self.data[start : start + count].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"{what}: string at byte {pos} is not UTF-8 ({exc.reason})") from exc


class Table:
    __slots__ = ("r", "pos", "vt", "vsize", "tsize", "what")

    def __init__(self, r: Reader, pos: int, vt: int, vsize: int, tsize: int, what: str) -> None:
        self.r, self.pos, self.vt, self.vsize, self.tsize, self.what = r, pos, vt, vsize, tsize, what

    def field(self, slot: int, size: int) -> int:
        """Absolute position of field ``slot`` (``size`` bytes), or 0 when absent."""
        vo = 4 + 2 * slot
        if vo + 2 > self.vsize:
            return 0
        (off,) = struct.unpack_from("<H", self.r.data, self.vt + vo)
        if off == 0:
            return 0
        if off < 4 or off + size > self.tsize or (self.pos + off) % min(size, 8):
            raise self.r.error(f"{self.what}: field {slot} at offset {off} lies outside its "
                               f"{self.tsize}-byte table or is misaligned")
        return self.pos + off

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self.field(slot, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.r.data, pos)[0] if pos else default

    def target(self, slot: int, name: str) -> int:
        pos = self.field(slot, 4)
        return self.r.deref(pos, f"{self.what} {name}") if pos else 0

    def table(self, slot: int, name: str) -> Table | None:
        t = self.target(slot, name)
        return self.r.table(t, f"{self.what} {name}") if t else None

    def string(self, slot: int, name: str) -> str | None:
        t = self.target(slot, name)
        return self.r.string(t, f"{self.what} {name}") if t else None

    def vector(self, slot: int, elem: int, name: str) -> tuple[int, int]:
        t = self.target(slot, name)
        return self.r.vector(t, elem, f"{self.what} {name}") if t else (0, 0)

    def ints(self, slot: int, name: str, fmt: str = "i") -> tuple[int, ...] | None:
        t = self.target(slot, name)
        if not t:
            return None
        start, count = self.r.vector(t, struct.calcsize(fmt), f"{self.what} {name}")
        self.r.spend(count // 4, f"{self.what} {name}")
        return struct.unpack_from(f"<{count}{fmt}", self.r.data, start)

    def tables(self, slot: int, name: str) -> list[Table]:
        start, count = self.vector(slot, 4, name)
        self.r.spend(count, f"{self.what} {name}")
        return [self.r.table(self.r.deref(start + 4 * i, f"{self.what} {name}[{i}]"), f"{self.what} {name}[{i}]")
                for i in range(count)]
