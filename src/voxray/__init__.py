"""voxray: out-of-core chunked arrays for neuroimaging.

Open NIfTI-1/2, NIfTI pairs, Analyze images and NIfTI-Zarr stores lazily, as
dask graphs over chunked byte-range reads. The images are nibabel's classes
(``vx.load`` returns a ``voxray.Nifti1Image``, which is a ``nibabel.Nifti1Image``)::

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
from .formats.nifti import (
    AnalyzeImage,
    Nifti1Image,
    Nifti1Pair,
    Nifti2Image,
    Nifti2Pair,
    Spm2AnalyzeImage,
    Spm99AnalyzeImage,
)
from .image import Image, aff2axcodes, as_closest_canonical
from .open import load, save, to_zarr
from .proxy import ArrayProxy, DaskProxy

__version__ = "0.1.0"

_LAZY = ("open_dataarray", "to_dataarray")


def __getattr__(name: str):
    # xarray is imported only when its part of the API is used.
    if name in _LAZY:
        from . import xarray as _vx_xarray

        return getattr(_vx_xarray, name)
    raise AttributeError(f"module 'voxray' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AnalyzeImage",
    "ArrayProxy",
    "CorruptGzipError",
    "DaskProxy",
    "FileChangedError",
    "Image",
    "ImageFileError",
    "ImageNotFoundError",
    "InvalidHeaderError",
    "Nifti1Image",
    "Nifti1Pair",
    "Nifti2Image",
    "Nifti2Pair",
    "NotAnImageError",
    "TruncatedFileError",
    "UnsupportedDataTypeError",
    "Spm2AnalyzeImage",
    "Spm99AnalyzeImage",
    "VoxrayError",
    "__version__",
    "aff2axcodes",
    "as_closest_canonical",
    "load",
    "open_dataarray",
    "to_dataarray",
    "save",
    "to_zarr",
]
