"""A thin ctypes binding to zlib's streaming inflate, for random access into gzip.

Python's ``zlib`` module cannot stop at deflate block boundaries (``Z_BLOCK``),
report the bit position there, or start a raw stream at a bit offset
(``inflatePrime``): the three things a seek-point index needs (see zlib's
``examples/zran.c``). This module calls them directly.

It prefers zlib-ng (the ``zlib-ng`` wheel exports its native ``zng_*`` API;
its inflate runs about twice as fast as classic zlib here) and falls back to
the system zlib. ctypes releases the GIL for each call, so threads inflate in
parallel. Output goes straight into caller-owned memory (numpy arrays, bytearrays):
no intermediate ``bytes``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

__all__ = [
    "Z_BLOCK",
    "Z_BUF_ERROR",
    "Z_DATA_ERROR",
    "Z_NO_FLUSH",
    "Z_OK",
    "Z_STREAM_END",
    "Inflater",
    "address",
    "backend",
    "crc32",
    "crc32_at",
]

Z_NO_FLUSH = 0
Z_BLOCK = 5
Z_OK = 0
Z_STREAM_END = 1
Z_NEED_DICT = 2
Z_STREAM_ERROR = -2
Z_DATA_ERROR = -3
Z_MEM_ERROR = -4
Z_BUF_ERROR = -5

_UINT_MAX = 0xFFFFFFFF


class _ZngStream(ctypes.Structure):
    """zlib-ng's native ``zng_stream`` (``zlib-ng.h``)."""

    _fields_ = [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint32),
        ("total_in", ctypes.c_size_t),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint32),
        ("total_out", ctypes.c_size_t),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_uint32),
        ("reserved", ctypes.c_ulong),
    ]


class _ZStream(ctypes.Structure):
    """Classic zlib's ``z_stream`` (``zlib.h``)."""

    _fields_ = [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint),
        ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint),
        ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_ulong),
        ("reserved", ctypes.c_ulong),
    ]


@dataclass(frozen=True)
class _Backend:
    name: str
    lib: ctypes.CDLL
    stream: type[ctypes.Structure]
    prefix: str

    def fn(self, name: str):
        return getattr(self.lib, self.prefix + name)


