"""AFNI BRIK/HEAD datasets (``x+orig.HEAD`` + ``x+orig.BRIK[.gz]``), read lazily by byte
ranges, local or remote.

nibabel parses the ``.HEAD`` text (:mod:`.header`: ``nibabel.brikhead.AFNIHeader``
gives the shape, dtype, affine, zooms, volume labels and per-volume factors); voxray
reads the ``.BRIK`` itself (:mod:`.reader`): a plain Fortran-order array at offset 0,
read by planned byte ranges (through voxray's gzip seek index for ``.BRIK.gz``, so one
volume inflates at most one index spacing plus the volume), then multiplied by the
factors of the volumes read, exactly as nibabel's ``AFNIArrayProxy`` does. The image
class is nibabel's ``AFNIImage`` with :class:`voxray.image.Image` mixed in
(:mod:`.images`).

nibabel cannot write AFNI, and neither does voxray: saving to a ``.HEAD``/``.BRIK``
name raises :class:`~voxray.errors.UnsupportedFormatError`; ``vx.save(img, "x.nii.gz")`` and
``vx.to_zarr`` convert (affine and values kept).

Examples
--------
>>> import voxray as vx
>>> from voxray.testing import NIBABEL_DATA
>>> img = vx.load(NIBABEL_DATA / "example4d+orig.HEAD")
>>> type(img).__name__, img.shape, img.in_memory
('AFNIImage', (33, 41, 25, 3), False)
"""

from __future__ import annotations

import os

from ...errors import ImageNotFoundError
from ...image import Provenance, class_for_nibabel
from ...sources import FileObjSpec, is_url, local_spec, remote_locator
from .. import Format, locator, register
from .header import AfniInfo, read_header
from .reader import AFNIArrayProxy, AfniReader

__all__ = ["AFNI", "AfniFormat"]


class AfniFormat(Format):
    """AFNI BRIK/HEAD (see the package docstring); read-only, as in nibabel."""

    name = "afni"
    suffixes = (
        ".brik.gz",
        ".brik",
        ".head",
    )

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, level=0):
        filename = os.fspath(filename)
        if level not in (0, -1):
            raise IndexError(f"{filename!r} is an AFNI dataset: it has one level, not {level}")
        filename, locate = locator(filename, storage_options)
        info = read_header(filename, locate)
        return _image(info, None, chunks, klass)

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        holders = {kind: file_map.get(kind) for kind in ("header", "image")}
        specs = {}
        names = {}
        for kind, holder in holders.items():
            if holder is not None and holder.fileobj is not None:
                specs[kind] = FileObjSpec(holder.fileobj)
                names[kind] = getattr(holder.fileobj, "name", None) or f"<file object>.{kind}"
            elif holder is not None and holder.filename:
                name = os.fspath(holder.filename)
                names[kind] = name
                specs[kind] = (remote_locator(None) if is_url(name) else local_spec)(name)
            else:
                raise ImageNotFoundError(
                    f"an AFNI file map needs a {kind!r} file name or file object"
                )
        head = f"{names['header']}.HEAD" if not _named(names["header"]) else names["header"]
        brik = names["image"] if _named(names["image"]) else f"{names['header']}.BRIK"
        by_name = {head: specs["header"], brik: specs["image"]}

        def locate(name: str):
            if name in by_name:
                return by_name[name]
            raise ImageNotFoundError(f"{name!r} is not in the file map")

        info = read_header(head, locate)
        return _image(info, file_map, chunks, klass)

    # Writing: Format's defaults refuse with UnsupportedFormatError (nibabel cannot
    # write AFNI either), and ``writes`` stays False.


def _named(name: str) -> bool:
    return name.lower().split("?", 1)[0].endswith(AfniFormat.suffixes)


def _image(info: AfniInfo, fmap, chunks, klass=None):
    """The lazy voxray image of a parsed HEAD, as nibabel's ``from_file_map`` builds it."""
    from nibabel.brikhead import AFNIImage as NibAFNIImage

    vklass = klass if klass is not None else class_for_nibabel(NibAFNIImage)
    if fmap is None:
        fmap = vklass.make_file_map({"header": info.header_name, "image": info.image_name})
    reader = AfniReader.of(info.data_spec, info.layout.shape, info.layout.dtype, info.factors)
    proxy = AFNIArrayProxy.from_reader(reader, chunks=chunks)
    img = vklass(proxy, info.affine, header=info.header, file_map=fmap)
    files = {s.name for s in (info.header_spec, info.data_spec) if not isinstance(s, FileObjSpec)}
    img.provenance = Provenance(files=frozenset(files), format="afni", chunks=chunks)
    return img


AFNI = register(AfniFormat())

from .images import AFNIImage  # noqa: E402  (the class needs the format object)

__all__ += ["AFNIImage"]
