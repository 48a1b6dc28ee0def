"""Pyramid levels, out of core: each level from the previous one, block by block.

Spatial axes are halved by 2x2x2 blocks (an odd axis's last block is partial):
the **mean** for images (rounded back to integer dtypes), the **mode** for label
images (the most frequent label; ties go to the smallest). Non-spatial axes are
kept. A partial block's mean is the mean of the voxels it has.
"""

from __future__ import annotations

import numpy as np

__all__ = ["downsample", "level_shapes"]


def level_shapes(shape, spatial: tuple[int, ...], chunk, levels: int | None):
    """Shapes of every level, until the spatial axes fit in one chunk (or ``levels``)."""
    shapes = [tuple(shape)]
    while True:
        cur = shapes[-1]
        if levels is not None and len(shapes) >= levels:
            return shapes
        fits = all(cur[a] <= chunk[a] for a in spatial)
        if levels is None and fits:
            return shapes
        if all(cur[a] == 1 for a in spatial):
            return shapes
        shapes.append(tuple((n + 1) // 2 if a in spatial else n for a, n in enumerate(cur)))


def _pair_sum(x, axis):
    """Sums of neighbouring pairs along ``axis``; a lone last element counts twice (so
    dividing by two gives the mean of the elements a partial block has)."""
    n = x.shape[axis]

    def sl(start, stop, step=1):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop, step)
        return tuple(index)

    even = n - n % 2
    out = x[sl(0, even, 2)] + x[sl(1, even, 2)]
    if n % 2:
        out = np.concatenate([out, 2 * x[sl(n - 1, n)]], axis=axis)
    return out


def _mean_blocks(x, axes, dtype):
    # float32 is exact for sums of eight values of 16-bit integers (< 2**24).
    exact32 = np.dtype(x.dtype).kind in "iub" and np.dtype(x.dtype).itemsize <= 2
    out = x.astype(np.float32 if exact32 else np.float64)
    for a in axes:
        out = _pair_sum(out, a)
    out /= 2 ** len(axes)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(dtype)


def _mode_blocks(x, axes, dtype):
    # Gather each block's (up to 8) voxels along a new last axis, then the mode per row.
    blocks = x
    for a in axes:
        n = blocks.shape[a]
        take = np.arange(0, n, 2)
        lo = np.take(blocks, take, axis=a)
        hi = np.take(blocks, np.minimum(take + 1, n - 1), axis=a)
        blocks = np.stack([lo, hi], axis=-1) if blocks is x else np.concatenate([lo, hi], axis=-1)
    vals = np.sort(blocks, axis=-1)
    counts = (vals[..., :, None] == vals[..., None, :]).sum(-1)
    best = np.argmax(counts, axis=-1)  # first of the most frequent: the smallest
    return np.take_along_axis(vals, best[..., None], axis=-1)[..., 0].astype(dtype)


def _reduce(block, axes, method, dtype):
    if method == "mean":
        return _mean_blocks(block, axes, dtype)
    return _mode_blocks(block, axes, dtype)


def downsample(x, spatial: tuple[int, ...], method: str = "mean"):
    """One pyramid level down from dask array ``x`` (Zarr order), halving ``spatial`` axes."""

    if method not in ("mean", "mode"):
        raise ValueError(f"method must be 'mean' or 'mode', not {method!r}")
    axes = tuple(a for a in spatial if x.shape[a] > 1)
    if not axes:
        return x
    # Chunks of even size along the halved axes (so every 2x2x2 block lies in one chunk).
    chunks = []
    for a, c in enumerate(x.chunks):
        if a in axes:
            size = max(2, (max(c) // 2) * 2)
            chunks.append(size)
        else:
            chunks.append(c)
    x = x.rechunk(tuple(chunks))
    out_chunks = tuple(
        tuple((n + 1) // 2 for n in c) if a in axes else c for a, c in enumerate(x.chunks)
    )
    return x.map_blocks(_reduce, axes, method, x.dtype, dtype=x.dtype, chunks=out_chunks)
