"""CIFTI-2: a NIfTI-2 file whose header extension is the CIFTI XML, read and written
lazily.

A CIFTI-2 file is a single ``.nii`` NIfTI-2 file with an intent code in 3000-3099
and a header extension (code 32) holding XML that describes each axis of the
matrix (brain models, parcels, scalars, labels or a series). The matrix is stored
as NIfTI dims ``(1, 1, 1, 1, N, M)``, in Fortran order: ``data[:, c]`` is
contiguous on disk and ``data[r, :]`` is strided.

Everything nibabel does well stays nibabel's: its NIfTI-2 header class for CIFTI
(``_Cifti2AsNiftiHeader``) parses the header and extensions, its ``Cifti2Header``
parses the XML (lazily, on first use, as nibabel does), its axes
(``img.header.get_axis(i)``) describe the dimensions. voxray supplies the bytes
(local files, gzip streams and URLs through :mod:`voxray.sources`, via the NIfTI
plug-in's :func:`~voxray.formats.nifti.header.read_header`) and the data: a voxray
:class:`~voxray.proxy.ArrayProxy` of the NIfTI-2 array reshaped to the CIFTI shape,
so any selection reads only its byte ranges (one row of a dense connectome reads
one value per column, not the file).

Which files are CIFTI follows nibabel's class order: nibabel tries ``Cifti2Image``
before ``Nifti2Image``, and takes any ``.nii`` NIfTI-2 file with a CIFTI intent as
CIFTI whatever its name; a CIFTI suffix (``.dconn.nii``...) on a file without a
CIFTI intent is a plain NIfTI file. So this format claims the CIFTI suffixes, and
the NIfTI format hands ``.nii`` files to it when :meth:`CiftiFormat.sniff` takes
their header (``.nii.gz`` stay NIfTI-2, as nibabel has them).

Writing (:mod:`.write`) builds the NIfTI-2 image nibabel's ``to_file_map`` would
(the XML as a ``Cifti2Extension``) and streams it through the NIfTI writer. The
image class is in :mod:`.images`, the xarray view in :mod:`.dataarray`.
"""

from __future__ import annotations

import os

from nibabel.cifti2.parse_cifti2 import Cifti2Extension, _Cifti2AsNiftiHeader, _Cifti2AsNiftiImage
from nibabel.filebasedimages import ImageFileError as NibImageFileError
from nibabel.spatialimages import HeaderDataError

from ...errors import ImageNotFoundError, InvalidHeaderError, NotAnImageError
from ...image import Provenance
from ...proxy import ArrayProxy
from ...reader import Reader
from ...sources import FileObjSpec, is_url, local_spec, open_source, remote_locator
from .. import Format, locator, register

__all__ = ["CIFTI", "CiftiFormat", "Cifti2Image", "NoAffineError", "is_cifti_header"]

#: NIfTI intent codes of CIFTI-2 (nibabel's ``_Cifti2AsNiftiHeader._valid_intent_code``).
INTENT_CODES = range(3000, 3100)


def is_cifti_header(head: bytes) -> bool:
    """Whether the first bytes of a file are a NIfTI-2 header with a CIFTI-2 intent code
    (nibabel's own test, ``_Cifti2AsNiftiHeader.may_contain_header``).

    Examples
    --------
    >>> from voxray.testing import NIBABEL_DATA
    >>> is_cifti_header((NIBABEL_DATA / "row_major.dconn.nii").read_bytes()[:540])
    True
    >>> is_cifti_header((NIBABEL_DATA / "example4d.nii.gz").read_bytes()[:540])
    False
    """
    if len(head) < _Cifti2AsNiftiHeader.sizeof_hdr:
        return False
    try:
        return bool(_Cifti2AsNiftiHeader.may_contain_header(bytes(head)))
    except Exception:  # a header nibabel cannot even look at is not CIFTI
        return False


