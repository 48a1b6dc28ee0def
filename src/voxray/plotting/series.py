"""Time courses and carpet plots of 4-D images, in bounded memory.

* :func:`timecourse` reads the box around a world point (one voxel, or the voxels whose
  centres lie within ``radius`` mm) over every volume: a few bytes per volume.
* :func:`carpet` streams the image once, in slabs of whole ``k`` planes over all
  volumes (half of ``max_memory`` for the slab as stored, half for float64 work on
  groups of its voxels): each voxel's series is
  detrended and standardised (z-scored with ``ddof=1``, nilearn's ``zscore_sample``)
  within its slab, and consecutive voxels are averaged into at most ``rows`` rows, so
  the picture costs ``rows x volumes`` values whatever the image size. Every stored byte
  is read once; the slab order is the storage order of NIfTI, MGH and voxray's Zarr
  (``k`` slowest of the spatial axes), so slabs are long contiguous runs.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .ortho import BACKGROUND, FOREGROUND, new_figure
from .planes import check_coords
from .volume import Volume, as_volume

__all__ = ["carpet", "plot_carpet", "plot_timecourse", "timecourse"]

#: Working memory of one carpet slab (float64 values), bytes.
CARPET_MEMORY = 512 * 2**20


def _require_4d(vol: Volume, what: str) -> None:
    if vol.ndim != 4:
        raise InputError(f"{vol.label()} is {vol.ndim}-D: a {what} needs a 4-D image")


def timecourse(img, coords, radius: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, values) at world point ``coords``: the nearest voxel's series, or the
    mean over voxels whose centres are within ``radius`` mm (the nearest voxel when none
    is), as nilearn's sphere masker takes it.

    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> t, y = timecourse(vx.load(NIBABEL_DATA / "example4d.nii.gz"), (0, 0, 10))
    >>> t.tolist(), y.shape
    ([0.0, 2000.0], (2,))
    """
    vol = as_volume(img)
    _require_4d(vol, "time course")
    xyz = check_coords(vol, coords)
    A, b = vol.affine[:3, :3], vol.affine[:3, 3]
    inv = np.linalg.inv(A)
    centre = inv @ (xyz - b)
    nearest = np.floor(centre + 0.5).astype(int)
    shape = np.array(vol.shape[:3])
    if radius is None or radius <= 0:
        if np.any(nearest < 0) or np.any(nearest >= shape):
            raise InputError(f"{tuple(xyz)} (mm) is outside {vol.label()}'s field of view")
        return vol.times(), vol.read((*(int(i) for i in nearest), slice(None)))
    r = float(radius)
    # The voxel box holding the sphere: the images of the cube's corners.
    corners = np.array([[x, y, z] for x in (-r, r) for y in (-r, r) for z in (-r, r)])
    vox = corners @ inv.T + centre
    lo = np.maximum(np.floor(vox.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(vox.max(axis=0)).astype(int) + 1, shape)
    if np.any(hi <= lo):
        raise InputError(f"a {r} mm sphere at {tuple(xyz)} (mm) is outside {vol.label()}")
    grid = np.stack(
        np.meshgrid(*(np.arange(a, z) for a, z in zip(lo, hi)), indexing="ij"), axis=-1
    )
    dist = np.linalg.norm((grid - centre) @ A.T, axis=-1)
    inside = dist <= r
    if not inside.any():
        if np.any(nearest < lo) or np.any(nearest >= hi):
            raise InputError(f"a {r} mm sphere at {tuple(xyz)} (mm) is outside {vol.label()}")
        inside[tuple(nearest - lo)] = True
    box = vol.read((*(slice(int(a), int(z)) for a, z in zip(lo, hi)), slice(None)))
    return vol.times(), box[inside].mean(axis=0)


def plot_timecourse(
    img,
    coords,
    radius: float | None = None,
    label: str | None = None,
    title: str | None = None,
    figure=None,
    figsize=(8.0, 2.5),
    **line_kwargs,
):
    """Plot the series at one world point, or several: ``coords`` is ``(x, y, z)`` or a
    list of them (mm); ``radius`` averages a sphere (see :func:`timecourse`).

    The x axis is time in seconds from the header's repetition time (volume numbers
    when it is unknown). Returns a Figure with one axes, one line per point.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> fig = vx.plot_timecourse(vx.load(NIBABEL_DATA / "example4d.nii.gz"), (0, 0, 10))
    >>> fig.axes[0].get_xlabel()
    'time (s)'
    """
    vol = as_volume(img)
    _require_4d(vol, "time course")
    points = np.asarray(coords, dtype=np.float64)
    if points.ndim == 1:
        points = points[None]
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"coords must be (x, y, z) or a list of them (mm), got {coords!r}")
    fig = new_figure(figure, figsize)
    fig.set_facecolor("white")
    ax = fig.add_subplot(1, 1, 1)
    for p in points:
        times, values = timecourse(vol, p, radius)
        name = label or ", ".join(f"{c:g}" for c in p) + (f" (r={radius:g} mm)" if radius else "")
        ax.plot(times, values, label=name, **line_kwargs)
    ax.set_xlabel("time (s)" if vol.tr else "volume")
    ax.set_ylabel("value")
    if len(points) > 1 or label:
        ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def carpet(
    img,
    mask=None,
    rows: int = 800,
    detrend: bool = True,
    max_memory: int = CARPET_MEMORY,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows x volumes array, times, voxels per row): the carpet of ``img``, streamed once.

    ``mask`` is a boolean array or a 3-D image on the same grid (nonzero = in); default
    every voxel whose series is not constant. Voxels are taken ``k`` slab by slab, ``i``
    fastest, and each row is the mean of ``voxels per row`` consecutive standardised
    series (1 when ``rows`` >= the voxel count: the full carpet).

    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> c, t, per_row = carpet(vx.load(NIBABEL_DATA / "example4d.nii.gz"), rows=100)
    >>> c.shape[1], per_row > 1
    (2, True)
    """
    vol = as_volume(img)
    _require_4d(vol, "carpet plot")
    ni, nj, nk, nt = vol.shape
    keep = _mask_array(mask, vol)
    candidates = int(keep.sum()) if keep is not None else ni * nj * nk
    rows = max(1, int(rows))
    per_row = max(1, -(-candidates // rows))
    acc = np.zeros((-(-candidates // per_row), nt))
    counts = np.zeros(acc.shape[0], np.int64)
    # Half the budget for the slab as stored, half for float64 work on groups of voxels.
    itemsize = max(1, vol.dtype.itemsize)
    slab = max(1, int(max_memory // 2 // max(1, ni * nj * nt * itemsize)))
    group = max(1, int(max_memory // 2 // (nt * 8 * 4)))
    trend = None
    if detrend and nt > 2:
        trend = np.arange(nt, dtype=np.float64) - (nt - 1) / 2
        trend /= np.sqrt(trend @ trend)
    n = 0  # voxels in the carpet so far
    for k0 in range(0, nk, slab):
        k1 = min(nk, k0 + slab)
        block = vol.read_stored((slice(None), slice(None), slice(k0, k1), slice(None)))
        for kk in range(k1 - k0):
            plane = block[:, :, kk, :].transpose(1, 0, 2).reshape(ni * nj, nt)  # i fastest
            if keep is not None:
                plane = plane[keep[:, :, k0 + kk].T.ravel()]
            for g0 in range(0, len(plane), group):
                z = _standardised(plane[g0 : g0 + group], trend, drop=keep is None)
                if not len(z):
                    continue
                bins = (n + np.arange(len(z))) // per_row
                starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
                acc[bins[starts]] += np.add.reduceat(z, starts, axis=0)
                counts[bins[starts]] += np.diff(np.r_[starts, len(z)])
                n += len(z)
        del block
    used = counts > 0
    return acc[used] / counts[used, None], vol.times(), per_row


def _standardised(x: np.ndarray, trend: np.ndarray | None, drop: bool) -> np.ndarray:
    """Series (voxels x time) without their mean (and linear trend), in units of their
    sample standard deviation (ddof=1). Constant series are dropped (``drop``) or 0."""
    x = x.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    if trend is not None:  # least squares on an orthonormal trend: one dot product
        x -= np.outer(x @ trend, trend)
    nt = x.shape[1]
    sd = np.sqrt(np.einsum("ij,ij->i", x, x) / (nt - 1)) if nt > 1 else np.zeros(len(x))
    ok = (sd > 0) & np.isfinite(sd)
    if drop:
        x, sd = x[ok], sd[ok]
    else:  # a masked voxel with a constant series shows as 0 (nilearn's z-score gives 0)
        x[~ok] = 0.0
        sd = np.where(ok, sd, 1.0)
    x /= sd[:, None]
    return x


def _mask_array(mask, vol: Volume) -> np.ndarray | None:
    if mask is None:
        return None
    if hasattr(mask, "dataobj") or type(mask).__module__.startswith("xarray."):
        mvol = as_volume(mask)
        if mvol.shape[:3] != vol.shape[:3] or not np.allclose(mvol.affine, vol.affine, atol=1e-3):
            raise InputError(
                f"the mask {mvol.label()} (shape {mvol.shape}) is not on {vol.label()}'s grid "
                f"(shape {vol.shape[:3]}); resample it first"
            )
        arr = mvol.read((slice(None),) * mvol.ndim)
        arr = arr if arr.ndim == 3 else arr[..., 0]
    else:
        arr = np.asarray(mask)
        if arr.shape != vol.shape[:3]:
            raise InputError(
                f"the mask has shape {arr.shape}; {vol.label()} has {vol.shape[:3]} voxels"
            )
    return np.asarray(arr != 0) & ~np.isnan(arr)


def plot_carpet(
    img,
    mask=None,
    rows: int = 800,
    detrend: bool = True,
    vmin=None,
    vmax=None,
    cmap="gray",
    title: str | None = None,
    figure=None,
    figsize=(8.0, 4.0),
    max_memory: int = CARPET_MEMORY,
):
    """A carpet plot (voxels x time, each voxel's series standardised), streamed once over
    the data in bounded memory (see :func:`carpet`).

    ``vmin``/``vmax`` default to -/+ the 98th percentile of the absolute values shown.
    Returns a Figure; its image's array is the carpet, rows top to bottom in voxel order.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> fig = vx.plot_carpet(vx.load(NIBABEL_DATA / "example4d.nii.gz"), rows=50)
    >>> fig.axes[0].get_xlabel()
    'time (s)'
    """
    vol = as_volume(img)
    values, times, per_row = carpet(vol, mask, rows, detrend, max_memory)
    if vmin is None or vmax is None:
        lim = float(np.percentile(np.abs(values), 98)) if values.size else 1.0
        lim = lim if lim > 0 else 1.0
        vmin = -lim if vmin is None else vmin
        vmax = lim if vmax is None else vmax
    fig = new_figure(figure, figsize)
    ax = fig.add_subplot(1, 1, 1)
    step = (times[1] - times[0]) if len(times) > 1 else 1.0
    ax.imshow(
        values,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        extent=(times[0] - step / 2, times[-1] + step / 2, len(values), 0),
    )
    ax.set_facecolor(BACKGROUND)
    ax.set_xlabel("time (s)" if vol.tr else "volume", color=FOREGROUND)
    per = f", {per_row} voxels per row" if per_row > 1 else ""
    ax.set_ylabel(f"voxels ({len(values)} rows{per})", color=FOREGROUND)
    ax.tick_params(colors=FOREGROUND, labelsize=8)
    ax.set_yticks([])
    if title:
        ax.set_title(title, loc="left", color=FOREGROUND)
    fig.tight_layout()
    return fig
