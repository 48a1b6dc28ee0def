"""voxray: out-of-core chunked arrays for neuroimaging.

Open NIfTI-1/2, NIfTI pairs and Analyze images lazily, as dask graphs over
chunked byte-range reads, with nibabel's image API kept::

    import voxray as vx
    img = vx.load("bold.nii.gz")          # header only
    img.dataobj[..., 3]                   # reads one volume
    img.to_dask().mean(axis=-1)           # a dask graph over chunked reads

``import voxray`` imports neither dask, xarray nor zarr: header-only work
stays fast.
"""

from .errors import (
    CorruptGzipError,
    FileChangedError,
    ImageFileError,
    ImageNotFoundError,
    InvalidHeaderError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedDataTypeError,
    VoxrayError,
)
from .image import Image, aff2axcodes, as_closest_canonical, load
from .proxy import ArrayProxy, DaskProxy

__version__ = "0.1.0"


def save(img, filename, **kwargs) -> None:
    """Write an Image, DataArray or nibabel image out of core; the format comes from the
    suffix: .nii, .nii.gz, .hdr/.img (:func:`voxray.writers.save`) or .nii.zarr / .zarr
    (:func:`voxray.to_zarr`)."""
    if str(filename).rstrip("/").endswith(".zarr"):
        to_zarr(img, filename, **kwargs)
        return
    from .writers import save as _save

    _save(img, filename, **kwargs)


def to_zarr(img_or_path, store, **kwargs) -> str:
    """Write an image (or image file) as OME-Zarr 0.5 / NIfTI-Zarr, out of core, with a
    pyramid; see :func:`voxray.zarr.to_zarr`."""
    from .zarr import to_zarr as _to_zarr

    return _to_zarr(img_or_path, store, **kwargs)


def __getattr__(name: str):
    # xarray is imported only when its part of the API is used.
    if name in ("open_dataarray", "to_dataarray"):
        from . import xarray as _vx_xarray

        return getattr(_vx_xarray, name)
    raise AttributeError(f"module 'voxray' has no attribute {name!r}")


__all__ = [
    "ArrayProxy",
    "CorruptGzipError",
    "DaskProxy",
    "FileChangedError",
    "Image",
    "ImageFileError",
    "ImageNotFoundError",
    "InvalidHeaderError",
    "NotAnImageError",
    "TruncatedFileError",
    "UnsupportedDataTypeError",
    "VoxrayError",
    "__version__",
    "aff2axcodes",
    "as_closest_canonical",
    "load",
    "open_dataarray",
    "save",
    "to_zarr",
]
