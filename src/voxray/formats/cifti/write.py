"""Out-of-core CIFTI-2 writing: the NIfTI-2 image nibabel would write, streamed by the
NIfTI writer.

nibabel's ``Cifti2Image.to_file_map`` updates the NIfTI-2 header (shape, a
``Cifti2Extension`` holding the XML in place of any old one, the "unknown CIFTI"
intent when none is set, unit pixdims without a qform) and writes
``Nifti2Image(data.reshape((1, 1, 1, 1) + shape), None, header)``. :func:`nifti_image`
does exactly that with the data left lazy (a reshaped view of the voxray proxy, or of
the dask array), and :mod:`voxray.formats.nifti.write` writes it in slabs, in
parallel, atomically: the same bytes as nibabel for an in-memory image, and a large
lazily loaded connectome is copied slab by slab without being read whole.
"""

from __future__ import annotations

import os

import numpy as np
from nibabel.cifti2 import Cifti2Image as NibCifti2Image
from nibabel.cifti2.parse_cifti2 import Cifti2Extension
from nibabel.filename_parser import splitext_addext
from nibabel.nifti1 import Nifti1Extensions

from ...errors import NotAnImageError
from ...image import Image
from ...proxy import ArrayProxy, DaskProxy
from ...writers.values import WriteError
from ..nifti import NIFTI
from ..nifti import write as nifti_write
from ..nifti.images import Nifti2Image

__all__ = ["nifti_image", "save", "write_file_map"]


def _nifti_data(dataobj, shape: tuple[int, ...]):
    """The data as the NIfTI-2 array ``(1, 1, 1, 1) + shape``, without reading it."""
    full = (1, 1, 1, 1, *shape)
    if isinstance(dataobj, ArrayProxy):
        if dataobj.view.is_identity(dataobj.reader.shape):
            return dataobj.reshape(full)
        return dataobj.sliced((None, None, None, None, Ellipsis))
    if isinstance(dataobj, DaskProxy):
        return dataobj.sliced((None, None, None, None, Ellipsis))
    if getattr(dataobj, "is_proxy", False):  # a nibabel proxy: as nibabel reshapes it
        from nibabel.arrayproxy import reshape_dataobj

        return reshape_dataobj(dataobj, full)
    return np.asanyarray(dataobj).reshape(full)


def nifti_image(img, dtype=None, name: str = "") -> Nifti2Image:
    """The voxray ``Nifti2Image`` nibabel's ``Cifti2Image.to_file_map`` would write for
    ``img`` (updating ``img.nifti_header`` as nibabel does), its data still lazy.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "row_major.dconn.nii")
    >>> out = nifti_image(img)
    >>> out.shape, out.in_memory, [e.get_code() for e in out.header.extensions]
    ((1, 1, 1, 1, 10, 10), False, [32])
    """
    img.update_headers()
    header = img.nifti_header
    extension = Cifti2Extension.from_bytes(img.header.to_xml())
    header.extensions = Nifti1Extensions(
        ext for ext in header.extensions if not isinstance(ext, Cifti2Extension)
    )
    header.extensions.append(extension)
    expected = img.header.matrix.get_data_shape()
    if tuple(img.dataobj.shape) != tuple(expected):
        raise WriteError(
            f"{name or img.get_filename() or 'image'}: data shape {tuple(img.dataobj.shape)!r} "
            f"does not match the shape the CIFTI-2 header describes {tuple(expected)!r}"
        )
    if header.get_intent()[0] == "none":
        header.set_intent("NIFTI_INTENT_CONNECTIVITY_UNKNOWN")
    if header["qform_code"] == 0:
        header["pixdim"][:4] = 1
    data = _nifti_data(img.dataobj, tuple(img.dataobj.shape))
    out = Nifti2Image(data, None, header, dtype=dtype)
    if isinstance(img, Image):  # so the writer refuses to overwrite the files read from
        out.provenance = img.provenance.derived()
    return out


def _cifti(img):
    if isinstance(img, Image):
        return img
    if isinstance(img, NibCifti2Image):
        from .images import Cifti2Image

        return Cifti2Image.from_image(img)
    return None


def save(img, filename, **kwargs) -> None:
    """Write a CIFTI-2 image to ``filename`` out of core (``.nii``; ``.nii.gz`` writes the
    same file gzipped, which nibabel and voxray read back as a ``Nifti2Image``, as
    nibabel reads any ``.nii.gz``). Images that are not CIFTI (a NIfTI image saved as
    ``x.dscalar.nii``) are written by the NIfTI writer, as ``nibabel.save`` does.

    Parameters
    ----------
    img : Cifti2Image (voxray or nibabel), or any image the NIfTI writer takes
    filename : str or os.PathLike
    **kwargs
        ``dtype``, ``compresslevel``, ``progress`` as for
        :func:`voxray.formats.nifti.write.save`.

    Examples
    --------
    >>> import tempfile, numpy as np, voxray as vx
    >>> from nibabel.cifti2 import cifti2_axes as axes
    >>> from voxray.formats.cifti import Cifti2Image
    >>> scalars = axes.ScalarAxis(["a", "b"])
    >>> models = axes.BrainModelAxis.from_surface(np.arange(5), 10, "CortexLeft")
    >>> img = Cifti2Image(np.ones((2, 5), np.float32), (scalars, models))
    >>> out = tempfile.mkdtemp() + "/x.dscalar.nii"
    >>> save(img, out)
    >>> vx.load(out).shape
    (2, 5)
    """
    filename = os.fspath(filename)
    cimg = _cifti(img)
    if cimg is None or not isinstance(cimg, NibCifti2Image):
        NIFTI.save(img, filename, **kwargs)
        return
    _, ext, trailing = splitext_addext(filename, (".gz", ".bz2", ".zst"))
    if ext.lower() != ".nii":
        raise NotAnImageError(
            f"{filename!r}: a CIFTI-2 image is one NIfTI-2 file; name it .nii (or "
            f".dscalar.nii, .dtseries.nii...), not {ext + trailing!r}"
        )
    dtype = kwargs.pop("dtype", None)
    nimg = nifti_image(cimg, dtype, name=filename)
    nifti_write.save(nimg, filename, **kwargs)


def write_file_map(img, file_map, *, dtype=None, **kwargs) -> None:
    """Write a voxray ``Cifti2Image`` to nibabel's ``file_map`` (a file name or an open
    file object under ``"image"``), out of core."""
    name = file_map["image"].filename or "file object"
    nimg = nifti_image(img, dtype, name=str(name))
    nifti_write.write_file_map(nimg, file_map, **kwargs)
