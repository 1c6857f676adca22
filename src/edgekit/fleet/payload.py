"""What a fleet job ships: the model files with what they reference, and ``--input`` files or folders.

Names in the payload are relative POSIX paths (:func:`edgekit.fleet.jobs.safe_name`): model ``i``
goes under ``model/i/`` with its OpenVINO/ncnn weights and ONNX external-data files at the same
relative places as beside the original (so the runtime finds them), input item ``i`` under
``inputs/i/``. On the node, :func:`local_inputs` turns the shipped items back into ``NAME=PATH``
strings, folders included.

Example::

    payload, models = model_payload(["det.onnx"])       # {"model/0/det.onnx": Path(...), ...}, ["model/0/det.onnx"]
    extra, items = input_payload(["images=frames/"])     # every file of frames/, and ("images", "inputs/0", True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgekit.errors import InvalidOptionError
from edgekit.models.formats import ModelFile, open_model

__all__ = ["InputItem", "input_payload", "local_inputs", "model_files", "model_payload"]

#: one shipped ``--input`` item: (input name or None, payload name of the file or folder, whether a folder)
InputItem = tuple[str | None, str, bool]


def model_files(model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> list[ModelFile]:
    """``model`` opened (``open_model``: exists, known format, sound structure); None: the bundled sample, ONNX and
    TFLite, as the profiler reads it."""
    if model is None:
        from edgekit.models.sample import sample_model

        paths = [sample_model("onnx"), sample_model("tflite")]
    else:
        paths = [Path(model)] if isinstance(model, (str, os.PathLike)) else [Path(m) for m in model]
    return [open_model(path) for path in paths]


def model_payload(model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
                  ) -> tuple[dict[str, Path], list[str]]:
    """The files to ship for ``model`` (None: the bundled sample, ONNX and TFLite) and the payload name of each model.

    Each model is opened (:func:`model_files`) here, before any job starts.
    """
    payload: dict[str, Path] = {}
    names: list[str] = []
    for i, mf in enumerate(model_files(model)):
        root = mf.path.parent
        for f in [mf.path, *([mf.weights] if mf.weights else []), *mf.external]:
            rel = os.path.relpath(f, root).replace(os.sep, "/")
            payload[f"model/{i}/{rel}"] = Path(f)
        names.append(f"model/{i}/{mf.path.name}")
    return payload, names


def input_payload(items: Sequence[str | tuple[str | None, str | os.PathLike[str]]]
                  ) -> tuple[dict[str, Path], list[InputItem]]:
    """The files of ``--input`` items (``NAME=PATH``/``PATH`` strings or ``(name, path)`` pairs; a folder
    ships the files directly in it) and how to name them again on the node."""
    payload: dict[str, Path] = {}
    shipped: list[InputItem] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, sep, file = item.partition("=")
            name, file = (name, file) if sep else ("", item)
        else:
            name, file = item[0] or "", os.fspath(item[1])
        path = Path(file).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            if not files:
                raise InvalidOptionError(f"--input {path}: the folder holds no file; expected .npy, .npz or images.")
            payload.update({f"inputs/{i}/{p.name}": p for p in files})
            shipped.append((name or None, f"inputs/{i}", True))
        elif path.is_file():
            payload[f"inputs/{i}/{path.name}"] = path
            shipped.append((name or None, f"inputs/{i}/{path.name}", False))
        else:
            raise InvalidOptionError(f"--input {file}: no such file or folder. Expected NAME=FILE.npy, FILE.npz, an "
                                     "image or a folder of those.")
    return payload, shipped


def local_inputs(files: Mapping[str, Path], shipped: Sequence[InputItem]) -> list[str]:
    """On the node: the shipped items as ``NAME=PATH`` (or ``PATH``) strings over the job's private folder."""
    out = []
    for name, key, folder in shipped:
        if folder:
            first = next(p for k, p in files.items() if k.startswith(key + "/"))
            path = first.parent
        else:
            path = files[key]
        out.append(f"{name}={path}" if name else str(path))
    return out
