"""What plotting needs of an image: its grid, its affine and a way to read a selection.

:func:`as_volume` adapts a voxray or nibabel image, or a DataArray with voxel dims
``i, j, k[, t]``, to one small :class:`Volume`. Plotting reads only through
:meth:`Volume.read`, a basic index over every axis; for a voxray image that is
``img.dataobj[key]``, which reads exactly the bytes of the selection (an
``os.pread`` plan, a seek into an indexed ``.nii.gz``, byte ranges of a remote object,
the chunks of a Zarr array), so a picture costs the planes it shows. A DataArray is
indexed with ``isel`` and computed: dask fuses the selection into voxray's read.

This module imports numpy and nibabel only (no matplotlib, dask or xarray).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError, NoAffineError
from ..headers import name_of, xyzt_units

__all__ = ["Volume", "as_volume", "require_matplotlib"]

VOXEL_DIMS = ("i", "j", "k", "t")


def require_matplotlib():
    """Import matplotlib (Agg-safe), or raise :class:`~voxray.MissingDependencyError`.

    >>> require_matplotlib().__name__
    'matplotlib'
    """
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "voxray's plotting needs matplotlib, which is not installed: "
            "pip install 'voxray[plot]'"
        ) from None
    return matplotlib


@dataclass(frozen=True)
class Volume:
    """A 3-D or 4-D image as plotting sees it.

    ``read(key)`` takes a tuple of ints and slices, one per axis, and returns the
    selected values as a float array (scaled, as ``img.dataobj[key]`` returns them;
    complex values by their modulus, RGB by the mean of its channels).
    """

    name: str | None
    shape: tuple[int, ...]
    affine: np.ndarray
    dtype: np.dtype
    reader: Any
    tr: float | None = None
    t0: float = 0.0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nt(self) -> int:
        return self.shape[3] if self.ndim == 4 else 1

    def label(self) -> str:
        return repr(self.name) if self.name else "the image"

    def read(self, key: tuple) -> np.ndarray:
        return _as_float(np.asarray(self.reader(tuple(key))))

    def read_stored(self, key: tuple) -> np.ndarray:
        """Like :meth:`read`, in the dtype the image gives (int16 stays int16: half the
        memory of float32 for a slab), RGB and complex values made real."""
        arr = np.asarray(self.reader(tuple(key)))
        return _as_float(arr) if arr.dtype.names or np.iscomplexobj(arr) else arr

    def times(self) -> np.ndarray:
        """Acquisition time of each volume in seconds (volume numbers when the repetition
        time is unknown)."""
        n = np.arange(self.nt, dtype=np.float64)
        return self.t0 + n * self.tr if self.tr else n


def _as_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.names:  # RGB / RGBA: the mean of the colour channels
        names = [n for n in arr.dtype.names if n.upper() != "A"]
        return np.mean([arr[n].astype(np.float64) for n in names], axis=0)
    if np.iscomplexobj(arr):
        return np.abs(arr)
    return arr.astype(np.float64, copy=False)


def as_volume(obj) -> Volume:
    """The :class:`Volume` of a voxray/nibabel image or of a voxray DataArray.

    Raises :class:`~voxray.InputError` for anything that is not a 3-D or 4-D image with
    an affine (a CIFTI-2 image has none; 5-D images need a selection first).

    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> vol = as_volume(vx.load(NIBABEL_DATA / "example4d.nii.gz"))
    >>> vol.shape, vol.tr
    ((128, 96, 24, 2), 2000.0)
    """
    if isinstance(obj, Volume):
        return obj
    if type(obj).__module__.startswith("xarray.") and hasattr(obj, "dims"):
        return _from_dataarray(obj)
    if not hasattr(obj, "dataobj") or not hasattr(obj, "shape"):
        raise InputError(
            f"cannot plot a {type(obj).__name__}: give a voxray or nibabel image, or a "
            "DataArray with voxel dims i, j, k (as vx.open_dataarray makes)"
        )
    name = _filename(obj)
    label = repr(name) if name else "the image"
    try:
        affine = obj.affine
    except NoAffineError:
        affine = None
    if affine is None:
        raise InputError(f"{label} has no affine (a CIFTI-2 image?): nothing to orient by")
    shape = tuple(int(n) for n in obj.shape)
    if len(shape) == 5 and shape[3] == 1:  # NIfTI's dim 5 (vectors) with one time point
        shape = (*shape[:3], shape[4])
        dataobj = obj.dataobj

        def reader(key, _d=dataobj):
            return np.asanyarray(_d[(*key[:3], 0, key[3])])
    else:
        dataobj = obj.dataobj

        def reader(key, _d=dataobj):
            return np.asanyarray(_d[key])

    _check_shape(shape, label)
    tr, t0 = _timing(getattr(obj, "header", None), len(shape))
    return Volume(name, shape, np.asarray(affine, np.float64), _dtype(obj), reader, tr, t0)


def _check_shape(shape: tuple[int, ...], label: str) -> None:
    if len(shape) not in (3, 4):
        raise InputError(
            f"{label} has shape {shape}: plotting shows 3-D and 4-D images (index the others "
            "first, e.g. img.slicer[..., 0])"
        )
    if 0 in shape:
        raise InputError(f"{label} has shape {shape}: it holds no voxels")


def _filename(img) -> str | None:
    name = name_of(img)
    return str(name) if name else None


def _dtype(img) -> np.dtype:
    try:
        return np.dtype(img.dataobj.dtype)
    except (AttributeError, TypeError):
        return np.dtype(np.float64)


def _timing(header, ndim: int) -> tuple[float | None, float]:
    """(repetition time in s or None, time of the first volume in s) from a header."""
    if ndim < 4 or header is None:
        return None, 0.0
    try:
        zooms = header.get_zooms()
        tr = float(zooms[3]) if len(zooms) > 3 else None
    except Exception:  # a header without zooms for the 4th axis
        return None, 0.0
    scale = {"msec": 1e-3, "usec": 1e-6}.get(xyzt_units(header)[1], 1.0)
    t0 = 0.0
    with contextlib.suppress(KeyError, ValueError, TypeError, IndexError):
        t0 = float(header["toffset"]) * scale
    if tr is None or not np.isfinite(tr) or tr <= 0:
        return None, t0 if np.isfinite(t0) else 0.0
    return tr * scale, t0 if np.isfinite(t0) else 0.0


def _from_dataarray(da) -> Volume:
    from ..xarray.build import affine_of

    name = da.encoding.get("source") or da.name
    label = repr(name) if name else "the DataArray"
    dims = [d for d in VOXEL_DIMS if d in da.dims]
    extra = [d for d in da.dims if d not in VOXEL_DIMS]
    if dims[:3] != ["i", "j", "k"] or extra:
        raise InputError(
            f"{label} has dims {da.dims}: plotting needs voxel dims i, j, k (and t); "
            "select or reduce the others first"
        )
    da = da.transpose(*dims)
    shape = tuple(int(da.sizes[d]) for d in dims)
    _check_shape(shape, label)

    def reader(key, _da=da, _dims=tuple(dims)):
        sel = _da.isel(dict(zip(_dims, key)))
        return np.asarray(sel.data)

    tr, t0 = None, 0.0
    if "t" in da.coords and da.sizes.get("t", 0) > 0:
        t = np.asarray(da["t"], dtype=np.float64)
        t0 = float(t[0])
        if t.size > 1 and np.isfinite(t[1] - t[0]) and t[1] > t[0]:
            tr = float(t[1] - t[0])
    return Volume(
        str(name) if name else None, shape, affine_of(da), np.dtype(da.dtype), reader, tr, t0
    )
