"""Errors voxray raises.

Every error is a :class:`VoxrayError`. Below the root there are two families:

- :class:`InputError` (also a :class:`ValueError`): the input is bad: a damaged or
  lying file, a store that disagrees with itself, a value that cannot be written, an
  argument out of range. Retrying will not help.
- :class:`StorageError` (also an :class:`OSError`, and *not* a ``ValueError``): reading
  or writing failed: a remote outage, a full disk or a file-size limit, a file changed
  under a reader, a destination another writer holds, a missing file. ``except
  ValueError`` around a computation never swallows an outage.

Where nibabel raises one of its own exception types for the same problem, the voxray
error also inherits that type, so ``except nibabel.filebasedimages.ImageFileError``
and ``except FileNotFoundError`` keep working for code written against nibabel.

Messages name the file and the offending value, and say what would be valid.
"""

from __future__ import annotations

from nibabel.arraywriters import WriterError as _NibWriterError
from nibabel.brikhead import AFNIHeaderError as _NibAFNIHeaderError
from nibabel.brikhead import AFNIImageError as _NibAFNIImageError
from nibabel.filebasedimages import ImageFileError as _NibImageFileError
from nibabel.freesurfer.mghformat import MGHError as _NibMGHError
from nibabel.minc1 import MincError as _NibMincError
from nibabel.orientations import OrientationError as _NibOrientationError
from nibabel.parrec import PARRECError as _NibPARRECError
from nibabel.spatialimages import HeaderDataError as _NibHeaderDataError

__all__ = [
    "InputError",
    "BoundingBoxError",
    "NoSuchLevelError",
    "StorageError",
    "DestinationExistsError",
    "DestinationLockedError",
    "WriteFailedError",
    "VoxrayWarning",
    "TrailingDataWarning",
    "AffineMismatchError",
    "RemoteError",
    "AccessDeniedError",
    "RangeNotSupportedError",
    "WriteError",
    "AFNIHeaderError",
    "AFNIDataTypeError",
    "MGHDataTypeError",
    "MincHeaderError",
    "MincReadError",
    "MincDependencyError",
    "MissingDependencyError",
    "MincWriteError",
    "NoAffineError",
    "ParrecHeaderError",
    "CorruptGzipError",
    "CorruptStoreError",
    "FileChangedError",
    "ImageFileError",
    "ImageNotFoundError",
    "InvalidAffineError",
    "InvalidHeaderError",
    "NotAnImageError",
    "TruncatedFileError",
    "UnsupportedDataTypeError",
    "UnsupportedFormatError",
    "VoxrayError",
]


class VoxrayError(Exception):
    """Base of every error voxray raises."""


class InputError(VoxrayError, ValueError):
    """Bad input (also a ``ValueError``): a damaged or lying file or store, a value that
    cannot be written, an argument voxray cannot use. Retrying will not help."""


class StorageError(VoxrayError, OSError):
    """Reading or writing storage failed (also an ``OSError``, not a ``ValueError``):
    remote outages, full disks, file-size limits, files changed under a reader."""


class VoxrayWarning(UserWarning):
    """Base of the warnings voxray gives."""


class TrailingDataWarning(VoxrayWarning):
    """Bytes that are not gzip data follow a gzip stream; they are ignored, as nibabel
    (which never reads past the image data) ignores them."""


class ImageFileError(InputError, _NibImageFileError):
    """The file is not an image voxray can read (nibabel's ``ImageFileError``)."""


class ImageNotFoundError(StorageError, FileNotFoundError):
    """The image (or one file of a pair) does not exist or cannot be opened."""


class NotAnImageError(ImageFileError):
    """Unknown suffix or wrong magic: not a NIfTI-1/2 or Analyze image."""


class UnsupportedFormatError(NotAnImageError):
    """A file voxray recognises but does not handle: streamlines, surfaces and DICOM
    (out of scope), or an operation its format cannot do (writing a read-only format)."""


class InvalidHeaderError(InputError, _NibHeaderDataError):
    """The header cannot describe an array: bad dimensions, offsets or fields."""