class CiftiFormat(Format):
    """CIFTI-2 files (see the package docstring)."""

    name = "cifti"
    writes = True
    suffixes = (
        ".dtseries.nii",
        ".dscalar.nii",
        ".dlabel.nii",
        ".dconn.nii",
        ".ptseries.nii",
        ".pscalar.nii",
        ".pconn.nii",
        ".pdconn.nii",
        ".dpconn.nii",
        ".plabel.nii",
        ".dfan.nii",
        ".fibertemp.nii",
    )
    #: A CIFTI-2 image is written as a ``.nii`` file: the NIfTI format hands it back here.
    writes_nifti = True

    def sniff(self, head: bytes) -> bool:
        return is_cifti_header(head)

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, level=0):
        filename = os.fspath(filename)
        if level not in (0, -1):
            raise IndexError(
                f"{filename!r} is a CIFTI-2 file: it has one level, not level {level}"
            )
        filename, locate = locator(filename, storage_options)
        if klass is not None and not is_url(filename):  # nibabel's file-name rules for it
            try:
                klass.filespec_to_file_map(filename)
            except NibImageFileError as e:
                raise NotAnImageError(f"{filename!r}: {e}") from None
        head = open_source(locate(filename)).read_prefix(_Cifti2AsNiftiHeader.sizeof_hdr)
        if not is_cifti_header(head):
            if klass is None:
                # A CIFTI suffix on a plain NIfTI file: nibabel loads it as NIfTI too.
                from ..nifti import NIFTI

                return NIFTI.open(filename, chunks=chunks, storage_options=storage_options)
            raise NotAnImageError(
                f"{filename!r} is not a CIFTI-2 file: its header is not a NIfTI-2 header with a "
                f"CIFTI intent code (3000-3099); open it as a plain NIfTI image (vx.load)"
            )
        from ..nifti.header import read_header

        info = read_header(filename, locate, [_Cifti2AsNiftiImage], single=True)
        return _image(info, _file_map(filename), chunks, klass)

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        holder = file_map["image"]
        if holder.fileobj is not None:
            spec = FileObjSpec(holder.fileobj)
            filename = os.fspath(holder.filename or getattr(holder.fileobj, "name", None) or "")
            filename = filename or "<file object>.nii"
        elif holder.filename:
            filename = os.fspath(holder.filename)
            spec = None
        else:
            raise ImageNotFoundError("the file map has no file name or file object for 'image'")
        base = remote_locator(None) if is_url(filename) else local_spec

        def locate(name: str):
            return spec if spec is not None else base(name)

        from ..nifti.header import read_header

        info = read_header(filename, locate, [_Cifti2AsNiftiImage], single=True)
        return _image(info, file_map, chunks, klass)

    def save(self, img, filename, **kw) -> None:
        from .write import save

        save(img, filename, **kw)

    def write_file_map(self, img, file_map, **kw) -> None:
        from .write import write_file_map

        write_file_map(img, file_map, **kw)


def _file_map(filename: str) -> dict:
    from nibabel.cifti2 import Cifti2Image as NibCifti2Image

    return NibCifti2Image.make_file_map({"image": filename})


def cifti_header_of(nifti_header, filename: str):
    """The parsed ``Cifti2Header`` of a NIfTI-2 header's CIFTI extension, or a
    :class:`~voxray.errors.InvalidHeaderError` naming the file."""
    for ext in nifti_header.extensions:
        if isinstance(ext, Cifti2Extension):
            try:
                return ext.get_content()
            except Exception as e:  # expat errors, Cifti2HeaderError, bad values
                raise InvalidHeaderError(
                    f"{filename!r}: the CIFTI-2 XML header extension cannot be parsed: "
                    f"{type(e).__name__}: {e}"
                ) from None
    codes = [int(e.get_code()) for e in nifti_header.extensions]
    raise InvalidHeaderError(
        f"{filename!r}: a NIfTI-2 header with intent code {int(nifti_header['intent_code'])!r} "
        f"but no CIFTI-2 extension (code 32; its extension codes are {codes!r})"
    )


def _image(info, fmap, chunks, klass=None):
    """The lazy voxray image of a parsed CIFTI-2 header, as nibabel's ``from_file_map``
    builds it: the NIfTI-2 array reshaped to its dims 5 and up."""
    name = info.filename
    if int(info.header["sizeof_hdr"]) != 540:
        raise NotAnImageError(
            f"{name!r} is not a NIfTI-2 file (sizeof_hdr {int(info.header['sizeof_hdr'])!r}): "
            f"CIFTI-2 is a NIfTI-2 header with a CIFTI extension"
        )
    cifti_header = cifti_header_of(info.header, name)
    proxy = ArrayProxy.from_reader(Reader(info.data_spec, info.layout), chunks=chunks)
    shape = info.layout.shape[4:]
    try:
        data = proxy.reshape(shape)
    except ValueError as e:
        raise InvalidHeaderError(
            f"{name!r}: NIfTI dims {info.layout.shape!r} cannot hold a CIFTI matrix "
            f"(dims 5 and up are the CIFTI axes): {e}"
        ) from None
    # nibabel's NIfTI-2 image over the same data (nothing is read): its header is the
    # image's copy nibabel hands to Cifti2Image (scaling and offset reset, as nibabel does).
    nifti_header = _Cifti2AsNiftiImage(proxy, None, info.header).header
    vklass = klass if klass is not None else Cifti2Image
    try:
        cifti_header.matrix.get_data_shape()
    except Exception as e:
        raise InvalidHeaderError(f"{name!r}: invalid CIFTI-2 matrix: {e}") from None
    try:
        img = vklass(data, header=cifti_header, nifti_header=nifti_header, file_map=fmap)
    except HeaderDataError as e:  # nibabel's header copy refuses a field (zooms <= 0, ...)
        raise InvalidHeaderError(
            f"{name!r}: invalid NIfTI-2 header of a CIFTI-2 file: {e}"
        ) from None
    files = {s.name for s in (info.header_spec, info.data_spec) if not isinstance(s, FileObjSpec)}
    img.provenance = Provenance(
        files=frozenset(files), header=info.header, format="cifti", chunks=chunks
    )
    return img


CIFTI = register(CiftiFormat())

from .images import Cifti2Image, NoAffineError  # noqa: E402  (the class needs the format)
