"""Local files read with ``os.preadv``: no shared file position, no memmap, no copies.

Reads land directly in the caller's buffer. Large requests are split into
pieces read in parallel on the I/O pool, which is what makes a full read faster
than nibabel's memmap-and-copy.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from ..errors import FileChangedError, ImageNotFoundError, NotAnImageError, TruncatedFileError
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
        if stat.S_ISDIR(st.st_mode):
            os.close(self._fd)
            self._fd = -1
            raise NotAnImageError(f"{path!r} is a directory, not an image file")
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

    def _pread_rest(self, offset: int, mv: memoryview, got: int) -> None:
        """Finish a read that returned ``got`` bytes of ``mv``: read on, or raise at EOF."""
        n = mv.nbytes
        while True:
            if got == n:
                return
            chunk = mv[got : got + min(n - got, _MAX_PREAD)]
            k = os.preadv(self._fd, [chunk], offset + got)
            if k == 0:
                raise TruncatedFileError(
                    f"{self.name!r} ends at byte {offset + got}; {n - got} more bytes were "
                    f"expected (reading {n} bytes at offset {offset}, file size {self._size})"
                )
            got += k

    def readinto(self, offset: int, buffer) -> None:
        self.read_many([(offset, buffer)])

    def read_many(self, requests: Sequence[tuple[int, object]]) -> None:
        jobs: list[tuple[int, memoryview]] = []
        size = self._size
        total = 0
        for offset, buffer in requests:
            mv = buffer if type(buffer) is memoryview and buffer.format == "B" else None
            if mv is None or mv.ndim != 1:
                mv = memoryview(buffer).cast("B")
            n = mv.nbytes
            if offset < 0 or offset + n > size:
                raise TruncatedFileError(
                    f"{self.name!r} has {size} bytes; cannot read {n} bytes at offset {offset}"
                )
            total += n
            if n >= PARALLEL_MIN:
                jobs.extend((offset + p, mv[p : p + PIECE]) for p in range(0, n, PIECE))
            else:
                jobs.append((offset, mv))
        workers = io_workers()
        if len(jobs) > 1 and total >= PARALLEL_MIN and workers > 1:
            # Batches of about equal bytes, one pool task each (a task per small read
            # would cost more than the read).
            batches: list[list[tuple[int, memoryview]]] = [[]]
            share, filled = total / (4 * workers), 0
            for job in jobs:
                if filled >= share and batches[-1]:
                    batches.append([])
                    filled = 0
                batches[-1].append(job)
                filled += job[1].nbytes
            for f in [io_pool().submit(self._pread_all, b) for b in batches]:
                f.result()
        else:
            self._pread_all(jobs)
        self.stats.add(requests=len(jobs), bytes_read=total, bytes_returned=total)

    def _pread_all(self, jobs: list[tuple[int, memoryview]]) -> None:
        """Read every ``(offset, buffer)`` in full: one syscall each in the usual case."""
        fd = self._fd
        preadv = os.preadv
        for o, mv in jobs:
            k = preadv(fd, [mv], o) if mv.nbytes <= _MAX_PREAD else 0
            if k != mv.nbytes:
                self._pread_rest(o, mv, k)

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()
