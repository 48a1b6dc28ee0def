"""voxray's ``Cifti2Image``: nibabel's class, lazy.

``voxray.Cifti2Image`` is ``nibabel.cifti2.Cifti2Image`` with
:class:`voxray.image.Image` mixed in, so ``isinstance(img, nibabel.Cifti2Image)``
holds and every nibabel method not overridden here (``header``, ``nifti_header``,
``get_fdata``, ``update_headers``, ``to_bytes``...) is nibabel's own. A CIFTI image
has no voxel grid, so the overrides are where the mixin assumes one:

* ``__init__`` keeps nibabel's signature ``(dataobj, header, nifti_header, extra,
  file_map, dtype)``; a dask array becomes a lazy :class:`~voxray.proxy.DaskProxy`;
* ``affine`` raises :class:`NoAffineError` (an ``AttributeError`` too, so
  ``hasattr(img, "affine")`` is False as for nibabel's class) instead of letting
  code that needs a grid fail somewhere deeper;
* ``slicer[...]`` slices the matrix lazily and the CIFTI axes with it (nibabel's
  axes support slices), so the result is a valid CIFTI image;
* ``to_file_map`` writes out of core through :mod:`.write`; ``to_xarray`` names
  dimensions and coordinates after the CIFTI axes (:mod:`.xarray`).
"""

from __future__ import annotations

import numpy as np
from nibabel import cifti2
from nibabel.cifti2 import cifti2_axes

from ...errors import (
    InputError,
    InvalidHeaderError,
    NoAffineError,
)
from ...image import Image, Provenance, register_image_class
from ...planning import normalize_index
from ...proxy import ArrayProxy, DaskProxy, is_dask_array
from . import CIFTI

__all__ = ["Cifti2Image", "CiftiSlicer", "NoAffineError"]


class Cifti2Image(Image, cifti2.Cifti2Image):
    """``nibabel.cifti2.Cifti2Image``, lazy: see the module docstring.

    Examples
    --------
    >>> import nibabel as nib, voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "row_major.dconn.nii")
    >>> type(img).__name__, isinstance(img, nib.Cifti2Image), img.shape
    ('Cifti2Image', True, (10, 10))
    >>> type(img.header.get_axis(0)).__name__, img.in_memory
    ('BrainModelAxis', False)
    """

    format = CIFTI

    def __init__(
        self,
        dataobj=None,
        header=None,
        nifti_header=None,
        extra=None,
        file_map=None,
        dtype=None,
    ):
        if is_dask_array(dataobj):
            dataobj = DaskProxy(dataobj)
        cifti2.Cifti2Image.__init__(
            self, dataobj, header, nifti_header, extra=extra, file_map=file_map, dtype=dtype
        )
        self._provenance = Provenance()

    @property
    def affine(self):
        """Not defined for CIFTI-2: raises :class:`NoAffineError` (an AttributeError).

        Volume brain models carry their own affine: ``img.header.get_axis(i).affine``.
        """
        where = self.get_filename()
        try:
            kinds = ", ".join(type(a).__name__ for a in self.axes)
        except InvalidHeaderError:  # a dimension without an index map: say so, still no affine
            kinds = "not all mapped"
        raise NoAffineError(
            f"{where or 'this image'!r}: a CIFTI-2 image has no affine (its axes are "
            f"{kinds}); a brain-model axis has the affine of its voxels: "
            f"img.header.get_axis(i).affine"
        )

    @property
    def axes(self) -> tuple:
        """The CIFTI axes of the matrix (``header.get_axis(i)`` for each dimension).

        Raises :class:`~voxray.errors.InvalidHeaderError` naming the file where a data
        dimension has no index map in the XML (a NIfTI ``dim`` disagreeing with it, which
        nibabel, and so voxray, still loads).
        """
        out = []
        for i in range(len(self.shape)):
            try:
                out.append(self.header.get_axis(i))
            except cifti2.Cifti2HeaderError as e:
                raise InvalidHeaderError(
                    f"{self.get_filename() or 'this image'!r}: data dimension {i} of shape "
                    f"{self.shape!r} has no CIFTI-2 index map in the XML header ({e})"
                ) from None
        return tuple(out)

    def _derive(self, dataobj, axes) -> Cifti2Image:
        """A new image of this class with new data and axes (the NIfTI header follows)."""
        new = type(self)(dataobj, header=axes, nifti_header=self.nifti_header, extra=self.extra)
        new._provenance = self._provenance.derived()
        return new

    @classmethod
    def from_image(cls, img) -> Cifti2Image:
        """This class from a CIFTI-2 image (voxray's or nibabel's), data kept lazy; other
        images have no CIFTI axes and are refused (nibabel raises NotImplementedError)."""
        if isinstance(img, cls):
            return img
        if not isinstance(img, cifti2.Cifti2Image):
            raise InputError(
                f"cannot make a CIFTI-2 image from a {type(img).__name__}: it has no CIFTI axes; "
                f"build one with vx.Cifti2Image(data, axes)"
            )
        dataobj = img.dataobj
        if getattr(dataobj, "is_proxy", False) and not isinstance(dataobj, ArrayProxy | DaskProxy):
            dataobj = _voxray_proxy(dataobj)
        out = cls(dataobj, header=img.header, nifti_header=img.nifti_header, extra=img.extra)
        if isinstance(img, Image):
            out._provenance = img.provenance.derived()
        return out

    # -- writing ---------------------------------------------------------------------

    def to_file_map(self, file_map=None, dtype=None, **kwargs) -> None:
        """Write out of core to ``file_map`` (default: its own), as nibabel's
        ``Cifti2Image.to_file_map`` does: a NIfTI-2 file with the XML as a CIFTI extension.
        ``kwargs`` go to the NIfTI writer (``compresslevel``, ``progress``)."""
        if file_map is None:
            file_map = self.file_map
        self._format().write_file_map(self, file_map, dtype=dtype, **kwargs)
        self.file_map = file_map

    # -- lazy derivations ------------------------------------------------------------

    @property
    def slicer(self) -> CiftiSlicer:
        """``img.slicer[rows, cols]``: a lazy CIFTI image of a block of the matrix, with
        its axes sliced to match (integer indices would drop an axis: use ``r:r+1``)."""
        return CiftiSlicer(self)

    def as_reoriented(self, ornt):
        """Refused: a CIFTI matrix has no voxel axes to reorient."""
        raise InputError(
            f"{self.get_filename() or 'this image'!r}: a CIFTI-2 image has no voxel axes to "
            f"reorient (its axes are {', '.join(type(a).__name__ for a in self.axes)})"
        )

    def to_xarray(self, name: str | None = None):
        """This image as a lazy, dask-backed DataArray with dims and coordinates from the
        CIFTI axes: see :func:`voxray.formats.cifti.dataarray.to_dataarray`."""
        from .dataarray import to_dataarray

        return to_dataarray(self, name=name)

    def to_nibabel(self):
        """A plain ``nibabel.Cifti2Image`` over this image's lazy proxy."""
        return cifti2.Cifti2Image(
            self.dataobj,
            header=self.header,
            nifti_header=self.nifti_header.copy(),
            extra=self.extra.copy(),
            file_map=self.file_map,
        )


