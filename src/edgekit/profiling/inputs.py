"""The inputs every runtime receives: random with a fixed seed, or given by the user.

Random inputs (``seed`` 0 by default), by the tensor's dtype:

* float: uniform in [-1, 1);
* quantized integers (a TensorSpec with ``quantization``): uniform over the dtype's whole
  range, which is exactly the range the quantization can represent;
* other integers: uniform in [0, 10) (safe for indices and sizes); bool: fair coin.

Dynamic dimensions: the user's ``--shape name=1x3x640x640`` when given; else the batch
(first) dimension is 1, the height and width of an image-like input (rank 4 with 1, 3 or
4 channels first or last) are 224, and any other dynamic dimension is 1.

User inputs (``--input``): ``name=file.npy``, ``file.npz``
(arrays keyed by input name), or an image file (``name=photo.jpg`` or just ``photo.jpg`` for a
single-input model) read with OpenCV, converted BGR -> RGB (gray for one channel), resized to
the input's height and width, laid out NCHW or NHWC as the input is, and scaled to [0, 1] for
float inputs (raw 0..255 for uint8; quantized for int8); a dynamic height or width takes
``--shape`` or else the image's own size. An array's dtype follows the rule ``Predictor.run``
applies: lossless casts are made (uint8 -> float32), any other (float64 -> float32) is an
InputError naming the tensor, the expected and the given dtype.

Several samples (``edgekit tune``'s accuracy gate): :func:`input_sample_args` expands a folder
given to ``--input`` (``name=photos/`` or ``arrays/``) into one sample per file, in name order.

Example::

    specs = input_specs(open_model("det.onnx"))
    feeds, sources = make_inputs(specs, given=["x=frame.npy"], seed=0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError, InvalidOptionError, option
from edgekit.models.formats import ModelFile
from edgekit.tensors import TensorSpec, bind_inputs, check_input_size, concrete_dims, random_array

__all__ = ["adapt_layout", "default_shape", "image_input", "input_sample_args", "input_specs", "make_inputs",
           "parse_input_args", "random_input"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def input_specs(model: ModelFile, timeout: float = 60.0) -> list[TensorSpec]:
    """The model's inputs, read in Python (ONNX, TFLite) or from an isolated runtime load (other formats)."""
    from edgekit.models.model_io import model_io

    io = model_io(model)
    if io is not None:
        return io[0]
    from edgekit.errors import UnsupportedModelError
    from edgekit.isolation import IsolatedFailure, run_isolated

    res = run_isolated("edgekit.profiling.worker:describe", (str(model.path),), timeout=timeout)
    if isinstance(res, IsolatedFailure):
        raise UnsupportedModelError(
            f"cannot read the inputs of {model.path.name}: loading it failed in an isolated process "
            f"({res.describe()}). Check that a runtime that reads {model.format} is installed (`edgekit runtimes`)."
        )
    return [TensorSpec(d["name"], tuple(d["shape"]), np.dtype(d["dtype"]),
                       tuple(d["quantization"]) if d["quantization"] else None, d["layout"]) for d in res]


DEFAULT_IMAGE_SIDE = 224


def default_shape(spec: TensorSpec, given: Sequence[int] | None = None) -> tuple[int, ...]:
    """The concrete shape random data for ``spec`` gets (see the module docstring)."""
    if given is not None:
        shape = tuple(int(d) for d in given)
        if not spec.accepts(shape):
            given_as = option("shapes", {spec.name: shape}, cli_value=f"{spec.name}={'x'.join(map(str, shape))}")
            raise InputError(f"{given_as} does not fit the input's shape {spec.shape}; give one value per "
                             "dimension, matching the fixed ones.")
        return shape
    return concrete_dims(spec, DEFAULT_IMAGE_SIDE)


def random_input(spec: TensorSpec, rng: np.random.Generator, shape: Sequence[int] | None = None) -> np.ndarray:
    """One random array for ``spec`` (see the module docstring for the distributions and dynamic dimensions)."""
    return random_array(spec, rng, default_shape(spec, shape))


def _is_nhwc(spec: TensorSpec) -> bool:
    if spec.layout:
        return spec.layout.upper() == "NHWC"
    s = spec.shape
    return len(s) == 4 and s[-1] in (1, 3, 4) and s[1] not in (1, 3, 4)


