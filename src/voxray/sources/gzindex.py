"""Seek-point index of a gzip stream (zran style), and its on-disk form.

A seek point records, at a deflate block boundary, the decompressed offset
``out``, the compressed offset ``inp`` of the first whole byte after the
boundary, the number of ``bits`` of the byte before it that belong to the next
block, and the 32 KiB ``window`` of output that the next block may refer back
to. Inflating from a point needs only the compressed bytes from ``inp - 1`` on:
any range of the file becomes readable after one pass.

The first block of every gzip member is a point with an empty window (members
are independent), so a file written as many small members (pigz, bgzip,
voxray's own writer) is indexed without storing any windows.

Windows are kept zlib-compressed in memory and on disk. The file format is
``magic, version, JSON header (identity, sizes, spacing), arrays, CRC-32``;
a bad checksum, a different version or a different identity makes the index
invalid, and it is rebuilt, never trusted.
"""

from __future__ import annotations

import json
import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right

import numpy as np

try:  # zlib-ng compresses the 32 KiB windows about 2.5x faster than zlib at level 1
    from zlib_ng.zlib_ng import compress as _compress
except ImportError:  # pragma: no cover - zlib-ng is a dependency
    from zlib import compress as _compress

__all__ = [
    "DEFAULT_SPACING",
    "WINDOW",
    "GzipIndex",
    "IndexFormatError",
    "index_from_members",
    "parse_trailer",
    "spacing_for",
    "trailer_member",
]

WINDOW = 32768
#: Largest distance between seek points, in decompressed bytes.
DEFAULT_SPACING = 4 * 2**20
#: Smallest distance between seek points.
MIN_SPACING = 256 * 1024


def spacing_for(compressed_size: int) -> int:
    """Seek-point spacing for a file: about 1000 points, 256 KiB to 4 MiB apart.

    A read inflates half a spacing on average before reaching its data; each
    point costs a 32 KiB window (about 16 KiB compressed). Decompressed size is
    estimated as three times the compressed size.

    >>> spacing_for(10 * 2**20), spacing_for(320 * 2**20), spacing_for(10 * 2**30)
    (262144, 1048576, 4194304)
    """
    target = 3 * compressed_size // 1024
    spacing = MIN_SPACING
    while spacing < target and spacing < DEFAULT_SPACING:
        spacing *= 2
    return spacing


_MAGIC = b"VXGZIDX\x00"
_VERSION = 1


class IndexFormatError(ValueError):
    """A stored index is damaged, of another version, or for another file."""


