"""Files taken from pinned PyPI wheels: downloaded once with pip, checked by sha256, kept in the cache.

edgekit never installs these wheels and makes no network connection at run time: only an
explicit command (``edgekit fetch``) or a test's set-up calls :func:`download`. ``pip download``
(never ``pip install``, never the wheel's dependencies) fetches the wheel into
``<cache>/wheels``; its sha256 must match the pinned one; :func:`extract` then copies one
member out of it, checking that member's own sha256, with an atomic write.

Used for the real test models (:mod:`edgekit.testing.real_models`) and for tools shipped in
wheels, such as ncnn's pnnx converter binary (:mod:`edgekit.runtimes.ncnn_convert`).

Example::

    wheel = PinnedWheel("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl", "971d...")
    path = extract(download(wheel), "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                   "e47a...", cache_dir("models") / "cls.onnx")
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.cache import atomic_path, cache_dir, file_sha256
from edgekit.errors import ModelFetchError

__all__ = ["PinnedWheel", "cached_wheel", "download", "extract"]


@dataclass(frozen=True)
class PinnedWheel:
    """One wheel file on PyPI, pinned by exact file name and sha256 (platform pinned so the digest is stable)."""

    requirement: str  # name==version
    filename: str  # exact wheel file name
    sha256: str

    def platform_args(self) -> list[str]:
        """pip's ``--platform`` options that select this wheel on any host.

        >>> PinnedWheel("a==1", "a-1-py3-none-manylinux2014_x86_64.whl", "0").platform_args()[:2]
        ['--platform', 'manylinux2014_x86_64']
        >>> PinnedWheel("a==1", "a-1-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl", "0").platform_args()[1]
        'manylinux2014_aarch64'
        >>> PinnedWheel("a==1", "a-1-py3-none-any.whl", "0").platform_args()
        []
        """
        if "manylinux" not in self.filename:
            return []
        tag = self.filename.split("-")[-3]  # python tag: cp311 (one interpreter) or py3 (any CPython)
        version = f"{tag[2]}.{tag[3:]}" if tag.startswith("cp") else "3.11"
        platform = self.filename.removesuffix(".whl").split("-")[-1].split(".")[0]  # the first platform tag
        return ["--platform", platform, "--python-version", version, "--implementation", "cp"]


def cached_wheel(wheel: PinnedWheel) -> Path | None:
    """The verified wheel in ``<cache>/wheels``, or ``None`` when it is not there (nothing is downloaded)."""
    path = cache_dir("wheels") / wheel.filename
    if path.is_file() and file_sha256(path) == wheel.sha256:
        return path
    return None


def download(wheel: PinnedWheel, *, purpose: str = "", timeout: float = 900.0) -> Path:
    """The verified wheel in ``<cache>/wheels``, downloading it with ``pip download`` when missing.

    Raises :class:`~edgekit.errors.ModelFetchError` when pip fails (offline, say) or the file's sha256
    is not the pinned one (the file is then deleted).
    """
    have = cached_wheel(wheel)
    if have is not None:
        return have
    folder = cache_dir("wheels")
    path = folder / wheel.filename
    why = f" to get {purpose}" if purpose else ""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", "-d", str(folder), *wheel.platform_args(), wheel.requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        failed, err = proc.returncode != 0, proc.stderr.strip()[-500:]
    except subprocess.TimeoutExpired:
        failed, err = True, f"pip did not finish within {timeout:g} s"
    if failed or not path.is_file():
        raise ModelFetchError(
            f"could not download {wheel.requirement} ({wheel.filename}) from PyPI{why}: {err or 'no such file'}. "
            f"Check network access to PyPI, or put the wheel in {folder} yourself."
        )
    got = file_sha256(path)
    if got != wheel.sha256:
        path.unlink()
        raise ModelFetchError(f"{wheel.filename}: sha256 {got}, expected {wheel.sha256}; refusing a wheel that changed.")
    return path


def extract(wheel_path: Path, member: str, sha256: str, target: Path, *, mode: int | None = None) -> Path:
    """Copy ``member`` of the wheel at ``wheel_path`` to ``target`` (atomically), checking its sha256.

    An existing ``target`` with the right digest is reused. ``mode`` (e.g. ``0o755`` for a binary)
    is applied before the file appears under its name.
    """
    if target.is_file() and file_sha256(target) == sha256:
        return target
    try:
        with zipfile.ZipFile(wheel_path) as z:
            data = z.read(member)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelFetchError(f"{wheel_path.name}: cannot read {member} from it ({exc}). Delete the wheel "
                              f"({wheel_path}) and fetch it again.") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelFetchError(f"{member} in {wheel_path.name} does not match its pinned sha256 {sha256}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
        if mode is not None:
            tmp.chmod(mode)
    return target
