"""voxray's MINC image classes: nibabel's ``Minc1Image`` and ``Minc2Image``, lazy.

``isinstance(img, nibabel.Minc1Image)`` holds (and, as in nibabel, a
``Minc2Image`` is also a ``Minc1Image``); every method the mixin does not
override is nibabel's own.
"""

from __future__ import annotations

import numpy as np
from nibabel import minc1, minc2
from nibabel.imageclasses import spatial_axes_first

from ...errors import InputError
from ...image import Image, ImageSlicer, register_image_class
from . import MINC

__all__ = ["CLASSES", "Minc1Image", "Minc2Image", "MincSlicer"]


class MincSlicer(ImageSlicer):
    """voxray's lazy slicer, refused where nibabel's is: a 4-D MINC array is (time, z, y,
    x) in file order, so its first three axes are not all spatial."""

    def __init__(self, img):
        if not spatial_axes_first(img):
            raise InputError(
                f"Cannot predict position of spatial axes for image type "
                f"{type(img).__name__} ({img.ndim}-D MINC arrays put time first, as nibabel "
                f"says): slice img.dataobj or img.to_dask() instead"
            )
        super().__init__(img)


class _Minc:
    """What MINC classes add to the mixin."""

    ImageSlicer = MincSlicer

    @property
    def conversion_dtype(self) -> np.dtype:
        """The dtype another format should store this image's values in: the scaled one
        (float64 for integer MINC), since MINC's per-slice scaling has no NIfTI
        equivalent; as ``nib.Nifti1Image(img.get_fdata(), img.affine)`` stores them."""
        return np.dtype(self.dataobj.dtype).newbyteorder("=")

    def to_xarray(self, name: str | None = None):
        """This image as a lazy, dask-backed DataArray: dims ``i, j, k`` (then ``t``) in
        array order, coordinates ``x, y, z`` (mm) from nibabel's affine.

        As nibabel's affine does, the first three array axes are taken as spatial (for a
        4-D MINC file, whose first axis is time, that is nibabel's convention, not the
        file's)."""
        import xarray as xr

        from ...xarray.build import DIMS, image_name, world_coords

        dims = DIMS[: self.ndim]
        if name is None:
            name = image_name(self.get_filename())
            name = name.removesuffix(".gz").removesuffix(".mnc") if name else name
        coords = world_coords(self.affine, dict(zip(dims, self.shape)))
        da = xr.DataArray(
            self.to_dask(),
            dims=dims,
            coords=coords,
            name=name,
        )
        da.encoding.update(
            source=self.get_filename(),
            nibabel_class=self.nibabel_class.__name__,
            affine=np.asarray(self.affine).tolist(),
        )
        return da


class Minc1Image(_Minc, Image, minc1.Minc1Image):
    """``nibabel.Minc1Image`` (netCDF classic ``.mnc``, optionally ``.gz``), lazy: see
    :class:`voxray.Image`.

    Examples
    --------
    >>> import voxray as vx, nibabel as nib
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "tiny.mnc")
    >>> type(img).__name__, isinstance(img, nib.Minc1Image), img.in_memory
    ('Minc1Image', True, False)
    >>> img.shape, img.get_data_dtype().str, img.dataobj[0, 0, :3].round(3).tolist()
    ((10, 20, 20), '|u1', [0.674, 0.694, 0.682])
    """

    format = MINC


class Minc2Image(_Minc, Image, minc2.Minc2Image):
    """``nibabel.Minc2Image`` (HDF5 ``.mnc``; needs h5py: ``pip install voxray[hdf5]``),
    lazy: see :class:`voxray.Image`."""

    format = MINC


#: Every class of this format.
CLASSES = (Minc1Image, Minc2Image)
for _klass in CLASSES:
    register_image_class(_klass)

# Not added to nibabel's ``imageclasses.KNOWN_SPATIAL_FIRST`` (unlike the NIfTI classes):
# nibabel does not list its MINC classes there, rightly, since a 4-D MINC array is
# (time, z, y, x) in file order. Adding voxray's would make ``nibabel.processing`` treat
# the time axis as spatial where nibabel's own class would not.
