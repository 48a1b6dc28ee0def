"""The first pass over a never-indexed gzip stream, on every core.

A deflate stream is a chain of blocks; each block may copy bytes from the 32 KiB
of output before it, so a block cannot be decoded without its predecessor's
output. The pass splits the compressed stream into chunks (:data:`CHUNK`
compressed bytes each) and decodes them *speculatively*, on the I/O pool:

1. **Find a block start.** Chunk ``k`` starts at the first dynamic-Huffman block
   header at or after compressed byte ``k * CHUNK``. Every bit offset of the
   first bytes is screened at once with numpy (block type, code-count limits, and
   a complete code-length code: Kraft's sum exactly 1), and the survivors are
   tried with zlib in order until one decodes a whole block and the next
   block's header without an error.
2. **Decode without the window.** The chunk is inflated from there with a
   window of zero bytes (dictionary ``D0``), to the first block boundary at or
   after where the next chunk begins, recording seek points on the way.
3. **Find where the window stops mattering.** The chunk's start is inflated a
   second time with a window of ``0xff`` bytes (``D1``). Every output byte is a
   literal or a copy; a copy chain that reaches into the unknown window gives 0
   under one dictionary and 0xff under the other, so the two outputs differ at
   exactly the window-dependent bytes. Once 32 KiB of output agree, the sliding
   windows (hence all later output) agree; everything from there on is exact.
   On real data that happens within a few KiB to a few hundred KiB.
4. **Resolve in order.** The caller's thread takes the chunks in stream order.
   A chunk whose start is where its predecessor's decode stopped (checked to the
   bit) gets its window-dependent prefix inflated again with the real window, in
   place; its bytes are then exact and go to the caller's buffers, its CRC-32 is
   combined into the member's, and its seek points get their windows. A chunk
   whose start was wrong (no block there, or a block the screen missed before
   it) is replaced by an ordinary serial inflate from the true position.

Everything is checked: the resolved stream's CRC-32 and length against the
member's trailer. Any error, a stream that ends early, a second gzip member or
a bad check stops the parallel pass with :class:`Fallback`; the caller then
runs the serial pass from the start, which raises the same error at the same
offset as it would have without this module (or, for a second member,
continues from the member's start).

The speculative decodes cost about 1.05 inflates of the data plus the screen;
on ``n`` cores the pass runs at up to ``n`` times one core's inflate speed,
less the caller thread's copies and checksums.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from . import _zlib

__all__ = ["CHUNK", "Fallback", "ParallelPass", "Point", "chunk_size", "find_block_starts"]

#: Compressed bytes per speculative chunk, at most (``VOXRAY_GZ_CHUNK`` sets it, for tests).
#: Each costs a block-start search (a few ms) and a window fix-up (about 1 MiB inflated
#: again on int16 images); a pass holds ``workers + 1`` chunks' output. 4 MiB chunks
#: took 0.5 s longer over the 641 MB benchmark file but kept a first-open mean under 400 MB.
CHUNK = 8 * 2**20
#: ... and at least (smaller files are split into about four chunks per worker).
MIN_CHUNK = 1 * 2**20
#: Compressed bytes screened for a block start per step.
SEARCH = 64 * 1024
#: Extra compressed bytes read past a chunk's end to reach its last block's end.
OVERRUN = 256 * 1024
WINDOW = 32768
_D0 = bytes(WINDOW)
_RAW = -15
# Kraft weights of code-length-code lengths 0..7 (complete code: sum == 128).
_KRAFT = np.array([0, 64, 32, 16, 8, 4, 2, 1], dtype=np.int32)
#: Largest output of one chunk (a highly compressible stream is continued serially).
MAX_OUT = 96 * 2**20


def chunk_size(compressed_size: int | None = None, workers: int = 2) -> int:
    """Compressed bytes per chunk (``VOXRAY_GZ_CHUNK``, for tests on small files).

    >>> chunk_size(10 * 2**30), chunk_size(20 * 2**20, 2) // 1024
    (8388608, 2560)
    """
    env = os.environ.get("VOXRAY_GZ_CHUNK")
    if env:
        return max(4096, int(env))
    if compressed_size is None:
        return MIN_CHUNK
    return max(MIN_CHUNK, min(CHUNK, compressed_size // (4 * workers)))


#: A read must need at least this many more decompressed bytes to start a parallel pass.
PARALLEL_MIN = 16 * 2**20


def parallel_min() -> int:
    """``PARALLEL_MIN``, or ``VOXRAY_GZ_PARALLEL_MIN`` (tests set 0)."""
    env = os.environ.get("VOXRAY_GZ_PARALLEL_MIN")
    return int(env) if env else PARALLEL_MIN


class Fallback(Exception):
    """The parallel pass cannot go on; the serial pass takes over (internal)."""


@dataclass
class Point:
    """A verified position in the stream: a block boundary with its real window."""

    out: int  # decompressed offset
    bit: int  # compressed bit offset of the next block
    window: bytes  # the last (up to) 32 KiB of output before ``out``
    crc: int  # CRC-32 of the member's output before ``out``
    member_out: int  # the member's output bytes before ``out``


def _bits_of(bitpos: int) -> tuple[int, int]:
    """``(inp, bits)`` of a bit offset, as the index stores it (bitpos = inp * 8 - bits)."""
    r = bitpos & 7
    return (bitpos >> 3, 0) if r == 0 else ((bitpos >> 3) + 1, 8 - r)


def find_block_starts(data, first_bit: int = 0) -> np.ndarray:
    """Bit offsets in ``data`` (from ``first_bit``) that may start a non-final
    dynamic-Huffman deflate block: the header's fields are in range and its
    code-length code is complete. A screen: zlib confirms the survivors.

    A raw deflate stream of several blocks starts with a dynamic block at bit 0:

    >>> import zlib
    >>> data = np.random.default_rng(0).integers(0, 50, 400_000).astype("<i2").tobytes()
    >>> c = zlib.compressobj(6, zlib.DEFLATED, -15)
    >>> raw = c.compress(data) + c.flush()
    >>> int(find_block_starts(raw[:4096])[0])
    0
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    bits = np.unpackbits(buf, bitorder="little")
    n = bits.size - 17 - 19 * 3
    if n <= first_bit:
        return np.empty(0, dtype=np.int64)
    # BFINAL = 0 and BTYPE = 2 (its two bits, least significant first: 0 then 1)
    f = first_bit
    p = np.flatnonzero((bits[f:n] == 0) & (bits[f + 1 : n + 1] == 0) & (bits[f + 2 : n + 2] == 1))
    p += f
    v = bits.astype(np.int16)

    def field_(off: int, width: int) -> np.ndarray:
        q = p + off
        out = v[q]
        for i in range(1, width):
            out = out + (v[q + i] << i)
        return out

    p = p[(field_(3, 5) <= 29) & (field_(8, 5) <= 29)]  # HLIT, HDIST
    count = field_(13, 4) + 4  # HCLEN + 4 code-length-code lengths follow
    kraft = np.zeros(p.size, dtype=np.int16)
    for i in range(19):
        kraft += np.where(i < count, _KRAFT[field_(17 + 3 * i, 3)], 0).astype(np.int16)
    return p[kraft == 128].astype(np.int64)


