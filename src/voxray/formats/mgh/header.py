"""From an MGH/MGZ source to nibabel's ``MGHHeader`` and an :class:`ArrayLayout`.

An MGH file is a 284-byte header (of which nibabel parses the first 90: version,
dims, type, dof, goodRASFlag, delta, Mdc, Pxyz_c), the data (big-endian,
Fortran order, ``prod(dims) * bytes per voxel``), then an optional footer: five
big-endian float32 (TR, flip angle, TE, TI, FoV) and FreeSurfer's tags. nibabel
reads the 90 header bytes and the 20 footer bytes after the data (nothing of
the tags) into one ``MGHHeader``; this module reads exactly those two byte
ranges through voxray's sources (a plain file, a ``.mgz`` through the gzip seek
index, a URL by HTTP ranges, a file object) and hands them to nibabel.

Every size the header claims is checked against the source before anything is
allocated: dims must be positive, the type code one nibabel knows, and the data
must fit in the file (in a gzip stream, within what deflate can expand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.freesurfer.mghformat import DATA_OFFSET, MGHError, MGHHeader, data_type_codes
from nibabel.spatialimages import HeaderDataError

from ...errors import (
    InvalidHeaderError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedDataTypeError,
    VoxrayError,
)
from ...reader import ArrayLayout
from ...sources import open_source

__all__ = [
    "DATA_OFFSET",
    "FOOTER_SIZE",
    "HEADER_SIZE",
    "MGHInfo",
    "looks_like_mgh",
    "read_header",
]

#: Bytes of the header nibabel parses (the rest of the 284 is unused).
HEADER_SIZE = MGHHeader._hdrdtype.itemsize
#: Bytes of the fixed footer after the data (TR, flip angle, TE, TI, FoV).
FOOTER_SIZE = MGHHeader._ftrdtype.itemsize
#: Type codes nibabel reads (uint8, int32, float32, int16, uint16).
TYPE_CODES = tuple(int(c) for c in data_type_codes.value_set("code"))
#: A dimension larger than this is not a plausible MGH volume (sniffing only).
SNIFF_MAX_DIM = 2**20
#: deflate cannot expand data more than ~1032:1; a header claiming more is lying.
MAX_DEFLATE_RATIO = 1032


@dataclass
class MGHInfo:
    """What reading an MGH header found: nibabel's header and where the data is."""

    header: MGHHeader
    spec: object
    layout: ArrayLayout

    @property
    def affine(self) -> np.ndarray:
        return self.header.get_affine()


def _fields(head: bytes) -> tuple[int, tuple[int, ...], int]:
    """(version, dims, type code) of the first header bytes."""
    arr = np.frombuffer(head[:24], dtype=">i4")
    return int(arr[0]), tuple(int(d) for d in arr[1:5]), int(arr[5])


def looks_like_mgh(head: bytes) -> bool:
    """Whether the first (decompressed) bytes are an MGH header: version 1 (big-endian
    int32), four positive dims of plausible size, a known type code, goodRASFlag 0 or 1.

    A NIfTI or Analyze header starts with 348 (or 540) in either byte order, never 1.

    >>> import numpy as np
    >>> head = np.array([1, 4, 5, 6, 1, 3, 0], ">i4").tobytes() + b"\\x00\\x01"
    >>> looks_like_mgh(head), looks_like_mgh((348).to_bytes(4, "little") + head[4:])
    (True, False)
    """
    if len(head) < 30:
        return False
    version, dims, code = _fields(head)
    good_ras = int.from_bytes(head[28:30], "big", signed=True)
    return (
        version == 1
        and all(0 < d <= SNIFF_MAX_DIM for d in dims)
        and code in TYPE_CODES
        and good_ras in (0, 1)
    )


