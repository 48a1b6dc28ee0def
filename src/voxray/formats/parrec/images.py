"""voxray's PAR/REC image class: nibabel's ``PARRECImage``, lazy.

:class:`PARRECImage` is ``nibabel.parrec.PARRECImage`` with :class:`voxray.image.Image`
mixed in first, so ``isinstance(img, nibabel.parrec.PARRECImage)`` holds and every
nibabel method not overridden is nibabel's own. The overrides take nibabel's PAR/REC
options (``permit_truncated``, ``scaling``, ``strict_sort``, keyword only, as in
nibabel) and refuse writing PAR/REC, which nibabel cannot do either; ``to_filename``
with a NIfTI or Zarr name converts out of core.
"""

from __future__ import annotations

import os

from nibabel import imageclasses, parrec

from ...errors import InputError
from ...image import Image, class_for_nibabel, register_image_class
from .. import for_filename
from . import PARREC

__all__ = ["PARRECImage"]


def _check_mmap(mmap, keep_file_open) -> None:
    if mmap not in (True, False, "c", "r"):
        raise InputError("mmap should be one of {True, False, 'c', 'r'}")
    if keep_file_open not in (None, True, False):
        raise InputError("keep_file_open must be one of {None, True, False}")


class PARRECImage(Image, parrec.PARRECImage):
    """``nibabel.parrec.PARRECImage``, lazy: see :class:`voxray.Image`.

    Examples
    --------
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = PARRECImage.from_filename(NIBABEL_DATA / "phantom_varscale.PAR", scaling="fp")
    >>> img.shape, img.in_memory, img.dataobj[..., 0].shape
    ((64, 64, 9, 3), False, (64, 64, 9))
    """

    format = PARREC
    # nibabel's own loaders build PAR/REC proxies with nibabel's signature.
    ImageArrayProxy = parrec.PARRECArrayProxy

    @classmethod
    def from_file_map(
        cls,
        file_map,
        *,
        mmap=True,
        permit_truncated=False,
        scaling="dv",
        strict_sort=False,
        keep_file_open=None,
        chunks="auto",
    ):
        """Open the PAR/REC pair ``file_map`` names (file names or file objects) lazily,
        with nibabel's options; ``mmap`` is validated and otherwise ignored."""
        _check_mmap(mmap, keep_file_open)
        return PARREC.open_file_map(
            cls,
            file_map,
            chunks=chunks,
            permit_truncated=permit_truncated,
            scaling=scaling,
            strict_sort=strict_sort,
        )

    @classmethod
    def from_filename(
        cls,
        filename,
        *,
        mmap=True,
        permit_truncated=False,
        scaling="dv",
        strict_sort=False,
        keep_file_open=None,
        chunks="auto",
        storage_options=None,
    ):
        """Open ``filename`` (the ``.PAR`` or the ``.REC``, local or a URL) lazily, with
        nibabel's options; ``mmap`` is validated and otherwise ignored."""
        _check_mmap(mmap, keep_file_open)
        return PARREC.open(
            os.fspath(filename),
            klass=cls,
            chunks=chunks,
            storage_options=storage_options,
            permit_truncated=permit_truncated,
            scaling=scaling,
            strict_sort=strict_sort,
        )

    load = from_filename

    def to_xarray(self, name: str | None = None):
        """This image as a lazy, dask-backed DataArray (see :meth:`voxray.Image.to_xarray`):
        dims ``i, j, k, t``, world coordinates ``x, y, z`` from nibabel's affine, ``t`` in
        seconds (the PAR's repetition time).

        The attributes and the ``nifti_header`` encoding come from nibabel's NIfTI-1
        conversion of the PAR header (``Nifti1Header.from_header``) with a float64 data
        type: per-slice scaling has no NIfTI form, so the scaled values are what a NIfTI
        written from the DataArray holds (``vx.save(img.to_xarray(), "x.nii.gz")`` keeps
        every value).
        """
        from nibabel.nifti1 import Nifti1Header, Nifti1Image

        from ...xarray.build import build_dataarray

        obj = self.dataobj
        try:
            header = Nifti1Header.from_header(self.header)
        except Exception:  # a PAR nibabel loads but cannot convert (a general field missing)
            header = Nifti1Header()
            header.set_data_shape(self.shape)
            header.set_zooms(self.header.get_zooms()[: len(self.shape)])
            header.set_xyzt_units("mm", "sec")
        header.set_data_dtype(getattr(obj, "scaled_dtype", None) or obj.dtype)
        header.set_slope_inter(None, None)
        stand_in = class_for_nibabel(Nifti1Image)(obj, self.affine, header)  # reads nothing
        filename = self.get_filename()
        if name is None and filename:
            name = os.path.splitext(os.path.basename(filename))[0] or None
        da = build_dataarray(stand_in, self.to_dask(), name=name)
        da.encoding.update(source=filename, nibabel_class="Nifti1Image")
        return da

    def to_filename(self, filename, **kwargs) -> None:
        """Write a NIfTI or NIfTI-Zarr conversion out of core (the suffix decides); a
        ``.PAR``/``.REC`` name raises :class:`~voxray.errors.UnsupportedFormatError`."""
        filename = os.fspath(filename)
        fmt = for_filename(filename)
        (PARREC if fmt is None else fmt).save(self, filename, **kwargs)


register_image_class(PARRECImage)

# nibabel's ``spatial_axes_first`` knows spatial-first classes by exact type.
imageclasses.KNOWN_SPATIAL_FIRST = (*imageclasses.KNOWN_SPATIAL_FIRST, PARRECImage)
