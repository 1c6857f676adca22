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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import CorruptModelError, ModelNotFoundError, UnknownFormatError
from edgekit.models.weights_file import weights_beside

__all__ = ["FORMATS", "ModelFile", "a_model", "open_model", "quantize_hint"]

#: format name -> file suffixes
FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "tflite": (".tflite",),
    "openvino": (".xml",),
    "mnn": (".mnn",),
    "ncnn": (".param",),
}


@dataclass(frozen=True)
class ModelFile:
    """A model on disk whose format is known and whose structure was checked."""

    path: Path
    format: str
    weights: Path | None = None  # OpenVINO IR .bin, ncnn .bin
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


def quantize_hint(fmt: str) -> str:
    """How to get an int8 model from a ``fmt`` model, for messages.

    >>> quantize_hint("tflite")
    "the TFLite converter's full-integer post-training quantization (edgekit quantizes ONNX only)"
    """
    if fmt == "onnx":
        return "`edgekit quantize`"
    if fmt == "tflite":
        return "the TFLite converter's full-integer post-training quantization (edgekit quantizes ONNX only)"
    return "`edgekit quantize` on the ONNX model it came from"


#: how messages name each format
_TITLES = {"onnx": "an ONNX", "tflite": "a TFLite", "openvino": "an OpenVINO IR", "mnn": "an MNN", "ncnn": "an ncnn"}


def a_model(fmt: str) -> str:
    """``"an ONNX model"``: the format's name with its article, for messages."""
    return f"{_TITLES.get(fmt, f'a {fmt}')} model"


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
        raise CorruptModelError(f"{path}: the file is empty (0 bytes); expected {a_model(fmt)}. "
                                "Re-export or re-download it.")
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
    elif fmt == "ncnn":
        from edgekit.models.ncnn_param import validate as validate_ncnn

        weights = validate_ncnn(path)
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
    folder = path.parent.resolve()
    for where, tensor in _all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        locations = [entry.value for entry in tensor.external_data if entry.key == "location"]
        if len(locations) != 1:
            raise _corrupt(path, "ONNX", f"{where} is stored externally but names {len(locations)} locations")
        location = locations[0]
        ext = (folder / location).resolve()  # resolves symlinks too
        if Path(location).is_absolute() or "\\" in location or folder not in ext.parents:
            raise _corrupt(path, "ONNX", f"{where} reads external data from {location!r}, outside the model's folder "
                           "(an absolute path, '..' or a link that leads out); expected a file beside the model")
        if not ext.is_file():
            raise _corrupt(path, "ONNX", f"{where} reads external data from {location!r}, which is missing")
        external.add(ext)
    return tuple(sorted(external))


def _all_tensors(proto: Any) -> Iterator[tuple[str, Any]]:
    """Every TensorProto of a model with where it is: initializers, sparse initializers, tensor-valued
    node attributes (a Constant's ``value``/``sparse_value`` among them), in every graph — the main
    graph, If/Loop/Scan bodies and model-local functions, to any depth."""
    def sparse(where: str, st: Any) -> Iterator[tuple[str, Any]]:
        yield f"{where} (values)", st.values
        yield f"{where} (indices)", st.indices

    def graph(g: Any, where: str) -> Iterator[tuple[str, Any]]:
        for t in g.initializer:
            yield f"{where}initializer {t.name!r}", t
        for st in g.sparse_initializer:
            yield from sparse(f"{where}sparse initializer {st.values.name!r}", st)
        yield from nodes(g.node, where)

    def nodes(ns: Any, where: str) -> Iterator[tuple[str, Any]]:
        for n in ns:
            for a in n.attribute:
                here = f"{where}node {n.name or n.op_type!r} attribute {a.name!r}"
                if a.HasField("t"):
                    yield here, a.t
                for t in a.tensors:
                    yield here, t
                if a.HasField("sparse_tensor"):
                    yield from sparse(here, a.sparse_tensor)
                for st in a.sparse_tensors:
                    yield from sparse(here, st)
                if a.HasField("g"):
                    yield from graph(a.g, f"{here} subgraph: ")
                for sub in a.graphs:
                    yield from graph(sub, f"{here} subgraph: ")

    yield from graph(proto.graph, "")
    for fn in proto.functions:
        yield from nodes(fn.node, f"function {fn.name!r} ")


def _validate_tflite(path: Path) -> None:
    from edgekit.models import tflite_schema

    data = path.read_bytes()
    try:
        tflite_schema.verify(data)
    except tflite_schema.SchemaViolation as exc:
        raise _corrupt(path, "TFLite", str(exc)) from exc


def _validate_ir(path: Path) -> Path:
    import xml.etree.ElementTree as ET

    weights = weights_beside(path, "OpenVINO IR")
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