def _read_footer(src, offset: int, name: str) -> bytes:
    """The footer bytes nibabel reads after the data: up to 20, fewer (or none) when the
    file ends earlier; a file that ends inside the data is truncated."""
    size = src.size
    if size is None:  # a gzip stream not yet indexed: the read runs the build pass
        try:
            return src.read(offset, FOOTER_SIZE)
        except TruncatedFileError:
            size = src.size
            if size is None:
                raise
    if size < offset:
        raise TruncatedFileError(
            f"{name!r} holds {size} bytes, but its header describes data up to byte {offset}"
        )
    n = min(FOOTER_SIZE, size - offset)
    return src.read(offset, n) if n else b""


def read_header(spec, name: str | None = None) -> MGHInfo:
    """Parse the MGH header (and footer) of the source ``spec`` describes, with nibabel.

    Parameters
    ----------
    spec : source spec
        A :class:`~voxray.sources.LocalSpec` (gzip or not), a remote or file-object spec.
    name : str, optional
        The name errors give (default: the spec's).

    Returns
    -------
    MGHInfo
        nibabel's ``MGHHeader`` (footer included, exactly as ``nibabel.load`` has it),
        the spec and the data layout (big-endian, Fortran order, offset 284).

    Examples
    --------
    >>> from voxray.sources import local_spec
    >>> from voxray.testing import NIBABEL_DATA
    >>> info = read_header(local_spec(str(NIBABEL_DATA / "test.mgz")))
    >>> info.layout.shape, info.layout.dtype.str, float(info.header["tr"])
    ((3, 4, 5, 2), '>f4', 2.0)
    """
    name = name or spec.name
    src = open_source(spec)
    head = src.read_prefix(DATA_OFFSET)
    if len(head) < HEADER_SIZE:
        raise NotAnImageError(
            f"{name!r} has {len(head)} bytes: too short for an MGH header ({HEADER_SIZE} bytes "
            f"at least)"
        )
    version, dims, code = _fields(head)
    if version != 1:
        hint = " (it is gzip-compressed: name it .mgz)" if head[:2] == b"\x1f\x8b" else ""
        raise NotAnImageError(
            f"{name!r} is not an MGH file: its version field is {version!r}, expected 1{hint}"
        )
    if any(d <= 0 for d in dims):
        raise InvalidHeaderError(
            f"{name!r}: invalid MGH dimensions {dims!r}; every one must be positive"
        )
    if code not in TYPE_CODES:
        raise UnsupportedDataTypeError(
            f"{name!r}: MGH type code {code!r} is not one nibabel reads; valid codes are "
            f"{TYPE_CODES!r} (uint8, int32, float32, int16, uint16)"
        )
    dtype = np.dtype(data_type_codes.numpy_dtype[code])
    nbytes = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    end = DATA_OFFSET + nbytes
    if getattr(spec, "compression", None) == "gzip" and src.size is None:
        compressed = spec.size
        if compressed is not None and end > MAX_DEFLATE_RATIO * compressed:
            raise TruncatedFileError(
                f"{name!r}: the header describes {nbytes} bytes of data (dims {dims!r}, "
                f"{dtype}), but a gzip stream of {compressed} bytes holds at most "
                f"{MAX_DEFLATE_RATIO * compressed}"
            )
    elif src.size is not None and end > src.size:
        raise TruncatedFileError(
            f"{name!r} holds {src.size} bytes, but its header describes {nbytes} bytes of data "
            f"(dims {dims!r}, {dtype}) at offset {DATA_OFFSET}, ending at byte {end}"
        )
    footer = _read_footer(src, end, name)
    try:
        header = MGHHeader(head[:HEADER_SIZE] + footer, check=True)
    except (HeaderDataError, MGHError, ValueError) as e:
        if isinstance(e, VoxrayError):
            raise
        raise InvalidHeaderError(f"{name!r}: invalid MGH header: {e}") from None
    layout = ArrayLayout(header.get_data_shape(), dtype, DATA_OFFSET)
    return MGHInfo(header, spec, layout)
