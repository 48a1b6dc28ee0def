"""voxray: out-of-core chunked arrays for neuroimaging.

Open every volumetric format nibabel reads (NIfTI-1/2, NIfTI pairs, Analyze, CIFTI-2,
MGH/MGZ, MINC1/2, PAR/REC, AFNI, ECAT) and NIfTI-Zarr stores lazily, as
dask graphs over chunked reads. The images are nibabel's classes
(``vx.load`` returns a ``voxray.Nifti1Image``, which is a ``nibabel.Nifti1Image``)::

    import voxray as vx
    img = vx.load("bold.nii.gz")          # header only
    img.dataobj[..., 3]                   # reads one volume
    img.to_dask().mean(axis=-1)           # a dask graph over chunked reads

``import voxray`` imports neither dask, xarray nor zarr: header-only work
stays fast.
"""

from .errors import (
    AccessDeniedError,
    AffineMismatchError,
    AFNIDataTypeError,
    AFNIHeaderError,
    BoundingBoxError,
    CorruptGzipError,
    CorruptStoreError,
    DestinationExistsError,
    DestinationLockedError,
    FileChangedError,
    ImageFileError,
    ImageNotFoundError,
    InputError,
    InvalidAffineError,
    InvalidHeaderError,
    MGHDataTypeError,
    MincDependencyError,
    MincHeaderError,
    MincReadError,
    MincWriteError,
    MissingDependencyError,
    NoAffineError,
    NoSuchLevelError,
    NotAnImageError,
    ParrecHeaderError,
    RangeNotSupportedError,
    RemoteError,
    StorageError,
    TrailingDataWarning,
    TruncatedFileError,
    UnsupportedDataTypeError,
    UnsupportedFormatError,
    VoxrayError,
    VoxrayWarning,
    WriteError,
    WriteFailedError,
)
from .formats.afni import AFNIImage
from .formats.cifti import Cifti2Image
from .formats.ecat import EcatImage
from .formats.mgh import MGHImage
from .formats.minc import Minc1Image, Minc2Image
from .formats.nifti import (
    AnalyzeImage,
    Nifti1Image,
    Nifti1Pair,
    Nifti2Image,
    Nifti2Pair,
    Spm2AnalyzeImage,
    Spm99AnalyzeImage,
)
from .formats.parrec import PARRECImage
from .image import Image, aff2axcodes, as_closest_canonical
from .open import load, save, to_zarr
from .proxy import ArrayProxy, DaskProxy

__version__ = "0.1.0"

_LAZY = ("open_dataarray", "to_dataarray")
_PLOTTING = ("plot_ortho", "plot_mosaic", "plot_timecourse", "plot_carpet")
# subpackages that import dask (and scipy) when first used: vx.processing, vx.masking
_SUBMODULES = ("processing", "masking")


def __getattr__(name: str):
    # xarray is imported only when its part of the API is used.
    if name in _LAZY:
        from . import xarray as _vx_xarray

        return getattr(_vx_xarray, name)
    if name in _PLOTTING:
        from . import plotting

        return getattr(plotting, name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'voxray' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AffineMismatchError",
    "BoundingBoxError",
    "RemoteError",
    "AccessDeniedError",
    "RangeNotSupportedError",
    "WriteError",
    "AFNIDataTypeError",
    "AFNIHeaderError",
    "MGHDataTypeError",
    "MincDependencyError",
    "MissingDependencyError",
    "MincHeaderError",
    "MincReadError",
    "MincWriteError",
    "NoAffineError",
    "ParrecHeaderError",
    "AFNIImage",
    "AnalyzeImage",
    "ArrayProxy",
    "Cifti2Image",
    "CorruptGzipError",
    "CorruptStoreError",
    "DaskProxy",
    "EcatImage",
    "FileChangedError",
    "Image",
    "ImageFileError",
    "ImageNotFoundError",
    "InvalidAffineError",
    "InvalidHeaderError",
    "MGHImage",
    "Minc1Image",
    "Minc2Image",
    "Nifti1Image",
    "Nifti1Pair",
    "Nifti2Image",
    "Nifti2Pair",
    "NotAnImageError",
    "PARRECImage",
    "TruncatedFileError",
    "UnsupportedDataTypeError",
    "UnsupportedFormatError",
    "Spm2AnalyzeImage",
    "Spm99AnalyzeImage",
    "VoxrayError",
    "NoSuchLevelError",
    "InputError",
    "StorageError",
    "DestinationExistsError",
    "DestinationLockedError",
    "WriteFailedError",
    "VoxrayWarning",
    "TrailingDataWarning",
    "__version__",
    "aff2axcodes",
    "as_closest_canonical",
    "load",
    "open_dataarray",
    "plot_carpet",
    "plot_mosaic",
    "plot_ortho",
    "plot_timecourse",
    "to_dataarray",
    "save",
    "to_zarr",
]
