"""voxray's MINC image classes: nibabel's ``Minc1Image`` and ``Minc2Image``, lazy.

``isinstance(img, nibabel.Minc1Image)`` holds (and, as in nibabel, a
``Minc2Image`` is also a ``Minc1Image``); every method the mixin does not
override is nibabel's own.
"""

from __future__ import annotations

from nibabel import minc1, minc2

from ...image import Image, register_image_class
from . import MINC

__all__ = ["CLASSES", "Minc1Image", "Minc2Image"]


class Minc1Image(Image, minc1.Minc1Image):
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
    ((10, 20, 20), '>u1', [0.208, 0.208, 0.208])
    """

    format = MINC


class Minc2Image(Image, minc2.Minc2Image):
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
