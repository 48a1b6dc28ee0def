"""The header of a netCDF classic file (MINC1's container), parsed without reading data.

nibabel's ``netcdf_file`` (``nibabel.externals.netcdf``) reads every
non-record variable into memory when it opens a file object, the image
included, and memory-maps only local files. voxray needs the header alone
(dimensions, attributes, and where each variable's bytes start), so this
module parses exactly the header part of the format
(https://docs.unidata.ucar.edu/netcdf-c/current/file_format_specifications.html)
and gives attribute values the types nibabel's ``netcdf_file`` gives them
(``bytes`` for text, a big-endian numpy scalar or array otherwise), so
nibabel's ``Minc1File`` reads them as it reads its own.

:func:`parse_header` is pure: it takes the first bytes of the file and raises
:class:`NeedMoreBytes` when the header runs past them, so the caller reads a
longer prefix and tries again.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NcHeader", "NcVariable", "NeedMoreBytes", "NetcdfError", "parse_header"]

#: nc_type -> (nibabel's typecode, item size in bytes)
TYPES = {1: ("b", 1), 2: ("c", 1), 3: ("h", 2), 4: ("i", 4), 5: ("f", 4), 6: ("d", 8)}
_DIMENSION, _VARIABLE, _ATTRIBUTE = 10, 11, 12


class NetcdfError(ValueError):
    """The bytes are not a valid netCDF classic header."""


class NeedMoreBytes(Exception):
    """The header continues past the bytes given; ``needed`` is a lower bound."""

    def __init__(self, needed: int):
        super().__init__(needed)
        self.needed = needed


@dataclass(frozen=True)
class NcVariable:
    """One variable: its dimensions, attributes and where its values sit.

    For a record variable (first dimension unlimited) ``shape[0]`` is the number
    of records and each record's ``vsize`` bytes start at ``begin + r * recsize``.
    """

    name: str
    dimensions: tuple[str, ...]
    shape: tuple[int, ...]
    typecode: str
    itemsize: int
    attributes: dict = field(compare=False)
    begin: int
    vsize: int
    is_record: bool

    @property
    def dtype(self) -> np.dtype:
        """The stored (big-endian) dtype; text (``'c'``) as one-byte strings."""
        return np.dtype("S1" if self.typecode == "c" else f">{self.typecode}")

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.itemsize


@dataclass(frozen=True)
class NcHeader:
    """A parsed header: version (1 classic, 2 64-bit offsets), records, dims, variables."""

    version: int
    numrecs: int
    dimensions: dict
    attributes: dict
    variables: dict
    recsize: int
    header_size: int


class _Cursor:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise NeedMoreBytes(end)
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def int32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def count(self, what: str) -> int:
        n = self.int32()
        if n < 0:
            raise NetcdfError(f"negative {what} count {n}")
        return n

    def name(self) -> str:
        n = self.count("name length")
        raw = self.take(n)
        self.take(-n % 4)
        return raw.rstrip(b"\x00").decode("latin1")

    def nc_type(self) -> tuple[str, int]:
        code = self.int32()
        if code not in TYPES:
            raise NetcdfError(f"unknown nc_type {code} at byte {self.pos - 4}")
        return TYPES[code]


def _list_tag(cur: _Cursor, tag: int, what: str) -> int:
    kind = cur.int32()
    n = cur.count(what)
    if kind == 0 and n == 0:
        return 0
    if kind != tag:
        raise NetcdfError(f"expected the {what} list tag {tag} at byte {cur.pos - 8}, got {kind}")
    return n


def _attributes(cur: _Cursor) -> dict:
    out = {}
    for _ in range(_list_tag(cur, _ATTRIBUTE, "attribute")):
        name = cur.name()
        typecode, size = cur.nc_type()
        n = cur.count("attribute value")
        raw = cur.take(n * size)
        cur.take(-(n * size) % 4)
        if typecode == "c":  # as nibabel's netcdf_file: text is bytes, scalars unwrapped
            out[name] = raw.rstrip(b"\x00")
        else:
            values = np.frombuffer(raw, dtype=f">{typecode}").copy()
            out[name] = values[0] if values.shape == (1,) else values
    return out


def parse_header(buf: bytes) -> NcHeader:
    """Parse the netCDF classic header at the start of ``buf``.

    Raises :class:`NeedMoreBytes` if ``buf`` ends inside the header and
    :class:`NetcdfError` if the bytes are not a netCDF classic header.

    Examples
    --------
    >>> import io, numpy as np
    >>> from nibabel.externals.netcdf import netcdf_file
    >>> bio = io.BytesIO()
    >>> f = netcdf_file(bio, "w")
    >>> f.createDimension("x", 3)
    >>> v = f.createVariable("image", "h", ("x",))
    >>> v[:] = [1, 2, 3]; v.signtype = b"signed__"
    >>> f.flush()
    >>> hdr = parse_header(bio.getvalue())
    >>> var = hdr.variables["image"]
    >>> var.shape, var.dtype.str, var.attributes["signtype"]
    ((3,), '>i2', b'signed__')
    >>> np.frombuffer(bio.getvalue()[var.begin : var.begin + var.nbytes], var.dtype).tolist()
    [1, 2, 3]
    """
    cur = _Cursor(buf)
    magic = cur.take(4)
    if magic[:3] != b"CDF" or magic[3] not in (1, 2):
        raise NetcdfError(f"not a netCDF classic file (first bytes {magic!r})")
    version = magic[3]
    numrecs = cur.uint32()
    streaming = numrecs == 0xFFFFFFFF  # not closed: fine while nothing uses records
    if streaming:
        numrecs = 0
    dims: dict[str, int | None] = {}
    names: list[str] = []
    for _ in range(_list_tag(cur, _DIMENSION, "dimension")):
        name = cur.name()
        length = cur.count("dimension length")
        dims[name] = length or None  # 0: the record (unlimited) dimension
        names.append(name)
    attributes = _attributes(cur)
    variables: dict[str, NcVariable] = {}
    recsize = 0
    for _ in range(_list_tag(cur, _VARIABLE, "variable")):
        name = cur.name()
        ids = [cur.int32() for _ in range(cur.count("dimension id"))]
        if any(not 0 <= i < len(names) for i in ids):
            raise NetcdfError(f"variable {name!r} names dimension ids {ids}, of {len(names)}")
        vdims = tuple(names[i] for i in ids)
        vattrs = _attributes(cur)
        typecode, size = cur.nc_type()
        vsize = cur.uint32()
        begin = cur.int32() if version == 1 else struct.unpack(">q", cur.take(8))[0]
        if begin < 0:
            raise NetcdfError(f"variable {name!r} starts at a negative offset {begin}")
        is_record = bool(vdims) and dims[vdims[0]] is None
        shape = tuple(numrecs if dims[d] is None else dims[d] for d in vdims)
        if any(dims[d] is None for d in vdims[1:]):
            raise NetcdfError(f"variable {name!r}: only its first dimension may be unlimited")
        if is_record:
            if streaming:
                raise NetcdfError(
                    f"record variable {name!r}, but the record count is 'streaming' (the "
                    f"file was not closed)"
                )
            recsize += vsize
        variables[name] = NcVariable(
            name, vdims, shape, typecode, size, vattrs, begin, vsize, is_record
        )
    rec_vars = [v for v in variables.values() if v.is_record]
    if len(rec_vars) == 1:  # one record variable: records are not padded (netCDF spec)
        recsize = math.prod(rec_vars[0].shape[1:]) * rec_vars[0].itemsize
    return NcHeader(version, numrecs, dims, attributes, variables, recsize, cur.pos)