def _declare(b: _Backend) -> _Backend:
    p = ctypes.POINTER(b.stream)
    for name, args in [
        ("inflate", [p, ctypes.c_int]),
        ("inflateEnd", [p]),
        ("inflatePrime", [p, ctypes.c_int, ctypes.c_int]),
        ("inflateSetDictionary", [p, ctypes.c_void_p, ctypes.c_uint]),
        ("inflateGetDictionary", [p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]),
        ("inflateReset2", [p, ctypes.c_int]),
    ]:
        f = b.fn(name)
        f.argtypes = args
        f.restype = ctypes.c_int
    crc = b.fn("crc32")
    crc.argtypes = [
        ctypes.c_uint32 if b.prefix else ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_uint,
    ]
    crc.restype = ctypes.c_uint32 if b.prefix else ctypes.c_ulong
    if b.prefix:
        b.fn("inflateInit2").argtypes = [p, ctypes.c_int]
        b.fn("inflateInit2").restype = ctypes.c_int
    else:
        b.fn("inflateInit2_").argtypes = [p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        b.fn("inflateInit2_").restype = ctypes.c_int
        b.fn("zlibVersion").restype = ctypes.c_char_p
    return b


def _load() -> _Backend:
    try:
        from zlib_ng import zlib_ng

        lib = ctypes.CDLL(zlib_ng.__file__)
        lib.zng_inflatePrime  # noqa: B018 - the symbols must be exported
        lib.zng_inflateGetDictionary  # noqa: B018
        return _declare(_Backend(f"zlib-ng {zlib_ng.ZLIBNG_VERSION}", lib, _ZngStream, "zng_"))
    except (ImportError, OSError, AttributeError):
        pass
    path = ctypes.util.find_library("z") or "libz.so.1"
    lib = ctypes.CDLL(path)
    b = _declare(_Backend("zlib", lib, _ZStream, ""))
    return _Backend(f"zlib {b.fn('zlibVersion')().decode()}", lib, _ZStream, "")


_BACKEND: _Backend | None = None
_BACKEND_LOCK = threading.Lock()


def backend() -> _Backend:
    """The inflate library in use (loaded on first use)."""
    global _BACKEND
    if _BACKEND is None:
        with _BACKEND_LOCK:
            if _BACKEND is None:
                _BACKEND = _load()
    return _BACKEND


def address(buf) -> int:
    """Address of a writable (or read-only bytes) buffer's first byte."""
    if isinstance(buf, bytes):
        return ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0
    mv = memoryview(buf)
    if mv.readonly:
        raise TypeError("need a writable buffer or bytes")
    if mv.nbytes == 0:
        return 0
    return ctypes.addressof(ctypes.c_char.from_buffer(mv.cast("B")))


def crc32(buf, value: int = 0) -> int:
    """CRC-32 (gzip's) of a buffer, continuing from ``value``; releases the GIL."""
    mv = memoryview(buf).cast("B")
    if mv.readonly:
        import zlib

        return zlib.crc32(mv, value)
    return crc32_at(address(buf), mv.nbytes, value)


def crc32_at(addr: int, n: int, value: int = 0) -> int:
    """CRC-32 of ``n`` bytes at address ``addr``, continuing from ``value``."""
    fn = backend().fn("crc32")
    pos = 0
    while pos < n:
        m = min(n - pos, 1 << 30)
        value = fn(value, addr + pos, m)
        pos += m
    return value & _UINT_MAX


class Inflater:
    """One inflate stream (gzip, zlib or raw deflate, by ``wbits`` as in zlib).

    Input and output are raw addresses with lengths, so callers inflate
    straight from and into their own buffers; they must keep those buffers
    alive while the call runs.
    """

    __slots__ = ("_b", "_inflate", "_strm")

    def __init__(self, wbits: int):
        self._b = b = backend()
        self._strm = b.stream()
        self._inflate = b.fn("inflate")
        if b.prefix:
            ret = b.fn("inflateInit2")(ctypes.byref(self._strm), wbits)
        else:
            ret = b.fn("inflateInit2_")(
                ctypes.byref(self._strm), wbits, b.fn("zlibVersion")(), ctypes.sizeof(b.stream)
            )
        if ret != Z_OK:
            raise MemoryError(f"inflateInit2 failed ({ret})")

    def close(self) -> None:
        if self._strm is not None:
            self._b.fn("inflateEnd")(ctypes.byref(self._strm))
            self._strm = None

    def __del__(self):
        self.close()

    def reset(self, wbits: int) -> None:
        ret = self._b.fn("inflateReset2")(ctypes.byref(self._strm), wbits)
        if ret != Z_OK:
            raise ValueError(f"inflateReset2 failed ({ret})")

    def prime(self, bits: int, value: int) -> None:
        """Insert ``bits`` bits of ``value`` ahead of the input (a stream starting mid-byte)."""
        ret = self._b.fn("inflatePrime")(ctypes.byref(self._strm), bits, value)
        if ret != Z_OK:
            raise ValueError(f"inflatePrime failed ({ret})")

    def set_dictionary(self, window: bytes) -> None:
        if not window:
            return
        ret = self._b.fn("inflateSetDictionary")(ctypes.byref(self._strm), window, len(window))
        if ret != Z_OK:
            raise ValueError(f"inflateSetDictionary failed ({ret})")

    def get_dictionary(self) -> bytes:
        """The sliding window: the last (up to) 32 KiB of output."""
        buf = ctypes.create_string_buffer(32768)
        n = ctypes.c_uint(0)
        ret = self._b.fn("inflateGetDictionary")(ctypes.byref(self._strm), buf, ctypes.byref(n))
        if ret != Z_OK:
            raise ValueError(f"inflateGetDictionary failed ({ret})")
        return buf.raw[: n.value]

    @property
    def check_value(self) -> int:
        """The running check of the output so far (CRC-32 in gzip mode)."""
        return int(self._strm.adler) & _UINT_MAX

    @property
    def message(self) -> str:
        msg = self._strm.msg
        return msg.decode(errors="replace") if msg else "invalid data"

    def inflate(
        self, in_addr: int, in_len: int, out_addr: int, out_len: int, flush: int
    ) -> tuple[int, int, int, int]:
        """One ``inflate`` call: ``(ret, consumed, produced, data_type)``."""
        s = self._strm
        in_len = min(in_len, _UINT_MAX)
        out_len = min(out_len, _UINT_MAX)
        s.next_in, s.avail_in = in_addr, in_len
        s.next_out, s.avail_out = out_addr, out_len
        ret = self._inflate(ctypes.byref(s), flush)
        return ret, in_len - s.avail_in, out_len - s.avail_out, s.data_type
