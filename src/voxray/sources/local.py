"""Local files read with ``os.preadv``: no shared file position, no memmap, no copies.

Reads land directly in the caller's buffer. Large requests are split into
pieces read in parallel on the I/O pool, which is what makes a full read faster
than nibabel's memmap-and-copy.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence

import numpy as np

from ..errors import FileChangedError, ImageNotFoundError, TruncatedFileError
from .base import Source, io_pool, io_workers

__all__ = ["LocalFileSource", "file_identity"]

#: Requests at least this large are split over the I/O pool.
PARALLEL_MIN = 16 * 2**20
#: Size of each piece of a split request.
PIECE = 8 * 2**20
_MAX_PREAD = 0x7FFFF000  # Linux caps one read at this many bytes
#: At least this many reads of at most GATHER_MAX_BYTES each are copied from a map of the
#: file (a strided row: 23,200 reads of 4 bytes take 12 ms so, 120 ms by syscalls).
GATHER_MIN_READS = 512
GATHER_MAX_BYTES = 512
#: ... or of at most this many bytes each when they are evenly spaced (one strided copy).
GATHER_MAX_STRIDED = 64 * 1024


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
        self._map_lock = threading.Lock()
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

    def read_ranges(self, ranges, buffer, base: int = 0) -> None:
        """Many small ranges of one size (a strided row or row block of a connectome, a
        voxel's time series) are copied from a read-only map of the file in one numpy
        step, strided when they are evenly spaced; the rest go through :meth:`read_many`."""
        count = len(ranges)
        if count >= GATHER_MIN_READS:
            sizes = ranges[:, 1]
            n = int(sizes[0])
            offsets = ranges[:, 0] + base
            gaps = np.diff(offsets)
            even = bool((gaps == gaps[0]).all()) and int(gaps[0]) >= n
            if (
                n <= (GATHER_MAX_STRIDED if even else GATHER_MAX_BYTES)
                and (sizes == n).all()
                and (ranges[:, 2] == np.arange(count) * n).all()  # back to back in buffer
            ):
                if int(offsets.min()) < 0 or int(offsets.max()) + n > self._size:
                    raise TruncatedFileError(
                        f"{self.name!r} has {self._size} bytes; a read reaches byte "
                        f"{int(offsets.max()) + n}"
                    )
                mapped = self._mapped()
                if mapped is not None:
                    whole = np.frombuffer(mapped, np.uint8)
                    out = buffer[: count * n].reshape(count, n)
                    if even:
                        first = int(offsets[0])
                        out[:] = np.lib.stride_tricks.as_strided(
                            whole[first:], (count, n), (int(gaps[0]), 1), writeable=False
                        )
                    else:
                        out[:] = whole[offsets[:, None] + np.arange(n)]
                    total = count * n
                    self.stats.add(requests=count, bytes_read=total, bytes_returned=total)
                    return
        super().read_ranges(ranges, buffer, base)

    def _pread_all(self, jobs: list[tuple[int, memoryview]]) -> None:
        """Read every ``(offset, buffer)`` in full: one syscall each in the usual case."""
        fd = self._fd
        preadv = os.preadv
        for o, mv in jobs:
            k = preadv(fd, [mv], o) if mv.nbytes <= _MAX_PREAD else 0
            if k != mv.nbytes:
                self._pread_rest(o, mv, k)

    def _mapped(self) -> memoryview | None:
        """A read-only map of the file, if it still has the size it had when opened (a
        file shrunk under a map would fault; then the reads go through ``preadv``)."""
        if os.fstat(self._fd).st_size != self._size or not self._size:
            return None
        m = getattr(self, "_map", None)
        if m is None:
            import mmap

            with self._map_lock:
                m = getattr(self, "_map", None)
                if m is None:
                    self._mmap = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
                    m = self._map = memoryview(self._mmap)
        return m

    def close(self) -> None:
        m, mm = getattr(self, "_map", None), getattr(self, "_mmap", None)
        self._map = self._mmap = None
        with contextlib.suppress(BufferError):  # an array still viewing it keeps it open
            if m is not None:
                m.release()
            if mm is not None:
                mm.close()
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()
