"""nilearn's ``threshold_img``, lazily, with an exact percentile found in bounded memory
(histogram refinement over streamed passes; see :func:`order_statistics`).

>>> import numpy as np
>>> from voxray import Image
>>> img = Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4))
>>> threshold_img(img, 20.0).get_fdata().nonzero()[0].size  # 20, 21, 22 and 23 kept
4
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .image import new_img_like

__all__ = ["threshold_img", "order_statistics", "data_summary"]
from .inputs import as_image, output
from .smooth import lazy_image

# -- threshold_img ----------------------------------------------------------------------

BINS = 256
EXACT_BELOW = 1 << 20  # a candidate set this small is gathered and sorted


def finite_zero(block):
    """nilearn's ``ensure_finite``: non-finite values become 0 (module level: pickles)."""
    if block.dtype.kind not in "fc":
        return block
    return np.where(np.isfinite(block), block, 0).astype(block.dtype)


def _in_set(x, levels):
    keep = np.ones(x.shape, bool)
    for lo, hi, j in levels:
        keep &= _bin_of(x, lo, hi) == j
    return keep


def _bin_of(x, lo, hi):
    if hi <= lo:
        return np.zeros(x.shape, np.int64)
    b = np.floor((x.astype(np.float64) - lo) / (hi - lo) * BINS).astype(np.int64)
    return np.clip(b, 0, BINS - 1)


def hist_block(x, valid, levels, lo, hi):
    """Counts, minima and maxima per bin of the block's candidates (one block's part of a
    refinement pass)."""
    x = x[valid & _in_set(x, levels)]
    b = _bin_of(x, lo, hi)
    counts = np.bincount(b, minlength=BINS)
    mins = np.full(BINS, np.inf)
    maxs = np.full(BINS, -np.inf)
    np.minimum.at(mins, b, x)
    np.maximum.at(maxs, b, x)
    return np.stack([counts, mins, maxs])[None]


def gather_block(x, valid, levels):
    return np.sort(x[valid & _in_set(x, levels)].astype(np.float64))


def order_statistics(x, valid, ranks, summary=None):
    """The values of ``x[valid]`` at sorted positions ``ranks`` (consecutive ints), exact,
    in bounded memory: a histogram of 256 bins per pass narrows the candidates to the bin
    holding the first rank (each pass reads the data once; a pass keeps 768 numbers per
    chunk) until at most 2**20 candidates remain, which are gathered and sorted."""
    import dask

    blocks = list(zip(x.to_delayed().ravel(), valid.to_delayed().ravel(), strict=True))
    n, lo, hi = summary if summary is not None else data_summary(x, valid)
    levels, below, count, found = [], 0, int(n), {}
    lo, hi = float(lo), float(hi)
    while True:
        todo = [r for r in ranks if r not in found]
        if not todo:
            return [found[r] for r in ranks]
        if lo == hi:
            found.update({r: lo for r in todo})
        elif count <= EXACT_BELOW:
            parts = [dask.delayed(gather_block)(xb, vb, list(levels)) for xb, vb in blocks]
            values = np.sort(np.concatenate(dask.compute(*parts)))
            found.update({r: float(values[r - below]) for r in todo})
        else:
            parts = [dask.delayed(hist_block)(xb, vb, list(levels), lo, hi) for xb, vb in blocks]
            stats = np.concatenate(dask.compute(*parts))
            counts = stats[:, 0].sum(axis=0)
            mins, maxs = stats[:, 1].min(axis=0), stats[:, 2].max(axis=0)
            cum = below + np.cumsum(counts)
            j = int(np.searchsorted(cum, todo[0], side="right"))
            for r in todo[1:]:  # a later rank past bin j is the minimum of a later bin
                k = int(np.searchsorted(cum, r, side="right"))
                if k != j:
                    found[r] = float(mins[k])
            below, count = int(cum[j] - counts[j]), int(counts[j])
            levels.append((lo, hi, j))
            lo, hi = float(mins[j]), float(maxs[j])


def data_summary(x, valid):
    """Count, minimum and maximum of ``x[valid]`` (one read)."""
    import dask
    import dask.array as da

    xf = x.astype(np.float64)
    return dask.compute(
        valid.sum(), da.where(valid, xf, np.inf).min(), da.where(valid, xf, -np.inf).max()
    )


def _percentile(x, valid, per: float) -> float:
    """scipy's ``scoreatpercentile(x[valid], per)`` ('fraction' interpolation), exact."""
    summary = data_summary(x, valid)
    n = int(summary[0])
    if n == 0:
        return float("nan")
    idx = per / 100.0 * (n - 1)
    i = int(idx)
    if i == idx:
        (v,) = order_statistics(x, valid, [i], summary)
        return float(np.add.reduce(np.array([v], x.dtype) * np.array(1)) / 1.0)
    vals = np.array(order_statistics(x, valid, [i, i + 1], summary), x.dtype)
    weights = np.array([(i + 1 - idx), (idx - i)], float)
    return float(np.add.reduce(vals * weights) / weights.sum())


