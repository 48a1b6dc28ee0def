"""Philips PAR/REC: a ``.PAR`` text header and a ``.REC`` file of raw slices, local,
remote or in file objects.

nibabel does everything a header needs (:mod:`.header`): voxray reads the PAR text
through its sources and hands it to ``nibabel.parrec.PARRECHeader``, with nibabel's
``permit_truncated`` and ``strict_sort``, so header, shape, dtype, zooms and affine are
nibabel's own. The data is read lazily by voxray's :class:`.reader.ParrecReader`: the
REC bytes of exactly the slices a selection needs, by byte ranges (URLs too), sorted
and scaled per slice as nibabel's ``PARRECArrayProxy`` does (both ``scaling='dv'``
and ``'fp'``). The image class is nibabel's ``PARRECImage`` with the voxray mixin
(:mod:`.images`).

nibabel cannot write PAR/REC and neither does voxray: saving to ``.PAR``/``.REC``
raises :class:`~voxray.errors.UnsupportedFormatError`; saving to NIfTI or NIfTI-Zarr
converts out of core.

Examples
--------
>>> import voxray as vx, nibabel as nib
>>> from voxray.testing import NIBABEL_DATA
>>> img = vx.load(NIBABEL_DATA / "phantom_EPI_asc_CLEAR_2_1.PAR")
>>> isinstance(img, nib.parrec.PARRECImage), img.shape, img.dataobj.dtype.str
(True, (64, 64, 9, 3), '<u2')
>>> float(img.dataobj[32, 32, 4, 0]) == float(nib.load(img.get_filename()).dataobj[32, 32, 4, 0])
True
"""

from __future__ import annotations

import os

from nibabel.filebasedimages import ImageFileError as NibImageFileError
from nibabel.parrec import PARRECImage as NibPARRECImage

from ...errors import ImageNotFoundError, NotAnImageError, UnsupportedFormatError
from ...image import Provenance, class_for_nibabel
from ...sources import FileObjSpec, is_url, local_spec, remote_locator
from .. import Format, locator, register
from .header import PAR_MAGIC, ParrecHeaderError, make_reader, parse_par, read_par
from .reader import ParrecArrayProxy

__all__ = ["PARREC", "ParrecFormat"]