def _prime(inf: _zlib.Inflater, data, pos_bit: int, base: int) -> int:
    """Position ``inf`` at compressed bit ``pos_bit`` of ``data`` (which starts at
    compressed byte ``base``); returns the index in ``data`` of the next whole byte."""
    inp, bits = _bits_of(pos_bit)
    if bits:
        inf.prime(bits, data[inp - 1 - base] >> (8 - bits))
    return inp - base


def _trial(inf: _zlib.Inflater, data, addr: int, pos_bit: int, base: int, scratch) -> bool:
    """Does a raw inflate from bit ``pos_bit`` decode a whole block and the next header?"""
    inf.reset(_RAW)
    i = _prime(inf, data, pos_bit, base)
    inf.set_dictionary(_D0)
    s_addr, s_len = _zlib.address(scratch), len(scratch)
    ends = 0
    for _ in range(64):
        ret, used, made, dtype = inf.inflate(addr + i, len(data) - i, s_addr, s_len, _zlib.Z_BLOCK)
        i += used
        if ret == _zlib.Z_STREAM_END:
            return True
        if ret not in (_zlib.Z_OK, _zlib.Z_BUF_ERROR):
            return False
        if used == 0 and made == 0:
            return ends >= 1  # out of input after at least one whole block
        if dtype & 128:
            ends += 1
            if ends >= 2:
                return True
    return True


