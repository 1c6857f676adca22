"""Safe unpacking of bundle archives (``.zip``): nothing is ever written outside the target folder.

Refused, before anything is written: absolute member names (``/x``, ``C:\\x``, ``\\\\server``),
names with a ``..`` component, symbolic links and other special files, more than
``max_members`` members, a member larger than ``max_member_bytes``, a total larger than
``max_total_bytes``, and archives compressed more than ``max_ratio`` times — member by member
and over the running total, so a thousand small bombs are caught like one big one. While
copying, sizes are counted again, so a header that lies about its size is caught too.
Unpacking goes to a temporary folder beside the target; only a bundle whose ``edgekit.toml``
validates is renamed into place, so a rejected archive leaves nothing behind. The limits are
:class:`Limits` (``EDGEKIT_BUNDLE_MAX_MB`` overrides the total).

Example::

    root = unpack_bundle(Path("blazeface.zip"))      # ~/.cache/edgekit/bundles/<sha256>/, unpacked once
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from edgekit.errors import BundleError

__all__ = ["Limits", "safe_extract", "unpack_bundle"]


class Limits:
    """Size limits for unpacking; the defaults fit any edge model and stop zip bombs."""

    max_members = 1000
    max_member_bytes = 2 << 30
    max_total_bytes = int(float(os.environ.get("EDGEKIT_BUNDLE_MAX_MB", "4096")) * (1 << 20))
    max_ratio = 200
    #: archives smaller than this unpacked are not ratio-checked (tiny text files compress well)
    ratio_floor_bytes = 1 << 20


def _check_name(name: str, archive: Path) -> PurePosixPath:
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or path.is_absolute():
        raise BundleError(f"{archive}: member {name!r} has an absolute path; expected paths relative to the bundle "
                          "root. Refusing to unpack (it could write outside the target folder).")
    if ".." in path.parts:
        raise BundleError(f"{archive}: member {name!r} contains '..'; expected paths inside the bundle. Refusing to "
                          "unpack (path traversal).")
    if "\x00" in name:
        raise BundleError(f"{archive}: member {name!r} contains a NUL byte; refusing to unpack.")
    return path


def _check_members(z: zipfile.ZipFile, archive: Path, limits: type[Limits]) -> list[zipfile.ZipInfo]:
    infos = z.infolist()
    if len(infos) > limits.max_members:
        raise BundleError(f"{archive}: {len(infos)} members, expected at most {limits.max_members} in a bundle.")
    total = packed = 0
    for count, info in enumerate(infos, 1):
        _check_name(info.filename, archive)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
            raise BundleError(f"{archive}: member {info.filename!r} is {kind}; bundles may hold only regular files "
                              "and folders. Refusing to unpack.")
        if info.file_size > limits.max_member_bytes:
            raise BundleError(f"{archive}: member {info.filename!r} unpacks to {info.file_size} bytes, expected at "
                              f"most {limits.max_member_bytes}.")
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio \
                and info.file_size > limits.ratio_floor_bytes:
            ratio = info.file_size // info.compress_size
            raise BundleError(f"{archive}: member {info.filename!r} is compressed {ratio}"
                              f" times (limit {limits.max_ratio}); refusing a likely zip bomb.")
        total += info.file_size
        packed += info.compress_size
        if total > limits.ratio_floor_bytes and total > limits.max_ratio * max(packed, 1):
            raise BundleError(f"{archive}: its first {count} members unpack to {total} "
                              f"bytes from {packed} (over {limits.max_ratio} times); refusing a likely zip bomb. A "
                              "real bundle (a model and a few small files) compresses far less.")
    if total > limits.max_total_bytes:
        raise BundleError(f"{archive}: unpacks to {total} bytes, expected at most {limits.max_total_bytes}.")
    return infos


def safe_extract(archive: Path, target: Path, limits: type[Limits] = Limits) -> None:
    """Unpack ``archive`` into the (new or empty) folder ``target``; raise BundleError on anything unsafe."""
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise BundleError(f"{archive}: not a readable zip archive ({exc}); expected a bundle folder or a .zip "
                          "made by `edgekit bundle create ... --output NAME.zip`.") from exc
    root = target.resolve()
    with z:
        infos = _check_members(z, archive, limits)
        written = 0
        for info in infos:
            dest = (root / _check_name(info.filename, archive)).resolve()
            if dest != root and not dest.is_relative_to(root):
                raise BundleError(f"{archive}: member {info.filename!r} resolves outside {root}; refusing to unpack.")
            try:
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(dest, "xb") as out:
                    size = 0
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        size += len(chunk)
                        written += len(chunk)
                        if size > max(info.file_size, 0) or written > limits.max_total_bytes:
                            raise BundleError(f"{archive}: member {info.filename!r} unpacks to more bytes than its "
                                              "header says; refusing a malformed or malicious archive.")
                        out.write(chunk)
            except BundleError:
                raise
            # damaged data: zlib.error, an unknown compression method (NotImplementedError), encryption
            # (RuntimeError), bad headers (ValueError) -- all measured by fuzzing archives
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                    RuntimeError, ValueError) as exc:
                raise BundleError(f"{archive}: cannot unpack member {info.filename!r} ({type(exc).__name__}: {exc}); "
                                  "the archive is damaged. Re-download it or re-create the bundle.") from exc


def unpack_bundle(archive: Path, target: Path | None = None) -> Path:
    """Unpack a bundle archive once into ``target`` (default: the cache, keyed by the archive's sha256).

    Returns the folder holding ``edgekit.toml`` (the archive's root, or its single top-level folder).
    """
    if target is None:
        from edgekit.cache import cache_dir, file_sha256

        target = cache_dir("bundles") / file_sha256(archive)[:32]
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            safe_extract(archive, tmp)
            from edgekit.pipeline.config import read_bundle_config

            read_bundle_config(_config_root(tmp, archive))  # a rejected bundle is never put in the cache
            try:
                os.replace(tmp, target)
            except OSError:
                if not target.is_dir():  # another process won the race: use its copy
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return _config_root(target, archive)


def _config_root(folder: Path, archive: Path) -> Path:
    """The folder holding ``edgekit.toml``: ``folder`` itself or its single top-level folder."""
    from edgekit.pipeline.config import CONFIG_NAME

    if (folder / CONFIG_NAME).is_file():
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / CONFIG_NAME).is_file():
        return subdirs[0]
    raise BundleError(f"{archive}: no {CONFIG_NAME} at the archive's root (or in its single top-level folder); "
                      "expected a bundle made by `edgekit bundle create`.")
