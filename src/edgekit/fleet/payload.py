"""What a fleet job ships: the model files with what they reference, a bundle, and ``--input`` files or folders.

Names in the payload are relative POSIX paths (:func:`edgekit.fleet.jobs.safe_name`): model ``i``
goes under ``model/i/`` with its OpenVINO/ncnn weights and ONNX external-data files at the same
relative places as beside the original (so the runtime finds them), input item ``i`` under
``inputs/i/``. On the node, :func:`local_inputs` turns the shipped items back into ``NAME=PATH``
strings, folders included.

A bundle (:func:`bundle_payload`) is untrusted input: a folder ships every regular file under it at
its relative place under ``bundle/`` — a symbolic link or a special file anywhere in it is refused,
so nothing outside the folder is ever read — within the limits a bundle archive is unpacked with
(:class:`edgekit.pipeline.archive.Limits`: members, bytes per file, bytes in all); a ``.zip`` ships
as ``bundle.zip``, checked and unpacked here first as a local run would (the node unpacks its copy
within the same limits).

Example::

    payload, models = model_payload(["det.onnx"])       # {"model/0/det.onnx": Path(...), ...}, ["model/0/det.onnx"]
    extra, items = input_payload(["images=frames/"])     # every file of frames/, and ("images", "inputs/0", True)
    files, key = bundle_payload("bundles/blazeface")     # {"bundle/edgekit.toml": Path(...), ...}, "bundle"
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgekit.errors import BundleError, InvalidOptionError
from edgekit.models.formats import ModelFile, open_model

__all__ = ["BUNDLE_KEY", "InputItem", "bundle_payload", "input_payload", "local_inputs", "model_files",
           "model_payload"]

#: where a folder bundle goes in the payload (``bundle/<relative path>``); a ``.zip`` goes as ``BUNDLE_KEY.zip``
BUNDLE_KEY = "bundle"

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


def bundle_payload(bundle: str | os.PathLike[str]) -> tuple[dict[str, Path], str]:
    """The files to ship for ``bundle`` (a folder, its ``edgekit.toml`` or a ``.zip``) and its payload name.

    The payload name is ``"bundle"`` for a folder (its files are ``bundle/<relative path>``) and
    ``"bundle.zip"`` for an archive. The bundle is validated here first (BundleError, as a local
    run gives it); then a symbolic link, a special file, more files or bytes than
    :class:`~edgekit.pipeline.archive.Limits` allow are refused with a BundleError naming the path.
    """
    from edgekit.pipeline.archive import Limits
    from edgekit.pipeline.bundle import resolve_bundle
    from edgekit.pipeline.config import CONFIG_NAME, read_bundle_config

    p = Path(bundle).expanduser()
    if p.is_file() and p.name != CONFIG_NAME:
        resolve_bundle(p)  # a .zip: unpacked (cached) within Limits and its edgekit.toml checked, or BundleError
        return {f"{BUNDLE_KEY}.zip": p}, f"{BUNDLE_KEY}.zip"
    root = resolve_bundle(p)  # a folder (or the folder of edgekit.toml), or BundleError: no such bundle
    read_bundle_config(root)  # edgekit.toml, the model inside the folder, plans/: as a local run checks them
    payload: dict[str, Path] = {}
    total = 0
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in dirs + sorted(names):
            path = Path(folder) / name
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a special file"
                raise BundleError(f"bundle {root}: {path} is {kind}; a bundle shipped to the fleet may hold only "
                                  "regular files and folders, so that nothing outside it is read. Replace it with "
                                  "the file itself, or remove it.")
            if len(payload) == Limits.max_members:
                raise BundleError(f"bundle {root}: more than {Limits.max_members} files, expected at most that many "
                                  "in a bundle (the model, edgekit.toml, labels, plans). Remove what the bundle "
                                  "does not need.")
            total += st.st_size
            if st.st_size > Limits.max_member_bytes or total > Limits.max_total_bytes:
                what = f"{path} holds {st.st_size} bytes" if st.st_size > Limits.max_member_bytes \
                    else f"its files hold more than {Limits.max_total_bytes} bytes"
                raise BundleError(f"bundle {root}: {what}, expected at most {Limits.max_member_bytes} per file and "
                                  f"{Limits.max_total_bytes} in all (EDGEKIT_BUNDLE_MAX_MB sets the total). Remove "
                                  "what the bundle does not need.")
            rel = path.relative_to(root).as_posix()
            payload[f"{BUNDLE_KEY}/{rel}"] = path
    return payload, BUNDLE_KEY


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
