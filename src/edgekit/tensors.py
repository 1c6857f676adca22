"""Tensor descriptions and the input checks every runtime shares.

A :class:`TensorSpec` describes one model input or output. Dimensions are ints,
or ``None``/a string for dynamic ones. :func:`bind_inputs` turns what a user passes
(dict by name, list/tuple in order, or one array) into a dict of arrays with the
model's dtypes, allowing only lossless casts.

Example::

    spec = TensorSpec("x", (None, 3), np.dtype("float32"))
    bind_inputs([spec], np.ones((2, 3), np.float32))     # {'x': array(...)}
"""

from __future__ import annotations

import functools
import math
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.errors import InputError, InvalidOptionError

__all__ = ["Dim", "TensorSpec", "align_like", "bind_inputs", "check_input_size", "concrete_dims", "max_input_bytes",
           "random_array"]

Dim = int | str | None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model.

    ``quantization`` is ``(scale, zero_point)`` for a quantized tensor, else ``None``.
    """

    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype
    quantization: tuple[float, int] | None = None
    layout: str | None = field(default=None, compare=False)

    @property
    def is_dynamic(self) -> bool:
        """True when any dimension is unknown until run time."""
        return any(not isinstance(d, int) or d < 0 for d in self.shape)

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """True when a concrete ``shape`` fits this spec."""
        rank, fixed, expected = self._fast
        return len(shape) == rank and (fixed is None or fixed(tuple(shape)) == expected)

    @functools.cached_property
    def _fast(self) -> tuple[int, Callable[[tuple[int, ...]], Any] | None, Any]:
        """(rank, getter of the fixed dimensions, their values): the hot path of input checks."""
        idx = [i for i, d in enumerate(self.shape) if isinstance(d, int) and d >= 0]
        vals = tuple(self.shape[i] for i in idx)
        if not idx:
            return len(self.shape), None, None
        return len(self.shape), operator.itemgetter(*idx), vals if len(idx) > 1 else vals[0]

    def concrete_shape(self, fill: int = 1) -> tuple[int, ...]:
        """The shape with dynamic dimensions replaced by ``fill``."""
        return tuple(d if isinstance(d, int) and d >= 0 else fill for d in self.shape)

    def __repr__(self) -> str:  # what `print(model.inputs)` shows
        return str(self)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        q = f" q=({self.quantization[0]:g}, {self.quantization[1]})" if self.quantization else ""
        return f"{self.name}: {self.dtype}[{dims}]{q}"


def max_input_bytes() -> int:
    """The most bytes edgekit allocates for one generated or loaded input.

    ``$EDGEKIT_MAX_INPUT_MB`` when set, else a quarter of the memory available now (Linux
    ``MemAvailable``; 4 GiB where it cannot be read).

    >>> max_input_bytes() > 0
    True
    """
    explicit = os.environ.get("EDGEKIT_MAX_INPUT_MB")
    if explicit:
        try:
            return max(1, int(float(explicit) * (1 << 20)))
        except ValueError:
            raise InvalidOptionError(f"EDGEKIT_MAX_INPUT_MB={explicit!r}: expected a number of megabytes, "
                                     "e.g. EDGEKIT_MAX_INPUT_MB=2048.") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 4
    except (OSError, ValueError, IndexError):
        pass
    return 4 << 30


def check_input_size(name: str, shape: Sequence[int], dtype: np.dtype[Any], *, limit: int | None = None) -> None:
    """Raise InputError before allocating an input whose dims are not positive or whose bytes exceed the limit.

    >>> check_input_size("x", (1, 3, 224, 224), np.dtype("float32"))
    >>> check_input_size("x", (100000000000, 4), np.dtype("float32"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    edgekit.errors.InputError: input 'x' of shape (100000000000, 4) float32 would take 1600000000000 bytes...
    """
    if any(int(d) <= 0 for d in shape):
        raise InputError(f"input {name!r}: shape {tuple(shape)} has a zero or negative dimension; expected "
                         "positive sizes. Set the dynamic dimensions (e.g. --shape x=1x3x224x224).")
    need = math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize
    cap = max_input_bytes() if limit is None else limit
    if need > cap:
        raise InputError(f"input {name!r} of shape {tuple(int(d) for d in shape)} {np.dtype(dtype)} would take {need} "
                         f"bytes, over the limit of {cap} ({cap >> 20} MiB: a quarter of the free memory, or "
                         "$EDGEKIT_MAX_INPUT_MB). Use smaller dimensions (--shape), or raise EDGEKIT_MAX_INPUT_MB.")


def _format_shape(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _check_one(spec: TensorSpec, value: Any) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == spec.dtype and value.flags.c_contiguous:
        if spec.accepts(value.shape):
            return value  # the common case, checked in well under a microsecond
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"input {spec.name!r}: cannot turn a {type(value).__name__} into an array ({exc}); "
                f"expected {spec.dtype}{_format_shape(spec.shape)}. Pass a numpy array."
            ) from exc
        if arr.dtype == object:
            raise InputError(
                f"input {spec.name!r}: got a ragged or non-numeric {type(value).__name__}; "
                f"expected {spec.dtype}{_format_shape(spec.shape)}. Pass a rectangular numeric array."
            )
        # Python scalars and lists carry no dtype of their own: adopt the model's when
        # float goes to float, or when integers keep their values.
        if arr.dtype.kind == "f" and spec.dtype.kind == "f":
            arr = arr.astype(spec.dtype)
        elif arr.dtype.kind in "biu" and spec.dtype.kind in "biuf":
            with np.errstate(all="ignore"):
                as_model = arr.astype(spec.dtype)
            if np.array_equal(as_model, arr):
                arr = as_model
    if arr.dtype != spec.dtype:
        if not np.can_cast(arr.dtype, spec.dtype, casting="safe"):
            raise InputError(
                f"input {spec.name!r}: got dtype {arr.dtype}, expected {spec.dtype}; "
                f"{arr.dtype} -> {spec.dtype} is not a lossless cast. "
                f"Convert it yourself, e.g. x.astype(np.{spec.dtype.name})"
                + (" after scaling to the input's quantization." if spec.quantization else ".")
            )
        arr = arr.astype(spec.dtype)
    if arr.ndim != len(spec.shape):
        raise InputError(
            f"input {spec.name!r}: got rank {arr.ndim} shape {arr.shape}, expected rank "
            f"{len(spec.shape)} shape {_format_shape(spec.shape)}. Reshape it, e.g. x[None] to add a batch dimension."
        )
    if not spec.accepts(arr.shape):
        raise InputError(
            f"input {spec.name!r}: got shape {tuple(arr.shape)}, expected {_format_shape(spec.shape)} "
            f"('?' is any size). Resize or reshape the input to match."
        )
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def bind_inputs(specs: Sequence[TensorSpec], feeds: Any) -> dict[str, np.ndarray]:
    """Check ``feeds`` against ``specs`` and return ``{name: array}`` in model order.

    Raises :class:`~edgekit.errors.InputError` naming the tensor, what was expected
    and what was given.
    """
    if type(feeds) is np.ndarray and len(specs) == 1:
        return {specs[0].name: _check_one(specs[0], feeds)}
    if type(feeds) is dict and len(feeds) == len(specs):
        try:
            return {s.name: _check_one(s, feeds[s.name]) for s in specs}
        except KeyError:
            pass  # a wrong name: the full check below explains it
    names = [s.name for s in specs]
    if isinstance(feeds, Mapping):
        unknown = [k for k in feeds if k not in names]
        missing = [n for n in names if n not in feeds]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown input name(s) {unknown}")
            if missing:
                parts.append(f"missing {missing}")
            raise InputError(
                f"{' and '.join(parts)}; the model's inputs are "
                + ", ".join(str(s) for s in specs)
                + ". Key the dict by these names, or pass a list in this order."
            )
        return {s.name: _check_one(s, feeds[s.name]) for s in specs}
    if isinstance(feeds, (list, tuple)) and not (len(specs) == 1 and _looks_like_data(feeds)):
        if len(feeds) != len(specs):
            raise InputError(
                f"got {len(feeds)} input(s), the model takes {len(specs)}: "
                + ", ".join(str(s) for s in specs)
                + ". Pass one array per input, in this order, or a dict by name."
            )
        return {s.name: _check_one(s, v) for s, v in zip(specs, feeds)}
    if len(specs) != 1:
        raise InputError(
            f"got one array, the model takes {len(specs)} inputs: "
            + ", ".join(str(s) for s in specs)
            + ". Pass a list in this order or a dict by name."
        )
    return {specs[0].name: _check_one(specs[0], feeds)}


def _looks_like_data(seq: Sequence[Any]) -> bool:
    """A list of numbers (or of lists of numbers) is one tensor, not a list of inputs."""
    return len(seq) > 0 and not isinstance(seq[0], np.ndarray) and not hasattr(seq[0], "__array__")


def align_like(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a`` in ``b``'s shape — as is, NHWC <-> NCHW, or the same values without size-1 dims — else None.

    Runtimes disagree on layout and on unit dimensions; comparing two runtimes' outputs starts here.

    >>> align_like(np.zeros((1, 8, 8, 3)), np.zeros((1, 3, 8, 8))).shape
    (1, 3, 8, 8)
    """
    if a.shape == b.shape:
        return a
    if a.ndim == 4 and b.ndim == 4:
        for perm in ((0, 3, 1, 2), (0, 2, 3, 1)):
            if a.transpose(perm).shape == b.shape:
                return np.asarray(a.transpose(perm))
    if a.size == b.size and a.squeeze().shape == b.squeeze().shape:
        return np.asarray(a.reshape(b.shape))
    return None


def concrete_dims(spec: TensorSpec, image_side: int) -> tuple[int, ...]:
    """A concrete shape for ``spec``: dynamic dims are 1, except the height and width of an image-like
    rank-4 input (1, 3 or 4 channels first or last), which are ``image_side``.

    >>> concrete_dims(TensorSpec("x", (None, 3, None, None), np.dtype("float32")), 64)
    (1, 3, 64, 64)
    """
    dims = list(spec.shape)
    fixed = [isinstance(d, int) and d >= 0 for d in dims]
    out = [d if isinstance(d, int) and f else 1 for d, f in zip(dims, fixed)]
    if len(dims) == 4:
        last = fixed[3] and dims[3] in (1, 3, 4) and not (fixed[1] and dims[1] in (1, 3, 4))
        for i in ((1, 2) if last else (2, 3)):
            if not fixed[i]:
                out[i] = image_side
    return tuple(out)


def random_array(spec: TensorSpec, rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    """Random data for ``spec`` of ``shape``, size-checked before it is allocated.

    Floats uniform in [-1, 1) (drawn in float32, float64 only for float64 inputs: no temporary
    twice the size); quantized integers over the dtype's whole range (what the quantization can
    represent); other integers in [0, 10) (safe for indices and sizes); bools a fair coin.

    >>> x = random_array(TensorSpec("x", (2,), np.dtype("float16")), np.random.default_rng(0), (2,))
    >>> x.dtype, bool(((x >= -1) & (x <= 1)).all())
    (dtype('float16'), True)
    """
    dt = spec.dtype
    check_input_size(spec.name, shape, dt)
    if dt.kind == "f":
        x = rng.random(tuple(shape), dtype=np.float64 if dt.itemsize > 4 else np.float32)
        x *= 2.0
        x -= 1.0
        return x.astype(dt, copy=False)
    if dt.kind in "iu":
        if spec.quantization is not None:
            info = np.iinfo(dt)
            return rng.integers(info.min, info.max, tuple(shape), endpoint=True, dtype=dt)
        return rng.integers(0, 10, tuple(shape)).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, tuple(shape)).astype(bool)
    raise InputError(f"input {spec.name!r}: cannot make random {dt} data; expected a numeric or bool input. Give "
                     f"this input yourself (e.g. --input {spec.name}=file.npy).")
