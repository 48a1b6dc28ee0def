"""Images as xarray DataArrays: voxel dims, world coordinates from the affine.

Importing this module registers the ``.vx`` DataArray accessor; the xarray
backend engine ``"voxray"`` is registered by entry point.
"""

from __future__ import annotations

import os

import xarray as xr

from .accessor import VoxrayAccessor, reorient
from .build import DIMS, affine_of, build_dataarray, to_dataarray
from .index import AffineIndex, AffineMismatchError, AxisIndex
from .transform import AffineTransform

__all__ = [
    "DIMS",
    "AffineIndex",
    "AffineMismatchError",
    "AffineTransform",
    "AxisIndex",
    "VoxrayAccessor",
    "affine_of",
    "build_dataarray",
    "open_dataarray",
    "reorient",
    "to_dataarray",
]


_SLABS = object()


def open_dataarray(path, chunks=_SLABS, **kwargs) -> xr.DataArray:
    """``xr.open_dataarray(path, engine="voxray", chunks=chunks)``.

    ``chunks={}`` (the default) gives dask arrays in voxray's contiguous slab chunks;
    ``chunks=None`` gives xarray's lazy indexing (reads only what an index selects);
    anything else is dask chunking as xarray interprets it.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> da = vx.open_dataarray(NIBABEL_DATA / "example4d.nii.gz")
    >>> da.dims, da.name, da.chunks is not None
    (('i', 'j', 'k', 't'), 'example4d', True)
    """
    if chunks is _SLABS:
        chunks = {}
    da = xr.open_dataarray(os.fspath(path), engine="voxray", chunks=chunks, **kwargs)
    return _index_coords(da)


def _index_coords(da: xr.DataArray) -> xr.DataArray:
    """Give world coordinates back their lazy, index-computed values (xarray's backend
    chunking turns every lazily computed variable into a dask array)."""
    seen = {}
    for index in da.xindexes.values():
        if isinstance(index, AxisIndex | AffineIndex):
            seen[id(index)] = index
    if not seen:
        return da
    coords = xr.Coordinates()
    for index in seen.values():
        coords = coords.merge(xr.Coordinates.from_xindex(index)).coords
    return da.assign_coords(coords)
