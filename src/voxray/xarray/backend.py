"""The xarray backend engine ``"voxray"``: ``xr.open_dataarray(path, engine="voxray")``.

``chunks={}`` gives dask arrays in voxray's slab chunks (``preferred_chunks``);
``chunks=None`` gives xarray's lazy indexing over voxray's proxy, which reads
only the bytes an index selects.
"""

from __future__ import annotations

import os

import numpy as np
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

__all__ = ["VoxrayBackendArray", "VoxrayBackendEntrypoint", "looks_like_an_image"]


class VoxrayBackendArray(BackendArray):
    """A picklable lazily indexed array over a voxray reader (plain values only)."""

    def __init__(self, reader):
        self.reader = reader
        self.shape = reader.shape
        self.dtype = np.dtype(reader.dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        return np.asarray(self.reader[key])


def looks_like_an_image(path) -> bool:
    """True for a name or file some voxray format claims (by suffix, or by its first bytes:
    the same test ``vx.load`` uses)."""
    if not isinstance(path, str | os.PathLike):
        return False
    from ..errors import VoxrayError
    from ..open import find_format

    try:
        find_format(os.fspath(path))
    except (VoxrayError, OSError):
        return False
    return True


class VoxrayBackendEntrypoint(BackendEntrypoint):
    """Open NIfTI-1/2, NIfTI pairs and Analyze images with voxray."""

    description = "NIfTI-1/2, NIfTI pairs and Analyze images, lazily, with world coordinates"
    url = "https://github.com/voxray/voxray"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "name",
        "level",
        "storage_options",
    )

    def open_dataset(
        self, filename_or_obj, *, drop_variables=None, name=None, level=0, storage_options=None
    ):
        import xarray as xr

        from ..open import load
        from ..proxy import ArrayProxy
        from .build import build_dataarray

        img = load(os.fspath(filename_or_obj), storage_options=storage_options, level=level)
        proxy = img.dataobj
        if not isinstance(proxy, ArrayProxy):  # pragma: no cover - load gives proxies
            raise TypeError(f"unexpected data object {type(proxy)}")
        data = indexing.LazilyIndexedArray(VoxrayBackendArray(proxy.reader))
        da = build_dataarray(img, data, name=name)
        name = da.name if da.name is not None else "image"
        if name in da.coords or name in da.dims:  # "x.nii" would clash with coordinate x
            name = "image"
        ds = xr.Dataset({name: da.variable}, coords=da.coords)
        ds[name].encoding = dict(da.encoding)
        ds.encoding["source"] = da.encoding.get("source")
        if drop_variables:
            ds = ds.drop_vars([v for v in drop_variables if v in ds.variables])
        return ds

    def guess_can_open(self, filename_or_obj) -> bool:
        return looks_like_an_image(filename_or_obj)