@dataclass
class _Chunk:
    index: int
    start: int | None = None  # bit offset where its decode began
    end: int | None = None  # bit offset of the block boundary where it stopped
    out: bytearray = field(default_factory=bytearray)
    n: int = 0
    exact: bool = False  # decoded with the real window
    points: list = field(default_factory=list)  # (relative out, bit offset)
    final: int | None = None  # compressed byte after the deflate stream, if it ended here
    error: str | None = None
    short: bool = False  # stopped at the output cap, before the chunk's end
    inflated: int = 0  # bytes inflated for it (both dictionaries, and the redo)
    data: bytearray | None = None  # its compressed bytes, from ``base``
    base: int = 0


class _Decoder:
    """The speculative work on one chunk (runs on an I/O pool thread)."""

    def __init__(self, raw, size: int, chunk: int, spacing: int, out_hint: int):
        self.raw, self.size, self.chunk = raw, size, chunk
        self.spacing, self.out_hint = spacing, out_hint
        # Input read past the chunk's end, for its last block (more is read if needed).
        self.overrun = min(OVERRUN, max(64 * 1024, chunk // 8))

    def __call__(
        self, k: int, start_bit: int | None, window: bytes | None, buf: bytearray | None = None
    ) -> _Chunk:
        c = _Chunk(k, out=buf if buf is not None else bytearray())
        lo = k * self.chunk
        hi_bit = min(self.size, lo + self.chunk) * 8
        base = lo if start_bit is None else start_bit >> 3
        data = bytearray(min(self.size, lo + self.chunk + self.overrun) - base)
        self.raw.readinto(base, data)
        inf = _zlib.Inflater(_RAW)
        try:
            if start_bit is None:
                start_bit = self._search(inf, data, base)
                if start_bit is None or start_bit >= hi_bit:
                    return c
            c.start = start_bit
            self._decode(inf, c, data, base, start_bit, hi_bit, _D0 if window is None else window)
            c.exact = window is not None
        finally:
            inf.close()
        return c

    def _search(self, inf, data, base: int) -> int | None:
        addr = _zlib.address(data)
        scratch = bytearray(256 * 1024)
        lo, step = 0, 4096
        while lo < min(len(data), self.chunk):
            window = memoryview(data)[lo : lo + step + 256]
            found = find_block_starts(window)
            lo_now = lo
            lo, step = lo + step, min(SEARCH, step * 2)
            for cand in found:
                if cand >= 8 * (lo - lo_now):
                    break  # in the overlap: the next window screens it
                bit = (base + lo_now) * 8 + int(cand)
                if _trial(inf, data, addr, bit, base, scratch):
                    return bit
        return None

    def _more(self, data: bytearray, base: int) -> bytearray | None:
        """The input extended by another OVERRUN bytes (None at the end of the file)."""
        have = base + len(data)
        if have >= self.size:
            return None
        extra = self.raw.read(have, min(self.overrun, self.size - have))
        return data + extra

    def _decode(self, inf, c: _Chunk, data, base, start_bit, hi_bit, dictionary) -> None:
        inf.reset(_RAW)
        i = _prime(inf, data, start_bit, base)
        inf.set_dictionary(dictionary)
        out = c.out if len(c.out) >= self.out_hint // 2 else bytearray(self.out_hint)
        n = 0
        last_point = 0
        addr = _zlib.address(data)
        hi_byte = (hi_bit >> 3) - base
        while True:
            if n == len(out):
                grown = bytearray(len(out) * 2)
                grown[:n] = out
                out = grown
            # Inflate freely up to the chunk's end and while no point is due; then
            # stop at every block boundary.
            due = n - last_point >= self.spacing
            boundary = due or i >= hi_byte - 1 or n >= MAX_OUT
            avail = len(data) - i if boundary else max(1, hi_byte - 1 - i)
            room = len(out) - n
            if not boundary:
                room = min(room, max(1, last_point + self.spacing - n))
            ret, used, made, dtype = inf.inflate(
                addr + i,
                avail,
                _zlib.address(out) + n,
                room,
                _zlib.Z_BLOCK if boundary else _zlib.Z_NO_FLUSH,
            )
            i += used
            n += made
            if ret == _zlib.Z_STREAM_END:
                c.final = base + i
                c.end = (base + i) * 8
                break
            if ret not in (_zlib.Z_OK, _zlib.Z_BUF_ERROR):
                c.error = inf.message
                break
            if boundary and dtype & 128 and not dtype & 64:
                bit = (base + i) * 8 - (dtype & 7)
                if bit >= hi_bit or n >= MAX_OUT:
                    c.end = bit
                    c.short = bit < hi_bit
                    break
                if due:
                    c.points.append((n, bit))
                    last_point = n
            if used == 0 and made == 0 and room > 0:
                more = self._more(data, base)
                if more is None:
                    c.error = "the stream ends inside a deflate block"
                    break
                data = more
                addr = _zlib.address(data)
        c.out, c.n = out, n
        c.data, c.base = data, base
        c.inflated += n


def park_budget() -> int:
    """Bytes a pass may park (``VOXRAY_GZ_PARK_BYTES``; default 4 GiB, at most a quarter of
    the temporary directory's free space)."""
    env = os.environ.get("VOXRAY_GZ_PARK_BYTES")
    if env:
        return int(env)
    try:
        free = shutil.disk_usage(tempfile.gettempdir()).free
    except OSError:
        return 0
    return min(4 * 2**30, free // 4)


class Park:
    """Decompressed bytes a pass went through for nobody, kept for the read that comes
    for them: a read far ahead of the frontier (dask runs tasks in its own order) need
    not make every chunk before it inflate a second time.

    The bytes go to an unlinked, sparse temporary file at their decompressed offsets
    (the page cache holds them, not the heap). A read takes them once: the range is
    then forgotten and its disk space released (``FALLOC_FL_PUNCH_HOLE``).
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.bytes = 0
        self.ranges: list[list[int]] = []  # sorted, disjoint [start, end)
        self._lock = threading.Lock()
        self._file = None

    def put(self, off: int, view: memoryview) -> None:
        n = view.nbytes
        if not n or self.bytes + n > self.budget:
            return
        with self._lock:
            if self._file is None:  # closed by close(), which GzipSource.close calls
                self._file = tempfile.TemporaryFile(prefix="voxray-gz-park-")  # noqa: SIM115
            fd = self._file.fileno()
            done = 0
            while done < n:
                done += os.pwrite(fd, view[done:], off + done)
            self.bytes += n
            i = bisect.bisect_left(self.ranges, [off, off])
            if i > 0 and self.ranges[i - 1][1] == off:
                self.ranges[i - 1][1] = off + n
            else:
                self.ranges.insert(i, [off, off + n])

    def take(self, off: int, mv: memoryview) -> bool:
        """Fill ``mv`` with the bytes at ``off`` if they are parked (then forget them)."""
        end = off + mv.nbytes
        with self._lock:
            i = bisect.bisect_right(self.ranges, [off, 1 << 62]) - 1
            if i < 0 or self.ranges[i][1] < end or self.ranges[i][0] > off:
                return False
            fd = self._file.fileno()
            got = 0
            while got < mv.nbytes:
                r = os.preadv(fd, [mv[got:]], off + got)
                if r <= 0:
                    return False
                got += r
            lo, hi = self.ranges.pop(i)
            if lo < off:
                self.ranges.insert(i, [lo, off])
                i += 1
            if end < hi:
                self.ranges.insert(i, [end, hi])
            self.bytes -= mv.nbytes
            _punch_hole(fd, off, mv.nbytes)
        return True

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self.ranges.clear()
            self.bytes = 0


_fallocate = None


def _punch_hole(fd: int, off: int, n: int) -> None:
    """Release the disk space of bytes nobody will read again (Linux; elsewhere a no-op)."""
    global _fallocate
    if not sys.platform.startswith("linux"):
        return
    if _fallocate is None:
        libc = ctypes.CDLL(None, use_errno=True)
        _fallocate = libc.fallocate
        _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _fallocate(fd, 3, off, n)  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


class ParallelPass:
    """The state of one parallel first pass, kept between reads: the verified
    position ``cur``, the speculative chunks in flight, and the last resolved
    chunk's output (the next sequential read usually starts inside it).

    ``add_point(out, inp, bits, window)`` records seek points; ``submit`` runs a
    callable on the I/O pool and returns a future.
    """

    def __init__(
        self, raw, size: int, start: Point, add_point, submit, workers: int, spacing: int
    ):
        self.raw, self.size = raw, size
        self.chunk = chunk_size(size, workers)
        self.decoder = _Decoder(raw, size, self.chunk, spacing, max(64 * 1024, 3 * self.chunk))
        self.add_point, self.submit, self.workers = add_point, submit, workers
        self.start = start
        self.cur = start
        self.k0 = (start.bit >> 3) // self.chunk
        self.nxt = self.k0
        self.n_chunks = -(-size // self.chunk)
        self.pending: deque = deque()
        self.free: list[bytearray] = []
        self.tail: tuple[int, memoryview] | None = None  # (out offset, bytes) last resolved
        #: Set when the member's deflate stream ended: the offset after its trailer.
        self.trailer_end: int | None = None
        #: Set when the pass stops being parallel (the serial pass goes on from ``cur``).
        self.gave_up = False
        self.inflated = 0
        self.park: Park | None = None
        self.park_end = 0

    def _fill(self) -> None:
        while len(self.pending) < self.workers and self.nxt < self.n_chunks:
            # Output buffers are reused: fresh memory costs a page fault per 4 KiB.
            buf = self.free.pop() if self.free else None
            if self.nxt == self.k0:
                f = self.submit(self.decoder, self.nxt, self.start.bit, self.start.window, buf)
            else:
                f = self.submit(self.decoder, self.nxt, None, None, buf)
            self.pending.append(f)
            self.nxt += 1

    def serve_tail(self, sinks) -> None:
        """Copy what the last resolved chunk holds of ``sinks`` (reads behind ``cur``)."""
        if self.tail is not None:
            _deliver(self.tail[0], self.tail[1], sinks)

    def take_from_tail(self, reqs):
        """Serve the requests the last resolved chunk holds whole; return the others."""
        if self.tail is None:
            return reqs
        out0, view = self.tail
        end = out0 + view.nbytes
        rest = []
        for off, mv in reqs:
            if out0 <= off and off + mv.nbytes <= end:
                mv[:] = view[off - out0 : off - out0 + mv.nbytes]
            else:
                rest.append((off, mv))
        return rest

    def advance(self, stop: int | None, sinks, progress=None, park: Park | None = None) -> None:
        """Resolve chunks until ``cur.out >= stop`` (the stream's end when None),
        delivering their output into ``sinks``; output before the first sink goes to
        ``park``. Raises :class:`Fallback` on an error; sets ``trailer_end`` at the
        member's end, or ``gave_up``."""
        self.park = park
        self.park_end = min((s.off for s in sinks), default=0)
        if park is not None and self.tail is not None and self.park_end > self.cur.out:
            # This read skips ahead: the last chunk's bytes may be wanted too.
            park.put(*self.tail)
        target = stop if stop is not None else 1 << 62
        self.serve_tail(sinks)
        self._fill()
        while self.cur.out < target and self.trailer_end is None and not self.gave_up:
            if not self.pending:
                raise Fallback("the stream ended before the data")
            c: _Chunk = self.pending.popleft().result()
            self._fill()
            if c.start is None or c.start < self.cur.bit:
                self.free.append(c.out)
                continue  # no block start found past the previous chunk's end: absorbed
            if c.start > self.cur.bit:
                # A start the screen got wrong, or one after a block it missed: inflate
                # the gap serially with the real window.
                gap = _serial_gap(self.decoder, self.cur, c.start)
                if gap is None:
                    self.gave_up = True
                    break
                self._accept(gap, sinks)
                if self.cur.bit != c.start:
                    self.free.append(c.out)
                    continue  # the true stream has no block boundary at c.start
            if c.error is not None:
                raise Fallback(c.error)
            if not c.exact:
                c.inflated += _fix(self.decoder, c, self.cur.window)
            self._accept(c, sinks)
            if progress is not None:
                progress(self.cur.bit >> 3)
            if c.short:
                self.gave_up = True  # a chunk's output hit its cap: go on serially
            elif c.final is not None:
                self.trailer_end = _check_trailer(self.raw, self.size, c.final, self.cur)

    def _accept(self, c: _Chunk, sinks) -> None:
        """``c``'s (now exact) output follows ``cur``: deliver it, checksum it, index it."""
        cur = self.cur
        view = memoryview(c.out)[: c.n]
        _deliver(cur.out, view, sinks)
        if self.park is not None and cur.out < self.park_end:
            self.park.put(cur.out, view[: min(c.n, self.park_end - cur.out)])
        crc = _zlib.crc32(view, cur.crc)

        def window_at(rel: int) -> bytes:
            if rel >= WINDOW:
                return bytes(view[rel - WINDOW : rel])
            return (cur.window + bytes(view[:rel]))[-WINDOW:]

        for rel, bit in [(0, c.start), *c.points]:
            inp, bits = _bits_of(bit)
            self.add_point(cur.out + rel, inp, bits, window_at(rel))
        self.cur = Point(cur.out + c.n, c.end, window_at(c.n), crc, cur.member_out + c.n)
        if self.tail is not None and c.index >= 0:
            self.free.append(self.tail[1].obj)
        self.tail = (cur.out, view)
        self.inflated += c.inflated
        self.decoder.out_hint = max(self.decoder.out_hint, c.n + c.n // 4)

    def close(self) -> None:
        """Abandon the speculative work in flight."""
        for f in self.pending:
            f.cancel()
        for f in self.pending:
            if not f.cancelled():
                with contextlib.suppress(Exception):  # abandoned speculative work
                    f.result()
        self.pending.clear()
        self.tail = None


def _deliver(out0: int, view: memoryview, sinks) -> None:
    """Copy the output ``view`` (decompressed offset ``out0``) into overlapping sinks."""
    end = out0 + view.nbytes
    if not view.nbytes:
        return
    src = _zlib.address(view.obj) if not isinstance(view.obj, bytes) else None
    for s in sinks:
        lo, hi = max(s.off, out0), min(s.end, end)
        if lo < hi:
            if src is not None:
                ctypes.memmove(s.addr + (lo - s.off), src + (lo - out0), hi - lo)
            else:  # pragma: no cover - outputs are bytearrays
                ctypes.memmove(s.addr + (lo - s.off), bytes(view[lo - out0 : hi - out0]), hi - lo)


def _serial_gap(decoder: _Decoder, cur: Point, until_bit: int) -> _Chunk | None:
    """Inflate from ``cur`` with its real window to the first block boundary at or
    after ``until_bit`` (a rare path); None when that is more output than a chunk holds."""
    if until_bit - cur.bit > 4 * 8 * decoder.chunk:
        return None  # several chunks without a block start: leave them to the serial pass
    c = _Chunk(-1)
    base = cur.bit >> 3
    end = min(decoder.size, (until_bit >> 3) + decoder.overrun)
    data = bytearray(decoder.raw.read(base, end - base))
    inf = _zlib.Inflater(_RAW)
    try:
        c.start = cur.bit
        decoder._decode(inf, c, data, base, cur.bit, until_bit, cur.window)
    finally:
        inf.close()
    if c.error is not None:
        raise Fallback(c.error)
    if c.short or (c.final is not None and c.end < until_bit):
        return None
    return c


def _fix(decoder: _Decoder, c: _Chunk, window: bytes) -> int:
    """Make ``c`` exact: inflate it again from its start with the real window, in
    place, until 32 KiB of the new output equal the speculative output. From there
    the two decoders hold the same window, so the rest is already right. Returns
    the bytes inflated again (typically a few hundred KiB to a few MiB)."""
    data, base = c.data, c.base
    inf = _zlib.Inflater(_RAW)
    step, biggest = 2 * WINDOW, 256 * 1024  # small steps first: it often agrees soon
    scratch = bytearray(biggest)
    s_addr = _zlib.address(scratch)
    mine = np.frombuffer(c.out, dtype=np.uint8, count=c.n)
    n = 0
    same_since = 0  # output offset since which the two decodes agree
    try:
        i = _prime(inf, data, c.start, base)
        inf.set_dictionary(window)
        while n < c.n and n - same_since < WINDOW:
            want = min(step, c.n - n)
            ret, used, made, _ = inf.inflate(
                _zlib.address(data) + i, len(data) - i, s_addr, want, 0
            )
            i += used
            if ret not in (_zlib.Z_OK, _zlib.Z_BUF_ERROR, _zlib.Z_STREAM_END):
                raise Fallback(inf.message)
            if made == 0:
                if used == 0:
                    more = decoder._more(data, base)
                    if more is None:
                        raise Fallback("the stream ends inside a deflate block")
                    data = more
                continue
            new = np.frombuffer(scratch, dtype=np.uint8, count=made)
            diff = np.flatnonzero(new != mine[n : n + made])
            if diff.size:
                mine[n : n + made] = new
                same_since = n + int(diff[-1]) + 1
            n += made
            step = min(biggest, step * 2)
    finally:
        inf.close()
    return n


def _check_trailer(raw, size: int, after: int, cur: Point) -> int:
    """Check the member's CRC-32 and length; returns the offset after the trailer."""
    if after + 8 > size:
        raise Fallback("truncated trailer")
    t = raw.read(after, 8)
    crc = int.from_bytes(t[:4], "little")
    isize = int.from_bytes(t[4:], "little")
    if crc != cur.crc or isize != cur.member_out & 0xFFFFFFFF:
        raise Fallback("bad check")
    return after + 8