class ParrecFormat(Format):
    """Philips PAR/REC (read only); see the package docstring."""

    name = "parrec"
    suffixes = (
        ".par",
        ".rec",
    )

    def sniff(self, head: bytes) -> bool:
        return head.lstrip().startswith(PAR_MAGIC)

    def open(
        self,
        filename,
        *,
        klass=None,
        chunks="auto",
        storage_options=None,
        permit_truncated: bool = False,
        scaling: str = "dv",
        strict_sort: bool = False,
    ):
        """The lazy image of a ``.PAR`` or ``.REC`` name (either; any case), as
        ``nibabel.load(filename, permit_truncated=, scaling=, strict_sort=)``."""
        filename = os.fspath(filename)
        filename, locate = locator(filename, storage_options)
        if not self.claims(filename):
            raise NotAnImageError(
                f"{filename!r} is a PAR header by its first bytes, but PAR/REC files are found "
                f"by name: name it .PAR with its .REC beside it"
            )
        try:  # nibabel's rules for the other file's name (x.PAR <-> x.REC, case kept)
            fmap = (_url_file_map if is_url(filename) else NibPARRECImage.filespec_to_file_map)(
                filename
            )
        except NibImageFileError as e:
            raise NotAnImageError(f"{filename!r}: {e}") from None
        par, rec = (os.fspath(fmap[kind].filename) for kind in ("header", "image"))
        par_spec = locate(par)
        return _image(
            read_par(par_spec, par),
            par_spec,
            par,
            lambda: locate(rec),
            rec,
            fmap,
            chunks,
            klass,
            dict(permit_truncated=permit_truncated, strict_sort=strict_sort),
            scaling,
        )

    def open_file_map(
        self,
        klass,
        file_map,
        *,
        chunks="auto",
        permit_truncated: bool = False,
        scaling: str = "dv",
        strict_sort: bool = False,
    ):
        """The lazy image of nibabel's ``file_map`` (``header`` and ``image`` holders with
        file names or open file objects)."""
        specs = []
        for kind in ("header", "image"):
            holder = file_map.get(kind)
            if holder is not None and holder.fileobj is not None:
                name = holder.filename or getattr(holder.fileobj, "name", None)
                specs.append((lambda h=holder: FileObjSpec(h.fileobj), str(name or "<file>")))
            elif holder is not None and holder.filename:
                name = os.fspath(holder.filename)
                base = remote_locator(None) if is_url(name) else local_spec
                specs.append((lambda n=name, b=base: b(n), name))
            else:
                raise ImageNotFoundError(
                    f"the file map has no file name or file object for {kind!r}"
                )
        (par_spec, par), (rec_spec, rec) = specs
        holder = file_map["header"]
        if holder.fileobj is not None:  # text or bytes, read from the holder's position
            holder.fileobj.seek(holder.pos)
            par_data = holder.fileobj.read()
            par_source = None
        else:
            par_source = par_spec()
            par_data = read_par(par_source, par)
        return _image(
            par_data,
            par_source,
            par,
            rec_spec,
            rec,
            file_map,
            chunks,
            klass,
            dict(permit_truncated=permit_truncated, strict_sort=strict_sort),
            scaling,
        )

    def write_file_map(self, img, file_map, **kw) -> None:
        holder = file_map.get("image") or file_map.get("header")
        name = getattr(holder, "filename", None) or "a file map"
        raise UnsupportedFormatError(
            f"{name!r}: voxray cannot write PAR/REC (nibabel cannot either); save as NIfTI "
            f"(.nii, .nii.gz) or NIfTI-Zarr (.nii.zarr) instead"
        )


def _url_file_map(url: str) -> dict:
    """nibabel's file map of a PAR/REC URL (nibabel's own normalises the ``//`` away): the
    partner's suffix in the same case, upper when the given one is all upper case."""
    from nibabel.fileholders import FileHolder

    ext = url[-4:]
    other = {".par": ".rec", ".rec": ".par"}[ext.lower()]
    other = other.upper() if ext.isupper() else other
    names = {ext.lower(): url, other.lower(): url[:-4] + other}
    return {"header": FileHolder(names[".par"]), "image": FileHolder(names[".rec"])}


def _image(par_data, par_spec, par, rec_locate, rec, fmap, chunks, klass, options, scaling):
    """Parse the PAR, check the REC, and build the lazy image as nibabel's
    ``PARRECImage.from_file_map`` does (header's affine, the header itself)."""
    header = parse_par(par_data, par, **options)
    rec_spec = rec_locate()  # after the header, as nibabel (a bad PAR is named first)
    reader = make_reader(header, rec_spec, rec, scaling)
    vklass = klass if klass is not None else class_for_nibabel(NibPARRECImage)
    proxy = ParrecArrayProxy.from_reader(reader, chunks=chunks)
    try:
        affine = header.get_affine()
    except Exception as e:  # nibabel's PARRECError (unknown slice orientation), or worse
        raise ParrecHeaderError(f"{par!r}: cannot compute the affine: {e}") from None
    img = vklass(proxy, affine, header=header, file_map=fmap)
    files = {
        n
        for s, n in ((par_spec, par), (rec_spec, rec))
        if s is not None and not isinstance(s, FileObjSpec)
    }
    # No stored header in the provenance: it is for writers that write this format back.
    img.provenance = Provenance(files=frozenset(files), format="parrec", chunks=chunks)
    return img


PARREC = register(ParrecFormat())

from .images import PARRECImage  # noqa: E402  (the class needs the format object)

__all__ += ["PARRECImage"]
