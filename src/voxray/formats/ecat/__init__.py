"""ECAT 7 (``.v``, CTI/Siemens PET), read lazily frame by frame by byte ranges.

nibabel parses the main header, the matrix list and the per-frame subheaders
(:mod:`.header`, over a file object reading through a voxray source); voxray
reads the frames itself (:mod:`.reader`): the bytes of the selected voxels of each
selected frame, scaled by the calibration and the frame's scale factor exactly as
nibabel's ``EcatImageArrayProxy`` (float64). The dask graph has one chunk per frame
by default. ECAT files are not in ``nibabel.load``'s registry (``nibabel.ecat.load``
opens them); :func:`voxray.load` opens them by the ``.v`` suffix or, whatever the
name, by the magic ``MATRIX`` of the main header.

voxray does not write ECAT: saving to ``.v`` raises
:class:`~voxray.errors.UnsupportedFormatError`; ``vx.save(img, "x.nii.gz")`` and
``vx.to_zarr`` convert (float64 values and the affine kept).

Examples
--------
>>> import voxray as vx
>>> from voxray.testing import NIBABEL_DATA
>>> img = vx.load(NIBABEL_DATA / "tinypet.v")
>>> img.shape, img.dataobj[0, 0, 0, 0].dtype.name
((10, 10, 3, 1), 'float64')
"""

from __future__ import annotations

import os

from ...errors import UnsupportedFormatError
from ...image import Provenance
from ...proxy import ArrayProxy
from ...reader import ArrayLayout
from ...sources import FileObjSpec, is_url, local_spec, remote_locator
from .. import Format, locator, register
from .header import EcatInfo, read_header, sniff
from .reader import EcatReader

__all__ = ["ECAT", "EcatFormat"]


class EcatFormat(Format):
    """ECAT 7 (see the package docstring); read-only."""

    name = "ecat"
    suffixes = (".v",)

    def sniff(self, head: bytes) -> bool:
        return sniff(head)

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, level=0):
        filename = os.fspath(filename)
        if level not in (0, -1):
            raise IndexError(f"{filename!r} is an ECAT file: it has one level, not {level}")
        filename, locate = locator(filename, storage_options)
        spec = locate(filename)
        info = read_header(filename, spec)
        return _image(info, chunks, klass)

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        holder = file_map.get("image") or file_map.get("header")
        if holder is not None and holder.fileobj is not None:
            spec = FileObjSpec(holder.fileobj)
            name = getattr(holder.fileobj, "name", None) or "<file object>.v"
        elif holder is not None and holder.filename:
            name = os.fspath(holder.filename)
            spec = (remote_locator(None) if is_url(name) else local_spec)(name)
        else:
            from ...errors import ImageNotFoundError

            raise ImageNotFoundError("an ECAT file map needs a file name or file object")
        return _image(read_header(name, spec), chunks, klass, file_map)

    @property
    def writes(self) -> bool:
        return False  # save only refuses (with the reason nibabel's ECAT writer is not used)

    def save(self, img, filename, **kw) -> None:
        raise UnsupportedFormatError(
            f"{os.fspath(filename)!r}: voxray does not write ECAT files (nibabel's ECAT writer "
            f"copies the frames of the file an image was read from, in memory); write NIfTI "
            f"(.nii, .nii.gz) or NIfTI-Zarr (.nii.zarr) instead"
        )

    def write_file_map(self, img, file_map, **kw) -> None:
        raise UnsupportedFormatError(
            "voxray does not write ECAT files; write NIfTI (.nii, .nii.gz) or NIfTI-Zarr "
            "(.nii.zarr) instead"
        )


def _image(info: EcatInfo, chunks, klass=None, fmap=None):
    """The lazy voxray image of a parsed ECAT file (one dask chunk per frame by default)."""
    vklass = klass if klass is not None else EcatImage
    if fmap is None:
        fmap = vklass.make_file_map({"image": info.filename, "header": info.filename})
    if isinstance(chunks, str) and chunks == "auto":
        chunks = (-1, -1, -1, 1)
    layout = ArrayLayout(info.shape, "f8")
    reader = EcatReader(info.spec, layout, info.frames, info.calibration, info.flips)
    proxy = ArrayProxy.from_reader(reader, chunks=chunks)
    img = vklass(proxy, info.affine, info.header, info.subheader, info.mlist, file_map=fmap)
    files = set() if isinstance(info.spec, FileObjSpec) else {info.spec.name}
    img.provenance = Provenance(files=frozenset(files), format="ecat", chunks=chunks)
    return img


ECAT = register(EcatFormat())

from .images import EcatImage  # noqa: E402  (the class needs the format object)

__all__ += ["EcatImage"]