def cluster_volume(vol, cluster_threshold):
    """nilearn's ``_apply_cluster_size_threshold`` on one 3-D volume (6-connectivity)."""
    from scipy.ndimage import generate_binary_structure, label

    vol = vol.copy()
    struct = generate_binary_structure(3, 1)
    for sign in np.unique(np.sign(vol)):
        labels = label(((vol * sign) > 0).astype(int), struct)[0]
        sizes = np.bincount(labels.ravel())
        small = np.flatnonzero(sizes < cluster_threshold)
        small = small[small > 0]
        if small.size:
            vol[np.isin(labels, small)] = 0
    return vol


def threshold_img(
    img,
    threshold,
    cluster_threshold=0,
    two_sided: bool = True,
    mask_img=None,
    copy: bool = True,
    copy_header: bool = True,
):
    """Zero voxels below a threshold, optionally clusters smaller than
    ``cluster_threshold`` voxels (nilearn's ``threshold_img``).

    Lazy for a float ``threshold``. A percentile string ("90%") is computed at call
    time, exactly, by :func:`order_statistics` (a few passes over the data, bounded
    memory). ``cluster_threshold > 0`` labels whole volumes: one 3-D volume per task is
    held in memory. ``copy`` is accepted (nothing is modified in place); nilearn's warning
    for a threshold beyond the data's range is not issued (it would read the data).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> data = np.array([[[0., 0.2, 0.8], [1.5, 3.0, 0.1], [0.4, 2.2, 0.0]]])
    >>> out = threshold_img(vx.Image(data, np.eye(4)), 1.0, two_sided=False)
    >>> out.get_fdata()[0, 1].tolist()
    [1.5, 3.0, 0.0]
    """
    import dask.array as da

    im = as_image(img)
    arr = im.to_dask()
    if arr.ndim not in (3, 4):
        raise InputError(f"img: expected a 3D/4D image, got shape {im.shape!r}")
    arr = arr.map_blocks(finite_zero, dtype=arr.dtype)
    valid = None
    if mask_img is not None:
        m = as_image(mask_img, "mask_img")
        if m.ndim == 4 and m.shape[3] == 1:
            m = lazy_image(m.to_dask()[..., 0], m.affine)
        if m.ndim != 3:
            raise InputError(f"mask_img: expected a 3D image, got shape {m.shape!r}")
        if m.shape[:3] != im.shape[:3] or not np.allclose(m.affine, im.affine):
            from .resample import resample_img

            m = resample_img(
                m, target_affine=im.affine, target_shape=im.shape[:3], interpolation="nearest"
            )
        inside = m.to_dask() != 0
        inside = inside[..., None] if arr.ndim == 4 else inside
        inside = inside.rechunk(arr.chunks[:3] + inside.chunks[3:])
        valid = da_broadcast(inside, arr)
        arr = da.where(valid, arr, np.zeros((), arr.dtype)).astype(arr.dtype)
    cutoff = _cutoff(threshold, arr, valid, two_sided)
    if two_sided:
        zero = (-cutoff < arr) & (arr < cutoff)
    elif cutoff >= 0:
        zero = arr < cutoff
    else:
        zero = arr > cutoff

    arr = da.where(zero, np.zeros((), arr.dtype), arr).astype(arr.dtype)
    if cluster_threshold > 0:
        arr4 = arr if arr.ndim == 4 else arr[..., None]
        arr4 = arr4.rechunk((*arr4.shape[:3], 1))
        arr4 = arr4.map_blocks(_cluster_block, cluster_threshold, dtype=arr4.dtype)
        arr = arr4 if arr.ndim == 4 else arr4[..., 0]
    return output(new_img_like(im, arr, im.affine, copy_header=copy_header), img)


def _cluster_block(block, cluster_threshold):
    return cluster_volume(block[..., 0], cluster_threshold)[..., None]


def da_broadcast(inside, arr):
    import dask.array as da

    return da.broadcast_to(inside, arr.shape, chunks=arr.chunks)


def _cutoff(threshold, arr, valid, two_sided: bool) -> float:
    import dask.array as da

    percentile = False
    if isinstance(threshold, str):
        message = (
            f"threshold: a string should be a number followed by the percent sign, "
            f"e.g. '25.3%', got {threshold!r}"
        )
        if not threshold.endswith("%"):
            raise InputError(message)
        try:
            threshold = float(threshold[:-1])
        except ValueError:
            raise InputError(message) from None
        percentile = True
    elif isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise InputError(
            f"threshold: should be either a number or a string finishing with a percent "
            f"sign, got {threshold!r}"
        )
    threshold = float(threshold)
    if threshold < 0:
        if two_sided:
            raise InputError(
                f"threshold: should not be a negative value when two_sided=True, got {threshold!r}"
            )
        if percentile:
            raise InputError(f"threshold: should not be a negative percentile, got {threshold!r}%")
        return threshold
    if not percentile:
        return threshold
    if not 0 <= threshold <= 100:
        raise InputError(f"threshold: a percentile must be in [0, 100], got {threshold!r}%")
    ok = da.ones(arr.shape, dtype=bool, chunks=arr.chunks) if valid is None else valid
    if two_sided:
        x = abs(arr)
    else:
        x = arr
        ok = ok & (arr >= 0)
    return _percentile(x, ok, threshold) + 1e-5