class GzipIndex:
    """Seek points into one gzip file, growing while the first pass runs.

    ``frontier_out``/``frontier_in`` mark how far the pass has gone: every
    decompressed byte before ``frontier_out`` is reachable from a point.
    ``uncompressed_size`` is set when the pass reaches the end of the file.
    """

    def __init__(self, compressed_size: int, spacing: int | None = None):
        self.compressed_size = int(compressed_size)
        self.spacing = int(spacing or spacing_for(compressed_size))
        self.out = array("q")
        self.inp = array("q")
        self.bits = array("B")
        self._windows: list[bytes] = []
        self.members = 0
        self.frontier_out = 0
        self.frontier_in = 0
        self.uncompressed_size: int | None = None

    def __len__(self) -> int:
        return len(self.out)

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"built to {self.frontier_out} bytes"
        return (
            f"<GzipIndex {len(self)} points, {state}, spacing {self.spacing}, {self.nbytes} bytes>"
        )

    @property
    def complete(self) -> bool:
        return self.uncompressed_size is not None

    @property
    def nbytes(self) -> int:
        """Memory held by the index (compressed windows plus arrays)."""
        return sum(len(self._compressed(i)) for i in range(len(self))) + len(self) * 17

    def add(self, out: int, inp: int, bits: int, window: bytes, compress=None) -> None:
        """Record a point. ``compress(fn, window)`` may run the window's compression
        elsewhere and return a future (the build pass hands it to the idle I/O pool)."""
        self.out.append(out)
        self.inp.append(inp)
        self.bits.append(bits)
        if not window:
            self._windows.append(b"")
        elif compress is not None:
            self._windows.append(compress(_compress, window, 1))
        else:
            self._windows.append(_compress(window, 1))

    def _compressed(self, i: int) -> bytes:
        w = self._windows[i]
        if hasattr(w, "result"):  # a future from an asynchronous compression
            w = self._windows[i] = w.result()
        return w

    def window(self, i: int) -> bytes:
        w = self._compressed(i)
        return zlib.decompress(w) if w else b""

    def locate(self, offset: int) -> int:
        """Index of the last point at or before decompressed ``offset``."""
        i = bisect_right(self.out, offset) - 1
        if i < 0:
            raise IndexError(f"no seek point before offset {offset}")
        return i

    def bound(self, stop: int) -> int:
        """Compressed offset up to which input is needed to decompress up to ``stop``."""
        j = bisect_left(self.out, stop)
        if j < len(self):
            end = self.inp[j]
        elif self.complete:
            end = self.compressed_size
        else:
            end = self.frontier_in
        return min(self.compressed_size, end + 8)

    def estimate(self, stop: int, margin: int = 16 * 1024) -> int:
        """Compressed offset that probably suffices to decompress up to ``stop``:
        interpolated between the points around it, plus a margin (at most ``bound``).

        Readers that pay per byte (object storage) fetch this much first and the
        rest of the way to ``bound`` only if the estimate fell short.
        """
        bound = self.bound(stop)
        j = bisect_left(self.out, stop)
        if j == 0:
            return bound
        if j < len(self):
            o1, i1 = self.out[j], self.inp[j]
        elif self.complete:
            o1, i1 = self.uncompressed_size, self.compressed_size
        else:
            return bound
        o0, i0 = self.out[j - 1], self.inp[j - 1]
        if o1 <= o0:
            return bound
        guess = i0 + (stop - o0) * (i1 - i0) / (o1 - o0)
        return min(bound, int(guess + margin + 0.03 * (guess - i0)))

    # -- on-disk form ------------------------------------------------------

    def to_bytes(self, identity: dict) -> bytes:
        if not self.complete:
            raise ValueError("only a complete index is stored")
        head = json.dumps(
            {
                "identity": identity,
                "compressed_size": self.compressed_size,
                "uncompressed_size": self.uncompressed_size,
                "spacing": self.spacing,
                "members": self.members,
                "points": len(self),
            },
            sort_keys=True,
        ).encode()
        windows = [self._compressed(i) for i in range(len(self))]
        lengths = array("I", (len(w) for w in windows))
        body = b"".join(
            [
                _MAGIC,
                struct.pack("<HI", _VERSION, len(head)),
                head,
                np.frombuffer(self.out, np.int64).astype("<i8").tobytes(),
                np.frombuffer(self.inp, np.int64).astype("<i8").tobytes(),
                bytes(self.bits),
                np.frombuffer(lengths, np.uint32).astype("<u4").tobytes(),
                *windows,
            ]
        )
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, identity: dict | None = None) -> GzipIndex:
        """Parse a stored index; raise :class:`IndexFormatError` unless it is intact and
        (when ``identity`` is given) made for the same file."""
        if len(data) < len(_MAGIC) + 10 or not bytes(data[: len(_MAGIC)]) == _MAGIC:
            raise IndexFormatError("not a voxray gzip index")
        # Windows stay views into ``data`` (no copies: an index can be tens of MB).
        body, (crc,) = memoryview(data)[:-4], struct.unpack("<I", data[-4:])
        if zlib.crc32(body) != crc:
            raise IndexFormatError("checksum mismatch: the index file is damaged")
        pos = len(_MAGIC)
        version, hlen = struct.unpack_from("<HI", body, pos)
        if version != _VERSION:
            raise IndexFormatError(f"index version {version}, expected {_VERSION}")
        pos += 6
        head = json.loads(bytes(body[pos : pos + hlen]))
        pos += hlen
        if identity is not None and head["identity"] != identity:
            raise IndexFormatError(
                f"index was made for {head['identity']!r}, not {identity!r} (the file changed)"
            )
        n = head["points"]
        idx = cls(head["compressed_size"], head["spacing"])
        try:
            out = np.frombuffer(body, "<i8", n, pos)
            pos += 8 * n
            inp = np.frombuffer(body, "<i8", n, pos)
            pos += 8 * n
            bits = bytes(body[pos : pos + n])
            pos += n
            lengths = np.frombuffer(body, "<u4", n, pos)
            pos += 4 * n
        except ValueError as e:
            raise IndexFormatError(f"index is truncated: {e}") from None
        idx.out.extend(int(v) for v in out)
        idx.inp.extend(int(v) for v in inp)
        idx.bits.extend(bits)
        for length in lengths.tolist():
            idx._windows.append(body[pos : pos + length])
            pos += length
        if pos != len(body) or len(idx.bits) != n:
            raise IndexFormatError("index length does not match its header")
        if n and (np.any(np.diff(out) < 0) or np.any(np.diff(inp) < 0) or out[0] != 0):
            raise IndexFormatError("index points are not in order")
        idx.members = head["members"]
        idx.uncompressed_size = head["uncompressed_size"]
        idx.frontier_out = idx.uncompressed_size
        idx.frontier_in = idx.compressed_size
        return idx