def image_input(spec: TensorSpec, path: Path, shape: Sequence[int] | None = None) -> np.ndarray:
    """An image file as ``spec`` wants it (RGB, resized, NCHW/NHWC, scaled; see the module docstring).

    Dynamic height/width take ``shape`` (from ``--shape``) when given, else the image's own size.
    """
    import cv2

    if len(spec.shape) != 4:
        raise InputError(f"input {spec.name!r} has shape {spec.shape}, not an image batch [N,C,H,W] or [N,H,W,C]; "
                         f"pass a .npy file instead of the image {path.name}.")
    nhwc = _is_nhwc(spec)
    dims = list(shape) if shape is not None else list(spec.shape)
    h, w, c = (dims[1], dims[2], dims[3]) if nhwc else (dims[2], dims[3], dims[1])
    if not (isinstance(c, int) and c > 0):
        raise InputError(f"input {spec.name!r}: its channel count is dynamic ({spec.shape}); give it with "
                         f"--shape {spec.name}=1x3xHxW.")
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if c == 1 else cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"OpenCV cannot read the image {path}; expected a PNG/JPEG/BMP/... file.")
    h = h if isinstance(h, int) and h > 0 else img.shape[0]
    w = w if isinstance(w, int) and w > 0 else img.shape[1]
    check_input_size(spec.name, (1, int(h), int(w), c), np.dtype(np.float32))  # float32 is the largest step
    img = cv2.resize(img, (int(w), int(h)), interpolation=cv2.INTER_AREA)
    img = img[..., None] if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    arr = img[None] if nhwc else img.transpose(2, 0, 1)[None]
    if spec.dtype.kind == "f":
        return (arr.astype(np.float32) / 255.0).astype(spec.dtype)
    if spec.dtype == np.uint8:
        return arr.astype(np.uint8)
    if spec.quantization is not None:
        scale, zp = spec.quantization
        info = np.iinfo(spec.dtype)
        return np.clip(np.round(arr / 255.0 / scale) + zp, info.min, info.max).astype(spec.dtype)
    raise InputError(f"input {spec.name!r} is {spec.dtype}; an image can feed float, uint8 or quantized inputs only.")


def adapt_layout(spec: TensorSpec, arr: np.ndarray) -> np.ndarray:
    """``arr`` as ``spec`` takes it: as is when the shape fits, else NCHW <-> NHWC when that fits; in the input's
    dtype by the rule ``Predictor.run`` applies (:func:`edgekit.tensors.bind_inputs`): lossless casts are made,
    any other is an InputError naming the tensor, the expected and the given dtype."""
    arr = np.asarray(arr)
    if spec.accepts(arr.shape):
        return bind_inputs([spec], arr)[spec.name]
    if arr.ndim == 4:
        for perm in ((0, 2, 3, 1), (0, 3, 1, 2)):
            t = arr.transpose(perm)
            if spec.accepts(t.shape):
                return bind_inputs([spec], np.ascontiguousarray(t))[spec.name]
    raise InputError(f"input {spec.name!r}: the given array has shape {arr.shape}, expected {spec.shape} "
                     "(NCHW and NHWC are converted automatically). Reshape the data to match.")


def parse_input_args(items: Sequence[str]) -> list[tuple[str | None, Path]]:
    """``["x=a.npy", "b.npz"]`` -> ``[("x", Path("a.npy")), (None, Path("b.npz"))]``; checks the files exist."""
    out = []
    for item in items:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = "", item
        path = Path(file).expanduser()
        if not path.is_file():
            raise InvalidOptionError(f"--input {item}: no file {path}. Expected NAME=FILE.npy, FILE.npz, or an image.")
        out.append((name or None, path))
    return out


def input_sample_args(items: Sequence[str], limit: int = 32) -> list[list[tuple[str | None, Path]]]:
    """``--input`` items, folders included, as one :func:`parse_input_args` list per sample.

    A folder (``x=frames/`` or ``frames/``) gives one sample per ``.npy``/``.npz``/image file in it,
    in name order, at most ``limit``; several folders are paired in that order and must hold as
    many files; a file is used in every sample. No items: ``[]``.

    >>> input_sample_args([])
    []
    """
    fixed: list[str] = []
    folders: list[tuple[str, list[Path]]] = []
    for item in items:
        name, sep, file = item.partition("=")
        path = Path(file if sep else item).expanduser()
        if not path.is_dir():
            fixed.append(item)
            continue
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".npy", ".npz", *IMAGE_SUFFIXES))
        if not files:
            raise InvalidOptionError(f"--input {item}: the folder {path} holds no .npy, .npz or image files; expected "
                                     "one file per sample.")
        folders.append((f"{name}=" if sep else "", files[:limit]))
    if len({len(files) for _, files in folders}) > 1:
        counts = ", ".join(f"{prefix or '(unnamed)'} {len(files)}" for prefix, files in folders)
        raise InputError(f"--input folders hold different numbers of samples ({counts}); expected the same number "
                         "in each (they are paired in name order).")
    base = parse_input_args(fixed)
    if not folders:
        return [base] if base else []
    return [base + parse_input_args([f"{prefix}{files[k]}" for prefix, files in folders])
            for k in range(len(folders[0][1]))]


