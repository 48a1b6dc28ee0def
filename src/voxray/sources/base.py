"""The sources protocol: bytes at offsets, with counters.

A source is a read-only byte stream of known (or, for gzip before its index is
complete, not yet known) size with one small protocol:

* ``size`` — number of bytes, or ``None`` while unknown;
* ``read(offset, nbytes) -> bytes``;
* ``readinto(offset, buffer)`` — fill ``buffer`` exactly, or raise
  :class:`~voxray.errors.TruncatedFileError`;
* ``read_prefix(nbytes)`` — up to ``nbytes`` from the start (headers);
* ``read_many(requests)`` — fill each ``(offset, buffer)``; sources make this
  fast (parallel ``pread``, one inflate pass for neighbouring gzip ranges,
  coalesced range requests).

Every source counts what it does in :class:`SourceStats`, so tests can assert
on I/O (requests, bytes) rather than on time.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

__all__ = ["Source", "SourceStats", "io_pool", "io_workers", "prefault_async"]


@dataclass
class SourceStats:
    """Counters of one source. ``requests``/``bytes_read`` count reads from storage."""

    requests: int = 0
    bytes_read: int = 0
    bytes_returned: int = 0
    bytes_inflated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def reset(self) -> None:
        with self._lock:
            for f in fields(self):
                if not f.name.startswith("_"):
                    setattr(self, f.name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")
            }

    def __getstate__(self):
        return self.snapshot()

    def __setstate__(self, state):
        self.__init__(**state)


class Source:
    """Base class of byte sources (see the module docstring for the protocol)."""

    #: Path or URL, for messages.
    name: str = ""
    #: Price of one request in bytes: the planner reads through gaps smaller than this.
    request_cost: int = 32 * 1024

    def __init__(self) -> None:
        self.stats = SourceStats()

    @property
    def size(self) -> int | None:
        raise NotImplementedError

    def readinto(self, offset: int, buffer) -> None:
        raise NotImplementedError

    def read(self, offset: int, nbytes: int) -> bytes:
        buf = bytearray(nbytes)
        self.readinto(offset, buf)
        return bytes(buf)

    def read_many(self, requests: Sequence[tuple[int, object]]) -> None:
        for offset, buffer in requests:
            self.readinto(offset, buffer)

    def read_ranges(self, ranges, buffer, base: int = 0) -> None:
        """Fill ``buffer`` (a 1-D uint8 array) from a read plan's ``ranges``: rows of
        ``(file offset - base, nbytes, buffer offset)``. Sources that can gather many
        small ranges faster than one request each override this."""
        mv = memoryview(buffer)  # slices of a memoryview cost far less than numpy's
        self.read_many([(base + f, mv[b : b + n]) for f, n, b in ranges.tolist()])

    def read_prefix(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` from the start (fewer if the source is shorter)."""
        size = self.size
        return self.read(0, nbytes if size is None else min(nbytes, size))

    def close(self) -> None:
        """Release handles; the source must not be used afterwards."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def io_workers() -> int:
    """Threads for parallel reads and inflates (``VOXRAY_IO_THREADS``, default: CPU count)."""
    env = os.environ.get("VOXRAY_IO_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(16, os.cpu_count() or 1))


def io_pool() -> ThreadPoolExecutor:
    """The process's I/O thread pool. Tasks run on it must not submit to it and wait."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(io_workers(), thread_name_prefix="voxray-io")
    return _pool


_MADV_POPULATE_WRITE = 23  # Linux >= 5.14
_madvise = None


def prefault_async(addresses: Sequence[tuple[int, int]]) -> threading.Thread | None:
    """Populate fresh output memory from another thread, ahead of a sequential writer.

    First-touch page faults are slow on some machines (virtual machines whose memory
    the host backs lazily); a sequential inflate would take every one of them on its
    critical path. ``madvise(MADV_POPULATE_WRITE)`` maps the pages without touching
    their contents, so it is safe while the writer runs. Returns the thread (or None
    where the call is unavailable).
    """
    global _madvise
    if not sys.platform.startswith("linux"):
        return None
    if _madvise is None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        fn.restype = ctypes.c_int
        _madvise = fn

    def run():
        step = 32 * 2**20
        for addr, n in addresses:
            start, end = addr & ~4095, addr + n
            for p in range(start, end, step):
                if _madvise(p, min(step, end - p), _MADV_POPULATE_WRITE) != 0:
                    return  # unsupported kernel, or memory gone: nothing to do

    t = threading.Thread(target=run, name="voxray-prefault", daemon=True)
    t.start()
    return t


def _reset_after_fork() -> None:
    # A forked child has none of the parent's threads: start a fresh pool on demand.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def is_url(path) -> bool:
    """Whether ``path`` is a URL voxray reads remotely (``file://`` is local): the one
    URL predicate every layer uses."""
    path = str(path)
    return "://" in path and not path.startswith("file://")
