"""Capture what a native library prints: MNN, ncnn and LiteRT write to file descriptors 1 and 2 from C++,
past Python's ``sys.stdout``; edgekit reads it (MNN's "Can't Find type=N backend" is how its CPU fallback
shows) and keeps it off the user's terminal.

Example::

    with captured_output() as cap:
        interpreter = MNN.Interpreter(path)
    "backend" in cap.text
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading

__all__ = ["captured_output"]

_FD_LOCK = threading.RLock()


class captured_output:
    """Capture what native code writes to file descriptors 1 and 2; ``.text`` holds it after.

    Only this process's own fds are redirected, for the duration of the block (a
    re-entrant lock serialises blocks across threads). Without fds 1/2 nothing is captured.
    """

    def __enter__(self) -> captured_output:
        self.text = ""
        self._saved: list[int] = []
        _FD_LOCK.acquire()
        try:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - a closed or odd stream must not stop us
                    pass
            self._tmp = tempfile.TemporaryFile()
            try:
                for fd in (1, 2):
                    self._saved.append(os.dup(fd))
            except OSError:  # fd 1 or 2 closed (some embedded interpreters): nothing to protect
                for saved in self._saved:
                    os.close(saved)
                self._saved = []
            for fd in range(1, len(self._saved) + 1):
                os.dup2(self._tmp.fileno(), fd)
        except BaseException:
            _FD_LOCK.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._saved:
                _fflush_libc()
                for fd, saved in zip((1, 2), self._saved):
                    os.dup2(saved, fd)
                    os.close(saved)
            self._tmp.seek(0)
            self.text = self._tmp.read().decode("utf-8", "replace")
            self._tmp.close()
        finally:
            _FD_LOCK.release()


def _fflush_libc() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no libc by that name (Windows): MNN flushes itself
        pass
