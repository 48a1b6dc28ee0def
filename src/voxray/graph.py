"""Layout + source -> dask array.

The graph is ``dask.array.from_array`` over a :class:`~voxray.reader.Reader`:
one task per chunk, each calling ``reader[chunk_slices]``, the reader stored
once in the graph (not inlined into every task). The reader holds plain
values only, so the graph pickles small and runs on any worker; dask fuses a
later slice into the read (``x[..., 3]`` reads one volume, not its chunk).
The name is a deterministic token of file identity, layout and chunks.

This module imports dask; nothing imports it until a dask array is asked for.
"""

from __future__ import annotations

import os

import numpy as np

from .planning import default_chunks, expand_chunks
from .reader import Reader

__all__ = ["resolve_chunks", "to_dask"]


def resolve_chunks(chunks, shape, dtype) -> tuple[tuple[int, ...], ...]:
    """Dask chunks for an image: ``"auto"`` or None gives voxray's contiguous slabs;
    anything else is interpreted by ``dask.array.core.normalize_chunks``."""
    dtype = np.dtype(dtype)
    slabs = default_chunks(shape, dtype.itemsize)
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        return expand_chunks(shape, slabs)
    from dask.array.core import normalize_chunks

    if isinstance(chunks, dict):  # axes not named keep voxray's slab chunking
        chunks = tuple(chunks.get(a, chunks.get(a - len(shape), s)) for a, s in enumerate(slabs))
    return normalize_chunks(chunks, tuple(shape), dtype=dtype, previous_chunks=slabs)


def to_dask(reader: Reader, chunks="auto"):
    """A dask array of the scaled values ``reader`` reads, in ``chunks``."""
    import dask.array as da
    from dask.base import tokenize

    chunks = resolve_chunks(chunks, reader.shape, reader.dtype)
    stem = os.path.basename(str(reader.name)).split(".")[0] or "image"
    name = f"voxray-{stem}-{tokenize(reader, chunks)}"
    return da.from_array(
        reader,
        chunks=chunks,
        name=name,
        meta=np.empty((0,) * reader.ndim, dtype=reader.dtype),
        asarray=False,
        lock=False,
        inline_array=False,
    )
