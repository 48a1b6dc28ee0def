"""voxray's ECAT image class: nibabel's ``EcatImage``, lazy.

nibabel's ``EcatImage.__init__`` takes ``(dataobj, affine, header, subheader,
mlist, extra, file_map)`` and its ``shape`` comes from the subheader, not the data;
:class:`EcatImage` keeps that signature, takes its shape from its (lazy) data so
slices and reorientations have theirs, and derives new images with the same
subheader and mlist.
"""

from __future__ import annotations

from nibabel import ecat, imageclasses

from ...errors import UnsupportedFormatError
from ...image import Image, Provenance, register_image_class
from ...proxy import DaskProxy, is_dask_array
from . import ECAT
from .header import EcatHeader

__all__ = ["EcatImage"]


class EcatImage(Image, ecat.EcatImage):
    """``nibabel.ecat.EcatImage`` (ECAT 7 ``.v``), lazy: see :class:`voxray.Image`.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "tinypet.v")
    >>> type(img).__name__, img.shape, img.get_data_dtype(0).name, img.in_memory
    ('EcatImage', (10, 10, 3, 1), 'int16', False)
    """

    format = ECAT
    header_class = EcatHeader

    def __init__(
        self, dataobj, affine, header, subheader=None, mlist=None, extra=None, file_map=None
    ):
        data = DaskProxy(dataobj) if is_dask_array(dataobj) else dataobj
        ecat.EcatImage.__init__(
            self, data, affine, header, subheader, mlist, extra=extra, file_map=file_map
        )
        self._provenance = Provenance()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._dataobj.shape)

    @property
    def affine(self):
        """nibabel's (frame 0's affine, with its warning when frames differ); an image
        built without a subheader (``vx.Image(arr, aff, ecat_header)``) has its own."""
        if self._subheader is None:
            return self._affine
        return ecat.EcatImage.affine.fget(self)

    def get_data_dtype(self, frame: int = 0):
        """The stored dtype of ``frame`` (nibabel's, which needs the frame)."""
        return ecat.EcatImage.get_data_dtype(self, frame)

    def _derive(self, dataobj, affine) -> EcatImage:
        new = type(self)(
            dataobj, affine, self.header, self._subheader, self._mlist, extra=self.extra.copy()
        )
        new._provenance = self._provenance.derived()
        return new

    @classmethod
    def from_image(cls, img) -> EcatImage:
        raise UnsupportedFormatError(
            f"an ECAT image is opened from an ECAT file, not built from a "
            f"{type(img).__name__} (nibabel cannot either)"
        )

    def to_file_map(self, file_map=None, dtype=None, **kwargs) -> None:
        """Refused: voxray does not write ECAT (convert to NIfTI or Zarr instead)."""
        self._format().write_file_map(self, file_map if file_map is not None else self.file_map)


register_image_class(EcatImage)

# nibabel's ``spatial_axes_first`` knows spatial-first classes by exact type.
imageclasses.KNOWN_SPATIAL_FIRST = (*imageclasses.KNOWN_SPATIAL_FIRST, EcatImage)
