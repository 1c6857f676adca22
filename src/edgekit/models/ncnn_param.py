"""ncnn's text model format (``.param`` + ``.bin``), read and checked in Python before ncnn's C++ parser sees it.

A ``.param`` file is::

    7767517                                   magic
    <layer count> <blob count>
    <type> <name> <#bottoms> <#tops> <bottom blobs...> <top blobs...> <id>=<value> ...   one line per layer

Values are ints, floats, quoted strings or arrays (``-23300-id=<n>,v1,...,vn``). :func:`parse` checks the magic,
the counts against the lines, that every bottom blob was produced by an earlier layer and that
each blob is produced once, the parameter ids (below ncnn's limit of 32) and the token lengths
(ncnn reads names into 256-byte buffers); :func:`validate` adds the ``.bin`` beside it: present,
and at least as large as the weights the layers declare. What is left (values ncnn's layers
accept and then misuse) is the crash probe's job (:mod:`edgekit.runtimes._probe`).

Example::

    param = parse(Path("det.param").read_text())
    [l.type for l in param.layers][:2]          # ['Input', 'Convolution']
    weights = validate(Path("det.param"))      # Path('det.bin')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import CorruptModelError
from edgekit.models.weights_file import weights_beside

__all__ = ["MAGIC", "NcnnLayer", "NcnnParam", "input_dims", "parse", "validate"]

MAGIC = "7767517"
_MAX_PARAM_ID = 32  # NCNN_MAX_PARAM_COUNT
_ARRAY_BASE = -23300
_MAX_TOKEN = 255  # ncnn scans names with %255s
_MAX_COUNT = 1 << 20
_MAX_BYTES = 64 << 20  # a .param is text; a larger one is not a model
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|nan)$", re.IGNORECASE)
#: layer type -> (param id of its weight element count, param id of its bias flag, param id of the output count)
_WEIGHTS = dict.fromkeys(("Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise", "InnerProduct",
                          "Convolution1D", "Convolution3D", "Deconvolution1D", "Deconvolution3D",
                          "ConvolutionDepthWise1D", "ConvolutionDepthWise3D", "DeconvolutionDepthWise1D",
                          "DeconvolutionDepthWise3D"), (6, 5, 0))


@dataclass
class NcnnLayer:
    """One layer line: its type, name, bottom and top blob names, and ``id -> value`` parameters (text)."""

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, str] = field(default_factory=dict)

    def line(self) -> str:
        """The layer as a ``.param`` line."""
        head = f"{self.type:<24} {self.name:<24} {len(self.bottoms)} {len(self.tops)}"
        blobs = " ".join(self.bottoms + self.tops)
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        return " ".join(p for p in (head, blobs, params) if p)

    def int_param(self, key: int, default: int = 0) -> int:
        """Parameter ``key`` as an int (``default`` when absent or not an int)."""
        try:
            return int(self.params.get(key, default))
        except ValueError:
            return default


@dataclass
class NcnnParam:
    """A parsed ``.param``: layers in file order and the declared blob count."""

    layers: list[NcnnLayer]
    blob_count: int

    def text(self) -> str:
        """The ``.param`` text (ncnn reads it back as the same graph)."""
        return "\n".join([MAGIC, f"{len(self.layers)} {self.blob_count}", *(layer.line() for layer in self.layers)]) + "\n"

    def inputs(self) -> list[NcnnLayer]:
        """The ``Input`` layers, in file order (ncnn's input order)."""
        return [layer for layer in self.layers if layer.type == "Input"]

    def blobs(self) -> set[str]:
        """Every blob name produced by a layer."""
        return {top for layer in self.layers for top in layer.tops}

    def outputs(self) -> list[str]:
        """Blobs no layer consumes, in the order they are produced (the graph's outputs)."""
        used = {b for layer in self.layers for b in layer.bottoms}
        return [top for layer in self.layers for top in layer.tops if top not in used]

    def weight_bytes(self) -> int:
        """A lower bound of the ``.bin`` size the layers need (weights stored as int8, the smallest ncnn reads)."""
        total = 0
        for layer in self.layers:
            if layer.type in _WEIGHTS:
                size_id, bias_id, out_id = _WEIGHTS[layer.type]
                total += max(layer.int_param(size_id), 0) + (4 * max(layer.int_param(out_id), 0)
                                                             if layer.int_param(bias_id) else 0)
        return total


def input_dims(layer: NcnnLayer) -> tuple[int, ...] | None:
    """The shape an ``Input`` layer declares in ncnn's order ((c, [d,] h, w), (h, w) or (w,)), or None.

    ncnn's ``Input`` takes ``0=w 1=h 11=d 2=c``; 0 means "any size". The rank is that of the
    outermost dimension given; ``None`` when none is given.

    >>> input_dims(NcnnLayer("Input", "in0", [], ["in0"], {0: "8", 1: "8", 2: "3"}))
    (3, 8, 8)
    >>> input_dims(NcnnLayer("Input", "in0", [], ["in0"], {0: "16"}))
    (16,)
    >>> input_dims(NcnnLayer("Input", "in0", [], ["in0"], {2: "3"}))    # any height and width
    (3, 0, 0)
    """
    w, h, d, c = (max(layer.int_param(k), 0) for k in (0, 1, 11, 2))
    if c:
        return (c, d, h, w) if d else (c, h, w)
    if h:
        return (h, w)
    return (w,) if w else None


def _value_ok(text: str) -> bool:
    return bool(_NUMBER.match(text))


def parse(text: str, where: str = ".param") -> NcnnParam:
    """Parse and check ``.param`` text; raise CorruptModelError saying what is wrong.

    >>> p = parse("7767517\\n2 2\\nInput in0 0 1 in0 0=4\\nReLU relu 1 1 in0 out0\\n")
    >>> p.outputs(), p.blob_count
    (['out0'], 2)
    >>> parse("7767516\\n0 0\\n")
    Traceback (most recent call last):
    ...
    edgekit.errors.CorruptModelError: .param: not a valid ncnn model (first line '7767516', expected the magic number 7767517). The file may be truncated or damaged: re-export or re-download it (ncnn's .param + .bin pair).
    """
    def bad(what: str) -> CorruptModelError:
        return CorruptModelError(f"{where}: not a valid ncnn model ({what}). The file may be truncated or damaged: "
                                 "re-export or re-download it (ncnn's .param + .bin pair).")

    lines = [ln.split() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0] != [MAGIC]:
        first = " ".join(lines[0])[:40] if lines else ""
        raise bad(f"first line {first!r}, expected the magic number {MAGIC}")
    if len(lines) < 2 or len(lines[1]) != 2 or not all(t.isdigit() for t in lines[1]):
        raise bad("second line must be '<layer count> <blob count>'")
    layer_count, blob_count = (int(t) for t in lines[1])
    if not 0 < layer_count <= _MAX_COUNT or not 0 < blob_count <= _MAX_COUNT:
        raise bad(f"{layer_count} layers and {blob_count} blobs; expected 1 to {_MAX_COUNT} of each")
    body = lines[2:]
    if len(body) != layer_count:
        raise bad(f"the header declares {layer_count} layers, the file has {len(body)} layer lines")
    layers: list[NcnnLayer] = []
    produced: set[str] = set()
    for no, tokens in enumerate(body, start=3):
        if len(tokens) < 4 or not tokens[2].isdigit() or not tokens[3].isdigit():
            raise bad(f"line {no}: expected '<type> <name> <#bottoms> <#tops> ...'")
        nb, nt = int(tokens[2]), int(tokens[3])
        if nb > blob_count or nt > blob_count or len(tokens) < 4 + nb + nt:
            raise bad(f"line {no}: layer {tokens[1][:40]!r} declares {nb} inputs and {nt} outputs, more than the "
                      "line or the blob count holds")
        blobs = tokens[4:4 + nb + nt]
        if any(len(t) > _MAX_TOKEN for t in tokens[:2] + blobs):
            raise bad(f"line {no}: a name longer than {_MAX_TOKEN} characters")
        bottoms, tops = blobs[:nb], blobs[nb:]
        missing = [b for b in bottoms if b not in produced]
        if missing:
            raise bad(f"line {no}: layer {tokens[1][:40]!r} reads blob {missing[0][:40]!r}, which no earlier layer "
                      "produces")
        again = [t for t in tops if t in produced] + [t for i, t in enumerate(tops) if t in tops[:i]]
        if again:
            raise bad(f"line {no}: blob {again[0][:40]!r} is produced twice")
        produced.update(tops)
        params: dict[int, str] = {}
        for tok in tokens[4 + nb + nt:]:
            key, eq, value = tok.partition("=")
            if not eq or not re.fullmatch(r"-?\d+", key):
                raise bad(f"line {no}: parameter {tok[:40]!r} is not '<id>=<value>'")
            pid = int(key)
            real = _ARRAY_BASE - pid if pid <= _ARRAY_BASE else pid
            if not 0 <= real < _MAX_PARAM_ID:
                raise bad(f"line {no}: parameter id {pid} is outside ncnn's 0..{_MAX_PARAM_ID - 1} (arrays: "
                          f"{_ARRAY_BASE}-id)")
            if len(value) >= 2 and value[0] == value[-1] == '"' and '"' not in value[1:-1]:
                params[pid] = value  # a string (e.g. Reshape's shape expression)
                continue
            items = value.split(",")
            if pid <= _ARRAY_BASE:
                if not items[0].isdigit() or int(items[0]) != len(items) - 1:
                    raise bad(f"line {no}: array parameter {pid} declares {items[0][:12]} values, has {len(items) - 1}")
                items = items[1:]
            elif len(items) != 1:
                raise bad(f"line {no}: parameter {pid} holds a list; arrays use the id {_ARRAY_BASE - pid}")
            if not all(_value_ok(v) for v in items):
                raise bad(f"line {no}: parameter {pid} has a non-numeric value {value[:40]!r}")
            params[pid] = value
        layers.append(NcnnLayer(tokens[0], tokens[1], bottoms, tops, params))
    if len(produced) > blob_count:
        raise bad(f"the layers produce {len(produced)} blobs, the header declares {blob_count}")
    if not any(layer.type == "Input" for layer in layers):
        raise bad("no Input layer")
    return NcnnParam(layers, blob_count)


def validate(path: Path) -> Path:
    """Check ``path`` (a ``.param``) and the ``.bin`` beside it; return the ``.bin``'s path."""
    weights = weights_beside(path, "an ncnn model")
    if path.stat().st_size > _MAX_BYTES:
        raise CorruptModelError(f"{path}: {path.stat().st_size} bytes is too large for an ncnn .param (text); "
                                "expected the .param of a .param + .bin pair.")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as exc:
        raise CorruptModelError(f"{path}: not a valid ncnn model (the .param is not ASCII text; ncnn's binary "
                                ".param.bin is not read by edgekit). Re-export the model as text.") from exc
    param = parse(text, str(path))
    need, have = param.weight_bytes(), weights.stat().st_size
    if have < need:
        raise CorruptModelError(f"{weights}: {have} bytes, but the layers of {path.name} need at least {need}. The "
                                "weights file is truncated or belongs to another model: re-export or re-download it.")
    return weights