def _load_given(specs: list[TensorSpec], given: Sequence[tuple[str | None, Path]],
                shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[np.ndarray, str]]:
    by_name = {s.name: s for s in specs}
    out: dict[str, tuple[np.ndarray, str]] = {}
    for name, path in given:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    if key in by_name and (name is None or name == key):
                        with z.zip.open(f"{key}.npy") as member:
                            _check_npy_header(member, f"--input {path.name}[{key}]")
                        out[key] = (z[key], f"file:{path.name}[{key}]")
            continue
        if name is None:
            if len(specs) != 1:
                raise InvalidOptionError(f"--input {path}: the model has inputs {list(by_name)}; say which one, "
                                         f"e.g. --input {specs[0].name}={path}.")
            name = specs[0].name
        if name not in by_name:
            raise InputError(f"--input {name}=...: the model has no input {name!r}; its inputs are {list(by_name)}.")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            out[name] = (image_input(by_name[name], path, shapes.get(name)), f"image:{path.name}")
        else:
            with open(path, "rb") as f:
                _check_npy_header(f, f"--input {name}={path.name}")
            out[name] = (np.load(path, allow_pickle=False), f"file:{path.name}")
    return out


def _check_npy_header(f: Any, what: str) -> None:
    """Read a .npy header and refuse an array too big to load, before numpy allocates it."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f".npy format version {version[0]}.{version[1]} (edgekit reads 1.0 and 2.0)")
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{what}: not a readable .npy array ({exc}); expected a file written by numpy.save.") from exc
    check_input_size(what, shape or (1,), dtype)


def make_inputs(specs: list[TensorSpec], *, given: Sequence[tuple[str | None, Path]] = (),
                shared: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                shapes: Mapping[str, Sequence[int]] | None = None,
                ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Feeds for one model and where each came from.

    Priority: the user's ``given`` files, then ``shared`` arrays already made for another model
    file of the same run (layout adapted: the sample's ONNX and TFLite twins get the same data),
    then random data from ``seed``.
    """
    loaded = _load_given(specs, given, shapes or {})
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for spec in specs:
        if spec.name in loaded:
            arr, src = loaded[spec.name]
            feeds[spec.name], sources[spec.name] = adapt_layout(spec, arr), src
        elif shared and spec.name in shared:
            feeds[spec.name], sources[spec.name] = adapt_layout(spec, shared[spec.name]), "shared"
        else:
            feeds[spec.name] = random_input(spec, rng, (shapes or {}).get(spec.name))
            sources[spec.name] = f"random(seed={seed})" + (
                f", dynamic {_fmt(spec.shape)} set to {_fmt(feeds[spec.name].shape)} (--shape to change)"
                if spec.is_dynamic and spec.name not in (shapes or {}) else "")
    unknown = sorted(set(shapes or {}) - {s.name for s in specs})
    if unknown and not shared:
        raise InvalidOptionError(f"{option('shapes')} for {unknown}: the model has no such input; its inputs are "
                                 f"{[s.name for s in specs]}.")
    return feeds, sources


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``{name: array}`` to ``.npz`` whatever the names (``np.savez(**d)`` breaks on a tensor named ``file``)."""
    np.savez(path, *arrays.values(), __names__=np.array(list(arrays), dtype=str))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read what :func:`save_arrays` wrote, in the same order."""
    with np.load(path, allow_pickle=False) as z:
        names = [str(n) for n in z["__names__"]]
        return {n: z[f"arr_{i}"] for i, n in enumerate(names)}


def _fmt(shape: Sequence[Any]) -> str:
    return "[" + ",".join("?" if not isinstance(d, int) or d < 0 else str(d) for d in shape) + "]"


def describe_feeds(feeds: Mapping[str, np.ndarray], sources: Mapping[str, str]) -> list[dict[str, Any]]:
    """``ModelInfo.inputs`` entries."""
    return [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype), "source": sources[k]} for k, v in feeds.items()]
