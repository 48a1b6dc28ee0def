"""The NIfTI family: NIfTI-1 and NIfTI-2 (single files and pairs), Analyze 7.5, SPM99
and SPM2, optionally gzipped, local or remote.

nibabel parses every header (:mod:`.header`); voxray reads the data lazily by byte
ranges (through the gzip seek index for ``.gz``) and writes out of core
(:mod:`.write`). The image classes are nibabel's, with :class:`voxray.image.Image`
mixed in (:mod:`.images`).
"""

from __future__ import annotations

import os

from nibabel.filebasedimages import ImageFileError as NibImageFileError

from ...errors import ImageNotFoundError, NotAnImageError
from ...image import Provenance, class_for_nibabel, nibabel_class_of
from ...proxy import ArrayProxy
from ...reader import Reader
from ...sources import (
    FileObjSpec,
    is_url,
    local_spec,
    open_source,
    remote_locator,
)
from .. import Format, for_header_bytes, locator, register
from .header import HeaderInfo, file_map, file_names, read_header, split_url

__all__ = ["NIFTI", "NiftiFormat"]

_EXTS = (".nii", ".hdr", ".img")
_COMPRESSIONS = (".gz", ".bz2", ".zst", "")


class NiftiFormat(Format):
    """NIfTI-1/2, NIfTI pairs and the Analyze family (see the package docstring)."""

    name = "nifti"
    writes = True
    suffixes = tuple(e + c for c in _COMPRESSIONS for e in _EXTS)

    def sniff(self, head: bytes) -> bool:
        if len(head) < 348:
            return False
        for order in ("little", "big"):
            size = int.from_bytes(head[:4], order)
            if size == 348:  # NIfTI-1 or Analyze (whose magic bytes are free)
                return True
            if size == 540 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
                return True
        return False

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, level=0):
        filename = os.fspath(filename)
        if level not in (0, -1):
            raise IndexError(f"{filename!r} is a NIfTI file: it has one level, not level {level}")
        filename, locate = locator(filename, storage_options)
        if klass is not None and not is_url(filename):  # nibabel's file-name rules for it
            try:
                klass.filespec_to_file_map(filename)
            except NibImageFileError as e:
                raise NotAnImageError(f"{filename!r}: {e}") from None
        candidates = None if klass is None else [nibabel_class_of(klass)]
        single = False
        if not self.claims(filename):  # recognised by its first bytes, or a suffix-less URL
            if klass is None:
                candidates = [_single_file_class(filename, locate)]
            elif len(klass.files_types) > 1:
                raise NotAnImageError(
                    f"{filename!r}: a {klass.__name__} is a pair of files; name its .hdr/.img"
                )
            single = True
        info = read_header(filename, locate, candidates, single=single)
        other = _more_specific(info) if klass is None else None
        if other is not None:
            # A .nii NIfTI-2 header another format recognises (CIFTI-2 intent): nibabel
            # tries Cifti2Image before Nifti2Image, whatever the file's name.
            return other.open(filename, chunks=chunks, storage_options=storage_options)
        return _image(info, file_map(info), chunks, klass)

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        nklass = nibabel_class_of(klass)
        image = file_map["image"]
        filename = image.filename if image.fileobj is None and image.filename else None
        if filename is None:
            filename = f"<file object>{nklass.files_types[0][1]}"
        filename = os.fspath(filename)
        derived = file_names(nklass, filename)
        kinds = {name: kind for kind, name in derived.items()}
        base = remote_locator(None) if is_url(filename) else local_spec

        def locate(name: str):
            holder = file_map.get(kinds.get(name))
            if holder is not None and holder.fileobj is not None:
                return FileObjSpec(holder.fileobj)
            if holder is not None and holder.filename:
                return base(os.fspath(holder.filename))
            raise ImageNotFoundError(f"{name!r}: no file name or file object in the file map")

        info = read_header(filename, locate, [nklass])
        return _image(info, file_map, chunks, klass)

    def save(self, img, filename, **kw) -> None:
        own = getattr(type(img), "format", None)
        if own is not None and own is not self and getattr(own, "writes_nifti", False):
            own.save(img, filename, **kw)  # a CIFTI-2 image is written as a .nii by its format
            return
        from .write import save

        save(img, filename, **kw)

    def write_file_map(self, img, file_map, **kw) -> None:
        from .write import write_file_map

        write_file_map(img, file_map, **kw)


def _more_specific(info: HeaderInfo) -> Format | None:
    """The registered format, other than NIfTI, that takes this uncompressed-named ``.nii``
    NIfTI-2 header (CIFTI-2 by its intent code), as nibabel's class order has it; None
    for the rest (``.nii.gz`` stay NIfTI-2: nibabel's Cifti2Image takes no ``.gz``)."""
    from nibabel import nifti2
    from nibabel.filename_parser import splitext_addext

    if info.image_class is not nifti2.Nifti2Image:
        return None
    if splitext_addext(split_url(info.filename)[1], _COMPRESSIONS[:-1])[2]:
        return None
    fmt = for_header_bytes(info.header.binaryblock)
    return None if fmt is None or fmt.name == NiftiFormat.name else fmt


def _single_file_class(filename: str, locate) -> type:
    """The single-file nibabel class of a file by its magic (any suffix)."""
    from nibabel import nifti1, nifti2

    head = open_source(locate(filename)).read_prefix(348)
    magic = head[344:348] if len(head) >= 348 else b""
    if magic == b"n+1\x00":
        return nifti1.Nifti1Image
    if head[4:8] == b"n+2\x00":
        return nifti2.Nifti2Image
    raise NotAnImageError(
        f"{filename!r}: its suffix names no format voxray reads, and its first bytes are not a "
        f"single-file NIfTI-1/2 header (an Analyze or NIfTI pair needs its .hdr/.img names)"
    )


def _image(info: HeaderInfo, fmap, chunks, klass=None):
    """The lazy voxray image of a parsed header, as nibabel's ``from_file_map`` builds it:
    no affine at construction (the header passes through unmodified), then the header's
    best affine (or the SPM ``.mat`` affine)."""
    vklass = klass if klass is not None else class_for_nibabel(info.image_class)
    proxy = ArrayProxy.from_reader(Reader(info.data_spec, info.layout), chunks=chunks)
    img = vklass(proxy, None, info.header, file_map=fmap)
    img._affine = info.mat_affine if info.mat_affine is not None else info.affine
    files = {s.name for s in (info.header_spec, info.data_spec) if not isinstance(s, FileObjSpec)}
    # The header as stored (nibabel resets scaling and offset in the image's copy):
    # saving an unchanged image writes these fields back bit for bit.
    img.provenance = Provenance(
        files=frozenset(files), header=info.header, format="nifti", chunks=chunks
    )
    return img


NIFTI = register(NiftiFormat())

from .images import (  # noqa: E402  (the classes need the format object)
    AnalyzeImage,
    Nifti1Image,
    Nifti1Pair,
    Nifti2Image,
    Nifti2Pair,
    Spm2AnalyzeImage,
    Spm99AnalyzeImage,
)

__all__ += [
    "AnalyzeImage",
    "Nifti1Image",
    "Nifti1Pair",
    "Nifti2Image",
    "Nifti2Pair",
    "Spm2AnalyzeImage",
    "Spm99AnalyzeImage",
]