class InvalidAffineError(InvalidHeaderError, _NibOrientationError):
    """The affine cannot orient the image: non-finite values, or a singular rotation
    (also nibabel's ``OrientationError``)."""


class UnsupportedDataTypeError(InvalidHeaderError):
    """The header's datatype code is not one voxray (or nibabel) can read."""


class TruncatedFileError(InputError, EOFError):
    """The file (or decompressed stream) ends before the data the header describes."""


class CorruptGzipError(InputError):
    """The gzip stream is damaged: bad header, bad deflate data, bad CRC or length."""


class CorruptStoreError(InputError):
    """A Zarr store's chunk cannot be decoded, or its metadata document cannot be parsed."""


class FileChangedError(StorageError):
    """The file changed on disk after it was opened; its data can no longer be trusted."""


class WriteError(InputError, _NibWriterError):
    """The values cannot be written with the requested type or scaling (also nibabel's
    ``WriterError``)."""


class AffineMismatchError(InputError):
    """Two images on different voxel grids were combined."""


class BoundingBoxError(InputError):
    """A resampling target's field of view holds none of the data (nilearn's
    ``BoundingBoxError``)."""


class NoSuchLevelError(InputError, IndexError):
    """A pyramid level that the store does not have was asked for (also ``IndexError``)."""


class DestinationExistsError(InputError, FileExistsError):
    """The destination exists and ``overwrite`` was not given (also ``FileExistsError``)."""


class DestinationLockedError(StorageError, BlockingIOError):
    """Another writer (a live process) holds the destination; nothing was written."""


class WriteFailedError(StorageError):
    """Writing failed in the file system (full disk, file-size limit, permissions, I/O
    error); the destination was left as it was and the partial output removed."""


class RemoteError(StorageError):
    """A remote object could not be read (after retries, when they apply)."""


class AccessDeniedError(RemoteError, PermissionError):
    """403: the credentials do not allow reading the object."""


class RangeNotSupportedError(RemoteError):
    """The server answers range requests with the whole object, which is too large."""


# -- format-specific errors (each also the error nibabel raises for that format) -------


class AFNIHeaderError(InvalidHeaderError, _NibAFNIHeaderError):
    """The HEAD cannot be parsed or describes no array (also nibabel's
    ``AFNIHeaderError``, which nibabel raises for the same files)."""


class AFNIDataTypeError(UnsupportedDataTypeError, _NibAFNIImageError):
    """BRICK_TYPES names no dtype, or several (also nibabel's ``AFNIImageError``)."""


class MGHDataTypeError(UnsupportedDataTypeError, _NibMGHError):
    """A data type MGH cannot store (MGH keeps uint8, int16, uint16, int32 and float32);
    also nibabel's ``MGHError``."""


class MincHeaderError(InvalidHeaderError, _NibMincError):
    """The MINC header cannot describe an image (nibabel's ``MincError`` too)."""


class MincReadError(StorageError):
    """Stored MINC values could not be read (a damaged HDF5 chunk, a failed read)."""


class MissingDependencyError(VoxrayError, ImportError):
    """An optional dependency a call needs is not installed; the message names the extra
    (``pip install 'voxray[plot]'`` for matplotlib)."""


class MincDependencyError(MissingDependencyError):
    """h5py, which MINC2 (HDF5) files need, is not installed."""


class MincWriteError(VoxrayError, NotImplementedError):
    """MINC files cannot be written (nibabel's MINC classes are read-only)."""


class NoAffineError(VoxrayError, AttributeError):
    """A CIFTI-2 image has no affine: its axes are brain models, parcels, series...
    (also an ``AttributeError``, so ``hasattr(img, "affine")`` is False)."""


class ParrecHeaderError(InvalidHeaderError, _NibPARRECError):
    """The PAR header cannot be read, or describes what nibabel refuses (a truncated
    recording without ``permit_truncated=True``, varying slice orientations, unsupported
    pixel sizes). Also nibabel's ``PARRECError``, so ``except PARRECError`` works."""