# -- the trailer index voxray's writer appends to its .nii.gz files ------------------
#
# An empty gzip member whose header's FEXTRA field (subfield "VX") lists every
# member's compressed and decompressed size. gzip readers skip it (it holds no
# data); voxray finds it in the last 64 KiB and gets a complete index without a
# pass, without a cache, and (for remote files) in one range request.

_TRAILER_MAGIC = b"VXGZ"
_TRAILER_VERSION = 1
_EMPTY_DEFLATE = b"\x03\x00"  # a final, empty, fixed-Huffman block
#: Most members one trailer can list (its FEXTRA field holds at most 65535 bytes).
MAX_TRAILER_MEMBERS = 8000
#: Length of the gzip header zlib writes (no name, comment or extra field).
PLAIN_GZIP_HEADER = 10


def trailer_member(comp_sizes, raw_sizes) -> bytes:
    """The empty gzip member that indexes the members before it."""
    n = len(comp_sizes)
    if n != len(raw_sizes) or n > MAX_TRAILER_MEMBERS:
        raise ValueError(f"cannot index {n} members in one trailer")
    table = np.asarray(comp_sizes, "<u8").tobytes() + np.asarray(raw_sizes, "<u8").tobytes()
    data = _TRAILER_MAGIC + struct.pack("<BI", _TRAILER_VERSION, n) + table
    data += struct.pack("<I", zlib.crc32(data))
    sub = b"VX" + struct.pack("<H", len(data)) + data
    if len(sub) > 0xFFFF:
        raise ValueError("trailer too large")
    head = b"\x1f\x8b\x08\x04" + b"\x00\x00\x00\x00" + b"\x00\xff" + struct.pack("<H", len(sub))
    return head + sub + _EMPTY_DEFLATE + b"\x00" * 8


def index_from_members(
    comp_sizes, raw_sizes, header_len: int = PLAIN_GZIP_HEADER, compressed_size: int | None = None
) -> GzipIndex:
    """A complete index whose points are the member starts (no windows needed)."""
    comp = np.asarray(comp_sizes, np.int64)
    raw = np.asarray(raw_sizes, np.int64)
    total = int(compressed_size if compressed_size is not None else comp.sum())
    idx = GzipIndex(total, max(int(raw.max(initial=0)), MIN_SPACING))
    comp_start = np.concatenate(([0], np.cumsum(comp)[:-1]))
    raw_start = np.concatenate(([0], np.cumsum(raw)[:-1]))
    for c, r, n in zip(comp_start.tolist(), raw_start.tolist(), raw.tolist()):
        if n:
            idx.add(r, c + header_len, 0, b"")
    idx.members = len(comp)
    idx.uncompressed_size = int(raw.sum())
    idx.frontier_out = idx.uncompressed_size
    idx.frontier_in = total
    return idx


def parse_trailer(tail: bytes, file_size: int) -> GzipIndex | None:
    """The index in a trailer member at the very end of ``tail`` (the file's last bytes)."""
    end = len(tail)
    if end < 40 or tail[-10:] != _EMPTY_DEFLATE + b"\x00" * 8:
        return None
    # The member is header(10) + XLEN(2) + subfield; find it by its announced length.
    pos = tail.rfind(b"\x1f\x8b\x08\x04", 0, end - 10)
    while pos >= 0:
        if tail[pos + 12 : pos + 14] == b"VX":
            (xlen,) = struct.unpack_from("<H", tail, pos + 10)
            (sublen,) = struct.unpack_from("<H", tail, pos + 14)
            if pos + 12 + xlen + 10 == end and xlen == sublen + 4:
                data = tail[pos + 16 : pos + 16 + sublen]
                return _trailer_index(data, file_size, file_size - (end - pos))
        pos = tail.rfind(b"\x1f\x8b\x08\x04", 0, pos)
    return None


def _trailer_index(data: bytes, file_size: int, data_end: int) -> GzipIndex | None:
    if len(data) < 13 or not data.startswith(_TRAILER_MAGIC):
        return None
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        return None
    version, n = struct.unpack_from("<BI", body, 4)
    if version != _TRAILER_VERSION or len(body) != 9 + 16 * n:
        return None
    comp = np.frombuffer(body, "<u8", n, 9).astype(np.int64)
    raw = np.frombuffer(body, "<u8", n, 9 + 8 * n).astype(np.int64)
    if int(comp.sum()) != data_end:
        return None  # not the members of this file: ignore, never trust
    return index_from_members(comp, raw, compressed_size=file_size)
