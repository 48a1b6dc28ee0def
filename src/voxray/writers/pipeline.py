"""The one write pipeline every format uses.

Jobs (read a slab, encode or compress it) run on a bounded thread pool and
are consumed *in order* (:func:`pipeline`), at most ``2 * threads`` ahead, so
memory stays bounded by a few slabs whatever the image size. With a
dask.distributed client (:func:`client`) work goes through dask in windows of
tasks instead (:func:`run_windows`), each task opening its file by path
(:class:`RegionWriter`: a ``np.memmap`` target would be copied to the workers
and its writes lost). :func:`progress_bar` shows a tqdm bar on a terminal.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..planning import default_chunks, expand_chunks

__all__ = [
    "WRITE_SLAB",
    "RegionWriter",
    "blocks",
    "client",
    "fortran_bytes",
    "fortran_product",
    "pipeline",
    "progress_bar",
    "raw_slab_jobs",
    "read_and_write",
    "run_windows",
    "slabs",
    "terminal_width",
    "threads",
    "window",
    "write_block",
]

#: Largest slab written (or compressed) by one task.
WRITE_SLAB = 64 * 2**20


def terminal_width(default: int = 80) -> int:
    """Columns of the terminal on stderr (a terminal reporting 0 columns gets ``default``)."""
    try:
        return os.get_terminal_size(2).columns or default
    except OSError:
        return default


def progress_bar(total: int, name: str, show: bool | None, verb: str = "writing"):
    """A tqdm byte bar (or None): shown when ``show``, or by default on a terminal."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"{verb} {os.path.basename(str(name).rstrip('/'))}",
        leave=False,
        ncols=terminal_width(),
    )


def client():
    """The active dask.distributed client, if any (without importing distributed)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import default_client

        return default_client()
    except ValueError:
        return None


def threads() -> int:
    """Threads of the local pipeline (the I/O pool's size)."""
    from ..sources.base import io_workers

    return io_workers()


def window() -> int:
    """Tasks in flight per dask compute: twice the cluster's (or this machine's) threads."""
    c = client()
    if c is not None:
        return max(4, 2 * sum(c.nthreads().values()))
    return max(4, 2 * (os.cpu_count() or 1))


def pipeline(jobs, consume, n_threads: int) -> None:
    """Run jobs on a thread pool, at most ``2 * n_threads`` ahead, consuming results in order."""
    jobs = iter(jobs)
    with ThreadPoolExecutor(n_threads, thread_name_prefix="voxray-write") as ex:
        pending = deque(ex.submit(job) for job in itertools.islice(jobs, 2 * n_threads))
        while pending:
            result = pending.popleft().result()
            for job in itertools.islice(jobs, 1):
                pending.append(ex.submit(job))
            consume(result)


def run_windows(tasks, on_result, size: int) -> None:
    """Compute dask delayed ``tasks`` ``size`` at a time, results in order."""
    import dask

    for i in range(0, len(tasks), size):
        for result in dask.compute(*tasks[i : i + size]):
            on_result(result)


def fortran_product(ranges):
    """itertools.product with the first axis varying fastest (file order)."""
    for idx in itertools.product(*reversed([list(r) for r in ranges])):
        yield tuple(reversed(idx))


def raw_slab_jobs(proxy, out_dtype, slab: int = WRITE_SLAB):
    """(read job, start) per contiguous slab of ``proxy``'s stored values, in file order,
    without dask; each job returns the slab as ``out_dtype``."""
    shape = proxy.shape
    out_dtype = np.dtype(out_dtype)
    chunk = default_chunks(shape, out_dtype.itemsize, slab)
    grid = [range(0, n, c) if n else range(1) for n, c in zip(shape, chunk)]
    for start in fortran_product(grid):
        key = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunk, shape))

        def read(key=key):
            block = proxy.sliced(key).get_unscaled()
            return block if block.dtype == out_dtype else block.astype(out_dtype)

        yield read, start


def slabs(data, slab: int = WRITE_SLAB, exact: bool = False):
    """``data`` chunked in contiguous slabs of at most ``slab`` bytes (exactly voxray's
    canonical slabs when ``exact``, as gzip members need)."""
    shape = data.shape
    chunk = expand_chunks(shape, default_chunks(shape, data.dtype.itemsize, slab))
    if tuple(data.chunks) == chunk or (not exact and _is_slab(data)):
        return data
    return data.rechunk(chunk)


def _is_slab(data) -> bool:
    shape = data.shape
    for a, sizes in enumerate(data.chunks):
        if len(sizes) > 1:
            if any(len(c) > 1 for c in data.chunks[:a]):
                return False
            if any(max(c) > 1 for c in data.chunks[a + 1 :]):
                return False
            itemsize = data.dtype.itemsize
            return max(sizes) * itemsize * math.prod(shape[:a]) <= 2 * WRITE_SLAB
    return data.nbytes <= 2 * WRITE_SLAB


def blocks(data):
    """(delayed block, start index per axis) of a dask array, in file (Fortran) order."""
    starts = [np.concatenate(([0], np.cumsum(c)[:-1])).astype(int) for c in data.chunks]
    delayed = data.to_delayed()
    for idx in np.ndindex(*reversed(delayed.shape)):
        idx = tuple(reversed(idx))
        yield delayed[idx], tuple(int(starts[a][i]) for a, i in enumerate(idx))


@dataclass(frozen=True)
class RegionWriter:
    """Writes a slab of a Fortran-ordered array into a file region; opens the file itself."""

    path: str
    offset: int
    shape: tuple[int, ...]
    itemsize: int

    def write(self, block: np.ndarray, start: tuple[int, ...]) -> int:
        block = np.asarray(block)
        linear = 0
        stride = 1
        for n, s in zip(self.shape, start):
            linear += s * stride
            stride *= n
        mv = fortran_bytes(block)
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            pos = self.offset + linear * self.itemsize
            done = 0
            while done < mv.nbytes:
                done += os.pwrite(fd, mv[done:], pos + done)
        finally:
            os.close(fd)
        return mv.nbytes


def fortran_bytes(block) -> memoryview:
    """The bytes of ``block`` in Fortran order, as a flat memoryview."""
    flat = np.ascontiguousarray(np.asarray(block).reshape(-1, order="F"))
    return memoryview(flat).cast("B")


def write_block(block, writer: RegionWriter, start) -> int:
    """A dask task: write one block where it belongs."""
    return writer.write(block, start)


def read_and_write(read, writer: RegionWriter, start) -> int:
    """A pipeline job: read one slab and write it where it belongs."""
    return writer.write(read(), start)
