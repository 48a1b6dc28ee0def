"""The data part of a file, written from a value plan: what every format's writer shares.

A format writes its own header (and footer) bytes around the data; the data itself is
the value plan's values in Fortran order, written one of two ways:

* :func:`write_plain` -- to a file, slabs land in their regions in parallel
  (:class:`~voxray.writers.pipeline.RegionWriter`); to a stream, slabs go in file order;
* :func:`write_members` -- compressed in parallel into random-access gzip members, one
  per canonical slab, so the bytes depend neither on the input's chunks nor on the
  scheduler.

Either way: an in-memory plan is encoded at once, a raw copy of a local file is read and
written by ordered bounded threads, and anything else (computed values, a cluster)
runs as windows of dask tasks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from . import pipeline
from .gzip import MemberWriter, compress_block, member_size, read_and_compress
from .values import ValuePlan

__all__ = ["write_members", "write_plain"]


def write_plain(values: ValuePlan, target, offset: int, update: Callable[[int], object]) -> None:
    """Write the values uncompressed: at ``offset`` of ``target``'s file in parallel, or,
    for a stream target (no path), in order after what was written to it already."""
    local = values.kind == "raw" and pipeline.client() is None
    if target.path is not None:
        writer = pipeline.RegionWriter(
            target.path, offset, values.shape, values.out_dtype.itemsize
        )
        if values.in_memory:  # a small in-memory image, encoded already
            update(writer.write(values.data, (0,) * len(values.shape)))
        elif local:
            jobs = [
                functools.partial(pipeline.read_and_write, read, writer, start)
                for read, start in pipeline.raw_slab_jobs(values.proxy, values.out_dtype)
            ]
            pipeline.pipeline(jobs, update, pipeline.threads())
        else:
            import dask

            data = pipeline.slabs(values.to_dask())
            tasks = [
                dask.delayed(pipeline.write_block, pure=False)(b, writer, s)
                for b, s in pipeline.blocks(data)
            ]
            pipeline.run_windows(tasks, update, pipeline.window())
        return

    def consume(block) -> None:  # a stream: slabs in file order
        update(target.write(pipeline.fortran_bytes(block)))

    if values.in_memory:
        update(target.write(pipeline.fortran_bytes(values.data)))
    elif local:
        jobs = [read for read, _ in pipeline.raw_slab_jobs(values.proxy, values.out_dtype)]
        pipeline.pipeline(jobs, consume, pipeline.threads())
    else:
        data = pipeline.slabs(values.to_dask(), exact=True)
        pipeline.run_windows([b for b, _ in pipeline.blocks(data)], consume, pipeline.window())


def write_members(values: ValuePlan, out: MemberWriter, level: int) -> None:
    """Write the values as gzip members to ``out`` (after whatever it holds already)."""
    member = member_size(values.nbytes)
    if values.in_memory:
        out.write_members(compress_block(values.data, level, member))
    elif values.kind == "raw" and pipeline.client() is None:
        jobs = [
            functools.partial(read_and_compress, read, level, member)
            for read, _ in pipeline.raw_slab_jobs(values.proxy, values.out_dtype, member)
        ]
        pipeline.pipeline(jobs, out.write_members, pipeline.threads())
    else:
        import dask

        data = pipeline.slabs(values.to_dask(), member, exact=True)
        tasks = [
            dask.delayed(compress_block, pure=False)(b, level, member)
            for b, _ in pipeline.blocks(data)
        ]
        pipeline.run_windows(tasks, out.write_members, pipeline.window())