class CiftiSlicer:
    """``img.slicer[...]`` for CIFTI: basic slices of the matrix, axes sliced alike."""

    def __init__(self, img: Cifti2Image):
        self.img = img

    def __getitem__(self, key) -> Cifti2Image:
        img = self.img
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, slice) and k.step == 0 for k in keys):
            raise ValueError("slice step cannot be 0")
        try:
            sel = normalize_index(key, img.shape)
        except (ValueError, TypeError) as e:
            raise IndexError(*e.args) from None
        if any(s is None for s in sel):
            raise IndexError("a new axis has no CIFTI axis: slice the matrix's own axes only")
        if any(s.drop for s in sel):
            raise IndexError(
                "integer indices would drop a CIFTI axis; use r:r+1 (or img.dataobj[r] for "
                "the values)"
            )
        if any(s.count == 0 for s in sel):
            raise IndexError("Empty slice requested")
        axes = [_slice_axis(ax, s) for ax, s in zip(img.axes, sel)]
        obj = img.dataobj
        index = tuple(s.as_index() for s in sel)
        if isinstance(obj, ArrayProxy | DaskProxy):
            data = obj.sliced(index)
        else:
            data = np.asanyarray(obj)[index]
        return img._derive(data, axes)


def _slice_axis(ax, s):
    """A CIFTI axis sliced like the matrix (nibabel's SeriesAxis miscounts negative steps)."""
    if isinstance(ax, cifti2_axes.SeriesAxis):
        return cifti2_axes.SeriesAxis(
            ax.start + s.start * ax.step, ax.step * s.step, s.count, ax.unit
        )
    return ax[s.as_index()]


def _voxray_proxy(proxy):
    """voxray's proxy for a nibabel ``ArrayProxy`` over a file; dask otherwise."""
    file_like = getattr(proxy, "file_like", None)
    if file_like is not None and getattr(proxy, "order", "F") == "F" and hasattr(proxy, "offset"):
        spec = (proxy.shape, proxy.dtype, proxy.offset, proxy.slope, proxy.inter)
        return ArrayProxy(file_like, spec)
    import dask.array as da

    return DaskProxy(da.from_array(proxy, chunks="auto", asarray=True))


register_image_class(Cifti2Image)
