"""``load`` and ``save``: dispatch over the format registry.

A name is matched to a format by its suffix (directory stores such as Zarr by
their own test), then, for a local file whose suffix no format claims, by its
first bytes (gzip-decompressed when gzipped). The format does the rest.
"""

from __future__ import annotations

import os

from . import formats
from .errors import ImageNotFoundError, NotAnImageError, UnsupportedFormatError
from .image import Image
from .sources import is_url

__all__ = ["find_format", "load", "save", "to_zarr"]

#: Bytes read to sniff a file whose suffix no format claims.
SNIFF = 1024


def _sniff(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)  # enough compressed bytes for SNIFF decompressed ones
    except IsADirectoryError:
        return b""
    except FileNotFoundError:
        raise ImageNotFoundError(f"{path!r} does not exist") from None
    except OSError as e:
        raise ImageNotFoundError(f"{path!r} cannot be opened: {e.strerror or e}") from None
    if head[:2] == b"\x1f\x8b":
        import zlib

        try:
            return zlib.decompressobj(31).decompress(head, SNIFF)
        except zlib.error:
            return b""
    return head[:SNIFF]


#: Files nibabel (or its neighbours) read that are not volumes: (suffixes, what they are,
#: what reads them, a test of their first bytes).
OUT_OF_SCOPE = (
    (
        (".trk", ".tck", ".trx"),
        "a streamlines (tractography) file",
        "nibabel.streamlines.load",
        lambda head: head[:5] == b"TRACK" or head[:13] == b"mrtrix tracks",
    ),
    (
        (".gii", ".gii.gz", ".gii.bz2"),
        "a GIFTI surface file",
        "nibabel.load (voxray reads volumes; GIFTI holds surfaces and their data)",
        lambda head: head.lstrip()[:5] == b"<?xml" and b"<GIFTI" in head,
    ),
    (
        (".dcm", ".dcm.gz", ".ima"),
        "a DICOM file",
        "dcm2niix (to convert the series to NIfTI), or pydicom / nibabel.nicom",
        lambda head: head[128:132] == b"DICM",
    ),
)


def _out_of_scope(name: str, head: bytes | None) -> None:
    bare = name.rstrip("/").lower().split("?", 1)[0]
    for suffixes, what, reader, test in OUT_OF_SCOPE:
        if bare.endswith(suffixes) or (head is not None and test(head)):
            raise UnsupportedFormatError(
                f"{name!r} is {what}, which voxray does not read (it reads volumetric "
                f"images); use {reader}"
            )


def find_format(filename: str, *, sniff: bool = True) -> formats.Format:
    """The format of ``filename``: by suffix (or a directory format's own test), else by
    the first bytes of a local file."""
    name = os.fspath(filename)
    _out_of_scope(name, None)
    for fmt in formats.formats():
        if fmt.is_directory and fmt.claims(name):
            return fmt
    fmt = formats.for_filename(name)
    if fmt is not None:
        return fmt
    if sniff and not is_url(name):
        head = _sniff(name.removeprefix("file://"))
        _out_of_scope(name, head)  # first: a DICOM preamble may start like a NIfTI header
        fmt = formats.for_header_bytes(head)
        if fmt is not None:
            return fmt
    known = ", ".join(
        s
        for f in formats.formats()
        if sniff or f.writes
        for s in f.suffixes
        if not s.endswith((".bz2", ".zst"))
    )
    from nibabel.filename_parser import splitext_addext

    suffix = splitext_addext(name.rstrip("/"), (".gz", ".bz2", ".zst"))[1]
    how, verb = (
        ("suffix {!r} or from its first bytes", "reads") if sniff else ("suffix {!r}", "writes")
    )
    raise NotAnImageError(
        f"{name!r}: cannot work out the file type from the {how.format(suffix)}; voxray "
        f"{verb} {known}"
    )


def load(filename, chunks="auto", storage_options=None, **kwargs) -> Image:
    """Open an image lazily: the header is read, the data stays where it is.

    Parameters
    ----------
    filename : str or os.PathLike
        ``.nii``, ``.nii.gz``, NIfTI-2, a pair or Analyze image given by either
        its ``.hdr`` or ``.img`` name (optionally gzipped), a ``.nii.zarr`` store,
        or any of these as an fsspec URL (``s3://``, ``gs://``, ``https://``...):
        remote objects are read by byte ranges.
    chunks : "auto", int, tuple or dict
        Chunks of :meth:`Image.to_dask`; ``"auto"`` gives contiguous slabs
        along the slowest axes of at most 64 MiB; anything ``dask.array``
        accepts works.
    storage_options : dict, optional
        fsspec options for remote URLs (and Zarr stores).
    **kwargs
        Format options, e.g. ``level=`` (pyramid level) for a Zarr store.

    Returns
    -------
    Image
        An instance of the voxray subclass of the nibabel class nibabel would return
        (``voxray.Nifti1Image`` is a ``nibabel.Nifti1Image``).

    Examples
    --------
    >>> import voxray as vx, nibabel as nib
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "example4d.nii.gz")
    >>> type(img).__name__, isinstance(img, nib.Nifti1Image)
    ('Nifti1Image', True)
    >>> img.shape, img.get_data_dtype().name, img.in_memory
    ((128, 96, 24, 2), 'int16', False)
    """
    filename = os.fspath(filename)
    fmt = find_format(filename)
    return fmt.open(filename, chunks=chunks, storage_options=storage_options, **kwargs)


def save(img, filename, **kwargs) -> None:
    """Write an image (voxray or nibabel) or a DataArray out of core; the format comes
    from the suffix: ``.nii``, ``.nii.gz``, ``.hdr``/``.img`` (NIfTI family, see
    :func:`voxray.formats.nifti.write.save`) or ``.nii.zarr`` / ``.zarr``
    (:func:`voxray.to_zarr`)."""
    filename = os.fspath(filename)
    fmt = find_format(filename, sniff=False)
    if isinstance(img, Image) and type(img).format is fmt:
        img.to_filename(filename, **kwargs)  # as nibabel.save: file_map follows the file
    else:
        fmt.save(img, filename, **kwargs)


def to_zarr(img_or_path, store, **kwargs) -> str:
    """Write an image (or image file) as OME-Zarr 0.5 / NIfTI-Zarr, out of core, with a
    pyramid; see :func:`voxray.formats.zarr.writer.to_zarr`."""
    from .formats.zarr.writer import to_zarr as _to_zarr

    if isinstance(img_or_path, str | os.PathLike):
        img_or_path = load(img_or_path)
    return _to_zarr(img_or_path, store, **kwargs)
