"""Where edgekit keeps what it derives from models: converted models, fetched wheels.

The root is ``$EDGEKIT_CACHE`` when set, else ``$XDG_CACHE_HOME/edgekit``, else
``~/.cache/edgekit``. Writers should write a temporary file in the same folder and
``os.replace`` it into place, so that a concurrent reader never sees a partial file.

Example::

    folder = cache_dir("mnn")          # ~/.cache/edgekit/mnn, created if missing
    with atomic_path(folder / "model.mnn") as tmp:
        convert(src, tmp)              # appears as model.mnn only if this block succeeds
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from edgekit.errors import InvalidOptionError

__all__ = ["atomic_path", "cache_dir", "cache_root", "cached_file", "file_sha256"]


def cache_root() -> Path:
    """The cache root (not created): ``$EDGEKIT_CACHE``, ``$XDG_CACHE_HOME/edgekit`` or ``~/.cache/edgekit``."""
    explicit = os.environ.get("EDGEKIT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "edgekit"
    return Path.home() / ".cache" / "edgekit"


def cache_dir(*parts: str) -> Path:
    """The folder ``<cache root>/<parts...>``, created if missing (private to this user: mode 0700).

    Raises :class:`~edgekit.errors.InvalidOptionError` when it cannot be created, or when the
    root or the folder is owned by another user or writable by every user: whoever can write there
    could plant a converted model or a "probe passed" marker that edgekit would trust (pip
    refuses such a cache the same way).
    """
    root = cache_root()
    path = root.joinpath(*parts)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidOptionError(
            f"edgekit cannot create its cache folder {path}: {exc.strerror or exc}. Expected a writable folder; "
            "set EDGEKIT_CACHE to one (e.g. `export EDGEKIT_CACHE=/tmp/edgekit-cache`)."
        ) from exc
    for folder in dict.fromkeys((root, path)):
        _check_private(folder)
    return path


def _check_private(folder: Path) -> None:
    """Refuse a cache folder that another user owns or may write to (POSIX; elsewhere nothing to check)."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return
    st = folder.stat()
    if st.st_uid != getuid():
        raise InvalidOptionError(
            f"edgekit's cache folder {folder} belongs to another user (uid {st.st_uid}, you are {getuid()}): its "
            "files could have been planted. Expected a folder of your own; set EDGEKIT_CACHE to one "
            "(e.g. `export EDGEKIT_CACHE=~/.cache/edgekit`).")
    if st.st_mode & 0o002:
        raise InvalidOptionError(
            f"edgekit's cache folder {folder} is writable by every user (mode {st.st_mode & 0o777:o}): its files "
            f"could have been planted. Make it private (`chmod go-w {folder}`) or set EDGEKIT_CACHE to a folder "
            "only you can write.")


def cached_file(dest: Path, build: Callable[[Path], object]) -> tuple[Path, bool]:
    """``dest``, a derived artifact (a converted or prepared model), built by ``build(tmp)`` unless a verified copy exists.

    The artifact's sha256 is kept beside it (``<dest>.sha256``) and checked on every use, so a
    file planted or damaged under its key is built again instead of used. Returns
    ``(dest, built_now)``; ``build`` writes the temporary path it is given (see :func:`atomic_path`).
    """
    stamp = dest.with_name(dest.name + ".sha256")
    try:
        if dest.is_file() and stamp.is_file() and stamp.read_text().strip() == file_sha256(dest):
            return dest, False
    except (OSError, UnicodeDecodeError):
        pass
    with atomic_path(dest) as tmp:
        build(tmp)
    with atomic_path(stamp) as tmp:
        tmp.write_text(file_sha256(dest) + "\n")
    return dest, True


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """A unique temporary path beside ``dest`` (same suffix) that becomes ``dest`` when the block succeeds.

    The block writes the temporary file; on success it is ``os.replace``d into place, so a
    concurrent reader sees the old file or the whole new one; on failure it is removed.
    """
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{dest.suffix}")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(*paths: Path | None) -> str:
    """Hex sha256 of the files' bytes, one after another (``None`` entries are skipped)."""
    h = hashlib.sha256()
    for path in paths:
        if path is not None:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()
