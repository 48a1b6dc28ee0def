"""voxray's MGH image class: ``nibabel.MGHImage``, lazy.

:class:`MGHImage` is nibabel's class with :class:`voxray.image.Image` mixed in
first, so ``isinstance(img, nibabel.MGHImage)`` holds and every nibabel method
the mixin does not replace (header, affine, ``get_fdata``, ``to_bytes`` /
``from_bytes`` through the file map) is nibabel's own.
"""

from __future__ import annotations

from nibabel import imageclasses
from nibabel.freesurfer import mghformat

from ...errors import (
    InvalidHeaderError,
    MGHDataTypeError,
    VoxrayError,
)
from ...image import Image, register_image_class
from . import MGH

__all__ = ["MGHDataTypeError", "MGHImage"]


class MGHImage(Image, mghformat.MGHImage):
    """``nibabel.MGHImage`` (FreeSurfer ``.mgh`` / ``.mgz``), lazy: see :class:`voxray.Image`.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> img = MGHImage(np.zeros((4, 5, 6), np.float32), np.eye(4))
    >>> isinstance(img, nib.MGHImage), img.get_data_dtype().str
    (True, '>f4')
    """

    format = MGH

    def __init__(self, dataobj, affine, header=None, extra=None, file_map=None, dtype=None):
        # nibabel's MGHImage takes no ``dtype``; a header-less array of a type MGH cannot
        # store raises nibabel's MGHError: here a VoxrayError that is also an MGHError.
        try:
            super().__init__(dataobj, affine, header, extra=extra, file_map=file_map)
            if dtype is not None:
                self.set_data_dtype(dtype)
        except mghformat.MGHError as e:
            if isinstance(e, MGHDataTypeError):
                raise
            raise MGHDataTypeError(
                f"MGH cannot store this data type ({e}); MGH keeps uint8, int16, uint16, "
                f"int32 and float32"
            ) from None
        except ValueError as e:  # nibabel's header: more than 4 dimensions, bad affine
            if isinstance(e, VoxrayError):
                raise
            raise InvalidHeaderError(f"cannot make an MGH image: {e}") from None

    def set_data_dtype(self, datatype) -> None:
        """Set the on-disk data type (one of MGH's: uint8, int16, uint16, int32, float32)."""
        try:
            super().set_data_dtype(datatype)
        except mghformat.MGHError as e:
            raise MGHDataTypeError(
                f"{datatype!r} is not an MGH data type ({e}); MGH keeps uint8, int16, "
                f"uint16, int32 and float32"
            ) from None


register_image_class(MGHImage)

# nibabel's ``spatial_axes_first`` knows spatial-first classes by exact type (see the
# NIfTI classes); an MGH image is as spatial-first as nibabel's.
imageclasses.KNOWN_SPATIAL_FIRST = (*imageclasses.KNOWN_SPATIAL_FIRST, MGHImage)
