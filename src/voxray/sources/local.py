"""Local files read with ``os.preadv``: no shared file position, no memmap, no copies.

Reads land directly in the caller's buffer. Large requests are split into
pieces read in parallel on the I/O pool, which is what makes a full read faster
than nibabel's memmap-and-copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import FileChangedError, ImageNotFoundError, TruncatedFileError
from .base import Source, io_pool, io_workers

__all__ = ["LocalFileSource", "file_identity"]

#: Requests at least this large are split over the I/O pool.
PARALLEL_MIN = 16 * 2**20
#: Size of each piece of a split request.
PIECE = 8 * 2**20
_MAX_PREAD = 0x7FFFF000  # Linux caps one read at this many bytes


def file_identity(path: str) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file; raises :class:`ImageNotFoundError` if it is missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageNotFoundError(f"No such file: {path!r}") from None
    except OSError as e:
        raise ImageNotFoundError(f"Cannot open {path!r}: {e.strerror}") from None
    return st.st_size, st.st_mtime_ns


class LocalFileSource(Source):
    """A local file, read with positional reads from one descriptor shared by all threads."""

    request_cost = 32 * 1024

    def __init__(self, path: str, identity: tuple[int, int] | None = None):
        super().__init__()
        self.name = path
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise ImageNotFoundError(f"No such file: {path!r}") from None
        except OSError as e:
            raise ImageNotFoundError(f"Cannot open {path!r}: {e.strerror}") from None
        st = os.fstat(self._fd)
        self._size = st.st_size
        if identity is not None and (st.st_size, st.st_mtime_ns) != tuple(identity):
            os.close(self._fd)
            self._fd = -1
            raise FileChangedError(
                f"{path!r} changed since it was opened (size, mtime_ns) {tuple(identity)!r} -> "
                f"{(st.st_size, st.st_mtime_ns)!r}; load it again"
            )

    @property
    def size(self) -> int:
        return self._size

    def _pread_exact(self, offset: int, mv: memoryview) -> None:
        got = 0
        n = mv.nbytes
        while got < n:
            chunk = mv[got : got + min(n - got, _MAX_PREAD)]
            k = os.preadv(self._fd, [chunk], offset + got)
            if k == 0:
                raise TruncatedFileError(
                    f"{self.name!r} ends at byte {offset + got}; {n - got} more bytes were "
                    f"expected (reading {n} bytes at offset {offset}, file size {self._size})"
                )
            got += k
        self.stats.add(requests=1, bytes_read=n, bytes_returned=n)

    def readinto(self, offset: int, buffer) -> None:
        self.read_many([(offset, buffer)])

    def read_many(self, requests: Sequence[tuple[int, object]]) -> None:
        jobs: list[tuple[int, memoryview]] = []
        for offset, buffer in requests:
            mv = memoryview(buffer).cast("B")
            if offset < 0 or offset + mv.nbytes > self._size:
                raise TruncatedFileError(
                    f"{self.name!r} has {self._size} bytes; cannot read {mv.nbytes} bytes at "
                    f"offset {offset}"
                )
            if mv.nbytes >= PARALLEL_MIN:
                jobs.extend((offset + p, mv[p : p + PIECE]) for p in range(0, mv.nbytes, PIECE))
            else:
                jobs.append((offset, mv))
        total = sum(mv.nbytes for _, mv in jobs)
        if len(jobs) > 1 and total >= PARALLEL_MIN and io_workers() > 1:
            for f in [io_pool().submit(self._pread_exact, o, mv) for o, mv in jobs]:
                f.result()
        else:
            for o, mv in jobs:
                self._pread_exact(o, mv)

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()
