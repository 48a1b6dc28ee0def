"""Errors voxray raises on bad input.

Every error is a :class:`VoxrayError`, which is a :class:`ValueError`. Where
nibabel raises one of its own exception types for the same problem, the voxray
error also inherits that type, so ``except nibabel.filebasedimages.ImageFileError``
and ``except FileNotFoundError`` keep working for code written against nibabel.

Messages name the file and the offending value, and say what would be valid.
"""

from __future__ import annotations

from nibabel.filebasedimages import ImageFileError as _NibImageFileError
from nibabel.orientations import OrientationError as _NibOrientationError
from nibabel.spatialimages import HeaderDataError as _NibHeaderDataError

__all__ = [
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


class VoxrayError(ValueError):
    """Base of every error voxray raises on bad input."""


class ImageFileError(VoxrayError, _NibImageFileError):
    """The file is not an image voxray can read (nibabel's ``ImageFileError``)."""


class ImageNotFoundError(VoxrayError, FileNotFoundError):
    """The image (or one file of a pair) does not exist or cannot be opened."""


class NotAnImageError(ImageFileError):
    """Unknown suffix or wrong magic: not a NIfTI-1/2 or Analyze image."""


class UnsupportedFormatError(NotAnImageError):
    """A file voxray recognises but does not handle: streamlines, surfaces and DICOM
    (out of scope), or an operation its format cannot do (writing a read-only format)."""


class InvalidHeaderError(VoxrayError, _NibHeaderDataError):
    """The header cannot describe an array: bad dimensions, offsets or fields."""


class InvalidAffineError(InvalidHeaderError, _NibOrientationError):
    """The affine cannot orient the image: non-finite values, or a singular rotation
    (also nibabel's ``OrientationError``)."""


class UnsupportedDataTypeError(InvalidHeaderError):
    """The header's datatype code is not one voxray (or nibabel) can read."""


class TruncatedFileError(VoxrayError, EOFError):
    """The file (or decompressed stream) ends before the data the header describes."""


class CorruptGzipError(VoxrayError):
    """The gzip stream is damaged: bad header, bad deflate data, bad CRC or length."""


class CorruptStoreError(VoxrayError):
    """A Zarr store's chunk cannot be decoded, or its metadata document cannot be parsed."""


class FileChangedError(VoxrayError):
    """The file changed on disk after it was opened; its data can no longer be trusted."""
