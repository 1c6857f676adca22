"""Model files: format detection and structural validation before any native library sees them.

A garbage ``.tflite`` can crash an interpreter and a truncated ``.onnx`` can make a
runtime read past the end; :func:`open_model` checks the structure in Python first and
raises :class:`~edgekit.errors.CorruptModelError` instead.

Example::

    mf = open_model("face.tflite")
    mf.format, mf.size, mf.sha256()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import CorruptModelError, ModelNotFoundError, UnknownFormatError

__all__ = ["FORMATS", "ModelFile", "open_model"]

#: format name -> file suffixes
FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "tflite": (".tflite",),
    "openvino": (".xml",),
    "mnn": (".mnn",),
}


@dataclass(frozen=True)
class ModelFile:
    """A model on disk whose format is known and whose structure was checked."""

    path: Path
    format: str
    weights: Path | None = None  # OpenVINO IR .bin
    #: ONNX external-data files the model references (resolved, inside the model's folder), sorted by path
    external: tuple[Path, ...] = ()
    _digest: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        """Bytes on disk, weights and external data included."""
        files = [self.path, *([self.weights] if self.weights else []), *self.external]
        return sum(f.stat().st_size for f in files)

    def sha256(self) -> str:
        """Hex digest of the model and every file it references (IR weights, ONNX external data), computed once.

        Without external data it is the sha256 of the file's bytes (then the .bin's); with it, the
        sha256 of that digest followed by each external file's path (relative to the model's
        folder) and digest, in path order — so changing, renaming or swapping a data file changes it.
        """
        if "sha256" not in self._digest:
            from edgekit.cache import file_sha256

            digest = file_sha256(self.path, self.weights)
            if self.external:
                import hashlib

                h = hashlib.sha256(digest.encode())
                for ext in self.external:
                    rel = os.path.relpath(ext, self.path.parent).replace(os.sep, "/")
                    h.update(b"\0" + rel.encode() + b"\0")
                    h.update(file_sha256(ext).encode())
                digest = h.hexdigest()
            self._digest["sha256"] = digest
        return self._digest["sha256"]


def detect_format(path: Path) -> str:
    """The format name for a path, by suffix; raises UnknownFormatError."""
    suffix = path.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for ss in FORMATS.values() for s in ss)
    raise UnknownFormatError(
        f"{path}: unknown model format {suffix or '(no suffix)'!r}; edgekit reads {known} "
        "(OpenVINO IR is the .xml with its .bin beside it). Rename the file if its suffix is wrong, "
        "or convert the model (see `edgekit convert --help`)."
    )


def open_model(model: str | os.PathLike[str] | ModelFile) -> ModelFile:
    """Check that ``model`` exists, has a known format and a sound structure."""
    if isinstance(model, ModelFile):
        return model
    path = Path(model).expanduser()
    if not path.is_file():
        hint = "it is a directory; pass the model file inside it" if path.is_dir() else "check the path"
        raise ModelNotFoundError(f"model file not found: {path} ({hint}).")
    fmt = detect_format(path)
    size = path.stat().st_size
    if size == 0:
        raise CorruptModelError(f"{path}: the file is empty (0 bytes); expected a {fmt} model. Re-export or re-download it.")
    weights = None
    external: tuple[Path, ...] = ()
    if fmt == "onnx":
        external = _validate_onnx(path)
    elif fmt == "tflite":
        _validate_tflite(path)
    elif fmt == "openvino":
        weights = _validate_ir(path)
    elif fmt == "mnn":
        _validate_mnn(path)
    return ModelFile(path.resolve(), fmt, weights.resolve() if weights else None, external)


def _corrupt(path: Path, fmt: str, what: str) -> CorruptModelError:
    return CorruptModelError(
        f"{path}: not a valid {fmt} model ({what}). The file may be truncated or damaged: "
        "re-export or re-download it and compare its size and checksum with the original."
    )


def _validate_onnx(path: Path) -> tuple[Path, ...]:
    """Check the structure; return the external-data files it references (resolved, sorted, each once)."""
    import onnx  # a core dependency; protobuf parsing raises instead of crashing
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise _corrupt(path, "ONNX", f"protobuf does not parse: {exc}") from exc
    except Exception as exc:  # protobuf raises a zoo of types on garbage
        raise _corrupt(path, "ONNX", f"{type(exc).__name__}: {exc}") from exc
    if proto.ir_version <= 0 or not proto.graph.output or not proto.graph.node:
        raise _corrupt(path, "ONNX", "no IR version, nodes or graph outputs")
    from edgekit.models import onnx_rules  # values a parser accepts and native readers crash on

    why = onnx_rules.problem(proto)
    if why:
        raise _corrupt(path, "ONNX", why)
    external: set[Path] = set()
    for init in proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            for entry in init.external_data:
                if entry.key == "location":
                    ext = (path.parent / entry.value).resolve()
                    if path.parent.resolve() not in ext.parents or not ext.is_file():
                        raise _corrupt(path, "ONNX", f"external data {entry.value!r} is missing or outside the model's folder")
                    external.add(ext)
    return tuple(sorted(external))


def _validate_tflite(path: Path) -> None:
    from edgekit.models import tflite_schema

    data = path.read_bytes()
    try:
        tflite_schema.verify(data)
    except tflite_schema.SchemaViolation as exc:
        raise _corrupt(path, "TFLite", str(exc)) from exc


def _validate_ir(path: Path) -> Path:
    import xml.etree.ElementTree as ET

    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise ModelNotFoundError(
            f"{path}: OpenVINO IR needs its weights file {weights.name} beside the .xml; it is missing. "
            "Copy the .bin next to the .xml (same name)."
        )
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise _corrupt(path, "OpenVINO IR", f"XML does not parse: {exc}") from exc
    if root.tag != "net" or root.find("layers") is None:
        raise _corrupt(path, "OpenVINO IR", f"root element is <{root.tag}>, expected <net> with <layers>")
    wsize = weights.stat().st_size
    for data in root.iter("data"):
        off, size = data.get("offset"), data.get("size")
        if off is not None and size is not None:
            try:
                end = int(off) + int(size)
            except ValueError as exc:
                raise _corrupt(path, "OpenVINO IR", f"non-numeric constant offset {off!r}/{size!r}") from exc
            if int(off) < 0 or end > wsize:
                raise _corrupt(path, "OpenVINO IR", f"a constant reads bytes {off}..{end} of a {wsize}-byte .bin")
    return weights


def _validate_mnn(path: Path) -> None:
    data = path.read_bytes()
    # .mnn is a flatbuffer (MNN's Net table) without a file identifier: check the root offset.
    if len(data) < 8:
        raise _corrupt(path, "MNN", f"{len(data)} bytes is too short for a flatbuffer")
    root = int.from_bytes(data[:4], "little")
    if root < 4 or root + 4 > len(data):
        raise _corrupt(path, "MNN", f"flatbuffer root offset {root} is outside the {len(data)}-byte file")
    vtable = root - int.from_bytes(data[root : root + 4], "little", signed=True)
    if vtable < 0 or vtable + 4 > len(data):
        raise _corrupt(path, "MNN", "flatbuffer vtable is outside the file")
