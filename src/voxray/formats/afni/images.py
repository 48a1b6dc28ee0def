"""voxray's AFNI image class: nibabel's ``AFNIImage``, lazy.

:class:`AFNIImage` is ``nibabel.brikhead.AFNIImage`` with :class:`voxray.image.Image`
mixed in first, so ``isinstance(img, nibabel.AFNIImage)`` holds and every nibabel
method the mixin does not override is nibabel's own (``header.get_space()``,
``get_volume_labels()``...).
"""

from __future__ import annotations

from nibabel import brikhead, imageclasses

from ...image import Image, register_image_class
from . import AFNI

__all__ = ["AFNIImage"]


class AFNIImage(Image, brikhead.AFNIImage):
    """``nibabel.AFNIImage`` (``.HEAD`` + ``.BRIK[.gz]``), lazy: see :class:`voxray.Image`.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "scaled+tlrc.BRIK")
    >>> img.dataobj.scaling.tolist(), img.dataobj[0, 0, 0].dtype.name
    ([3.883363e-08], 'float64')
    """

    format = AFNI

    def to_xarray(self, name: str | None = None):
        """This image as a lazy DataArray: dims ``i, j, k, t``, world coordinates
        ``x, y, z`` from the affine, ``t`` from the TR (``TAXIS_FLOATS``) in seconds.

        voxray's DataArray builder reads NIfTI header fields; it is given a NIfTI
        header with this image's shape, zooms and time units (the AFNI header stays
        the image's)."""
        from ...xarray.build import build_dataarray

        return build_dataarray(_NiftiView(self), self.to_dask(), name=name)


#: AFNI's TAXIS_NUMS time-unit codes, as NIfTI unit names.
_TIME_UNITS = {77001: "msec", 77002: "sec", 77003: "hz"}


class _NiftiView:
    """An AFNI image as the DataArray builder reads an image: a NIfTI-1 header with
    its shape, zooms, time units and time origin; everything else is the image's."""

    def __init__(self, img: AFNIImage):
        from nibabel.nifti1 import Nifti1Header

        self._img = img
        info = img.header.info
        hdr = Nifti1Header()
        hdr.set_data_dtype(img.dataobj.dtype if hasattr(img.dataobj, "dtype") else "f8")
        hdr.set_data_shape(img.shape)
        zooms = tuple(float(z) for z in img.header.get_zooms())
        hdr.set_zooms((zooms + (1.0,) * len(img.shape))[: len(img.shape)])
        nums = info.get("TAXIS_NUMS")
        code = nums[2] if isinstance(nums, list) and len(nums) > 2 else 77002
        hdr.set_xyzt_units("mm", _TIME_UNITS.get(code, "sec"))
        floats = info.get("TAXIS_FLOATS")
        if isinstance(floats, list) and floats:
            hdr["toffset"] = float(floats[0])
        self.header = hdr

    def __getattr__(self, name):
        return getattr(self._img, name)


register_image_class(AFNIImage)

# nibabel's ``spatial_axes_first`` knows spatial-first classes by exact type.
imageclasses.KNOWN_SPATIAL_FIRST = (*imageclasses.KNOWN_SPATIAL_FIRST, AFNIImage)
