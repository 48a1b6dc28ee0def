"""FreeSurfer MGH/MGZ: ``.mgh`` and gzipped ``.mgz`` volumes, local, remote or in memory.

An MGH file is a 284-byte big-endian header, the data (big-endian, Fortran
order, 3-D or 4-D) and an optional footer (TR, flip angle, TE, TI, FoV, then
FreeSurfer's tags). Nothing here is a reimplementation of nibabel:

* reading (:mod:`.header`): the header bytes and the 20 footer bytes after the
  data are read by byte range through voxray's sources and parsed by nibabel's
  ``MGHHeader``, so the header (footer included) is exactly nibabel's; the data
  is read lazily by voxray's base :class:`~voxray.reader.Reader` (a strided
  big-endian array at offset 284). A ``.mgz`` is a gzip stream: the source layer
  recognises it by its magic and reads through the persistent gzip seek index
  (random access, cached index, parallel inflates); a URL is read by ranges
  (``remote_locator`` treats ``.mgz`` as gzip). Files without a suffix open by
  their first bytes (:meth:`MghFormat.sniff`).
* writing (:mod:`.write`): out of core, atomically, with the header nibabel's
  ``update_header`` gives and the shared value plan; ``.mgh`` data slabs land in
  their regions in parallel, ``.mgz`` is random-access gzip members (header,
  data, footer) with voxray's trailer index.

The image class is nibabel's ``MGHImage`` with the voxray mixin (:mod:`.images`).
"""

from __future__ import annotations

import os

from ...errors import ImageNotFoundError, NotAnImageError
from ...image import Provenance, class_for_nibabel
from ...proxy import ArrayProxy
from ...reader import Reader
from ...sources import FileObjSpec, is_url, local_spec, remote_locator
from .. import Format, for_filename, locator, register
from .header import MGHInfo, looks_like_mgh, read_header

__all__ = ["MGH", "MghFormat"]


class MghFormat(Format):
    """FreeSurfer MGH (``.mgh``) and gzipped MGH (``.mgz``); see the package docstring."""

    name = "mgh"
    writes = True
    suffixes = (
        ".mgz",
        ".mgh",
    )

    def sniff(self, head: bytes) -> bool:
        return looks_like_mgh(head)

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, level=0):
        filename = os.fspath(filename)
        if level not in (0, -1):
            raise IndexError(f"{filename!r} is an MGH file: it has one level, not level {level}")
        filename, locate = locator(filename, storage_options)
        if not is_url(filename) and os.path.isdir(filename):
            raise NotAnImageError(f"{filename!r} is a directory, not an MGH file")
        spec = locate(filename)
        info = read_header(spec, filename)
        from nibabel.fileholders import FileHolder

        return _image(info, {"image": FileHolder(filename=filename)}, chunks, klass)

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        holder = file_map["image"]
        if holder.fileobj is not None:
            spec = FileObjSpec(holder.fileobj)
            name = holder.filename or getattr(holder.fileobj, "name", None) or "<file object>"
        elif holder.filename:
            name = os.fspath(holder.filename)
            spec = remote_locator(None)(name) if is_url(name) else local_spec(name)
        else:
            raise ImageNotFoundError("the file map has no file name or file object for 'image'")
        return _image(read_header(spec, str(name)), file_map, chunks, klass)

    def save(self, img, filename, **kw) -> None:
        filename = os.fspath(filename)
        other = for_filename(filename)
        if other is not None and other is not self and not self.claims(filename):
            # ``img.to_filename("x.nii.gz")`` / ``nibabel.save(img, "x.nii.gz")`` of an MGH
            # image: the destination's format converts it, out of core (nibabel.save's
            # own fallback would load the data).
            other.save(img, filename, **kw)
            return
        from .write import save

        save(img, filename, **kw)

    def write_file_map(self, img, file_map, **kw) -> None:
        from .write import write_file_map

        write_file_map(img, file_map, **kw)


def _image(info: MGHInfo, file_map, chunks, klass=None):
    """The lazy voxray image of a parsed header, as nibabel's ``from_file_map`` builds it
    (the header's affine, the header passed through)."""
    from nibabel.freesurfer.mghformat import MGHImage as NibMGHImage

    vklass = klass if klass is not None else class_for_nibabel(NibMGHImage)
    proxy = ArrayProxy.from_reader(Reader(info.spec, info.layout), chunks=chunks)
    img = vklass(proxy, info.affine, info.header, file_map=file_map)
    files = frozenset() if isinstance(info.spec, FileObjSpec) else frozenset({info.spec.name})
    img.provenance = Provenance(files=files, header=info.header, format="mgh", chunks=chunks)
    return img


MGH = register(MghFormat())

from .images import MGHDataTypeError, MGHImage  # noqa: E402  (the class needs the format)

__all__ += ["MGHDataTypeError", "MGHImage"]
