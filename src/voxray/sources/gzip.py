"""Random access into the decompressed bytes of a gzip file.

The first read that needs data past what is indexed runs the *build pass*: one
sequential inflate from where the pass stopped, which writes the requested
bytes straight into the caller's buffer and records seek points on the way
(:mod:`.gzindex`). The pass is resumable, so ``vx.load`` (which reads only the
header) costs a few hundred bytes of inflate, and a full read indexes the file
while serving it.

Reads behind the pass's frontier go through the index: each range is inflated
from its nearest seek point, ranges closer than the seek-point spacing share
one inflate, and large ranges are split at seek points and inflated in
parallel on the I/O pool (ctypes releases the GIL).

Every inflate checks the deflate data; a pass over whole gzip members also
checks their CRC-32 and length. Truncated streams, bad data and bad checksums
raise :class:`~voxray.errors.CorruptGzipError` with the compressed byte offset;
bytes after the last member that are not gzip data are ignored with a
:class:`~voxray.errors.TrailingDataWarning` (nibabel reads such files); a
stream that ends cleanly before the requested data raises
:class:`~voxray.errors.TruncatedFileError`.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Callable, Sequence

from ..errors import CorruptGzipError, TrailingDataWarning, TruncatedFileError
from ..planning import coalesce_ranges
from . import _zlib, gzparallel
from .base import Source, io_pool, io_workers, prefault_async
from .gzindex import GzipIndex, parse_trailer
from .gzparallel import Fallback, ParallelPass, Park, Point

__all__ = ["GzipSource", "flush_index_writes"]

#: Compressed bytes fetched per request by the build pass.
BUILD_READ = 4 * 2**20
#: Largest compressed span an indexed read fetches in one request.
SPAN_READ = 64 * 2**20
#: Output scratch for bytes nobody asked for (they still have to be inflated).
SCRATCH = 1 * 2**20
#: Indexed reads are split at seek points into pieces of at least this many bytes.
PIECE = 4 * 2**20
#: Sources whose requests cost at least this much (remote ones) get estimated span reads,
#: and sequential passes over them keep this many reads in flight ahead of the inflate.
TIGHT_COST = 256 * 1024
READ_AHEAD = 3
#: Bytes read from the end of a file to look for a trailer index.
TRAILER_READ = 65536 + 64
#: Sinks at least this large are prefaulted from another thread during the build pass.
PREFAULT_MIN = 32 * 2**20
#: A build pass this close to the end of the compressed file runs on to complete the index.
FINISH_WITHIN = 1 * 2**20
_GZIP_WBITS = 31
_RAW_WBITS = -15


_pending: set[threading.Thread] = set()
_pending_lock = threading.Lock()


def flush_index_writes() -> None:
    """Wait until every index the build passes completed is stored."""
    with _pending_lock:
        threads = list(_pending)
        _pending.clear()
    for t in threads:
        t.join()


def in_io_pool() -> bool:
    return threading.current_thread().name.startswith("voxray-io")


class _Sink:
    __slots__ = ("addr", "end", "off")

    def __init__(self, off: int, mv: memoryview):
        self.off = off
        self.end = off + mv.nbytes
        self.addr = _zlib.address(mv)


class _ReadAhead:
    """One range read running on its own thread; ``result()`` waits for it."""

    def __init__(self, raw: Source, start: int, n: int):
        self.start, self.n = start, n
        self._data: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(raw,), name="voxray-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, raw: Source) -> None:
        try:
            self._data = raw.read(self.start, self.n)
        except BaseException as e:  # handed to the pass, which raises it
            self._error = e

    def result(self) -> bytes:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._data


class _Pass:
    """One inflate pass: the compressed input window, the inflater and positions."""

    def __init__(
        self,
        src: GzipSource,
        in_pos: int,
        out_pos: int,
        raw: bool,
        in_end: int,
        read_size: int,
        first_read: int | None = None,
    ):
        self.src = src
        self.inf = _zlib.Inflater(_RAW_WBITS if raw else _GZIP_WBITS)
        self.raw = raw
        self.in_end = in_end
        self.read_size = read_size
        # The build pass starts small (a header read needs a few KiB), then grows up to
        # read_size; a span read may start with a large first read, then go on in small ones.
        self._next_read = first_read or read_size
        self.inbuf = bytearray()
        self.in_addr = 0
        self.in_base = in_pos  # compressed offset of inbuf[0]
        self.ip = 0  # next unconsumed byte in inbuf
        self.out_pos = out_pos
        self.eof = False
        self.new_member = True
        self.member_start = out_pos  # decompressed offset where the current member began
        # A raw pass resumed inside a member checks the member's CRC-32 and length itself:
        # (crc so far, the member's bytes so far); None in gzip mode (zlib checks them).
        self.check: list[int] | None = None
        self._scratch: bytearray | None = None
        # Long sequential passes over remote objects fetch the next input while
        # this one inflates (a request's latency then hides behind the work).
        self._read_ahead = read_size >= BUILD_READ and src.raw.request_cost >= TIGHT_COST
        self._ahead: deque[_ReadAhead] = deque()

    @property
    def in_pos(self) -> int:
        return self.in_base + self.ip

    def _refill(self, at_least: int = 1) -> bool:
        """Make at least ``at_least`` unconsumed bytes available; False at the end of input."""
        have = len(self.inbuf) - self.ip
        if have >= at_least:
            return True
        start = self.in_base + len(self.inbuf)
        n = min(max(self._next_read, at_least - have), self.in_end - start)
        self._next_read = min(self.read_size, self._next_read * 4)
        if n <= 0:
            return have >= at_least
        ahead = self._ahead.popleft() if self._ahead else None
        if ahead is not None and (ahead.start != start or ahead.n < at_least - have):
            self._ahead.clear()  # off the sequence (cannot happen in a forward pass)
            ahead = None
        if ahead is not None:
            n = ahead.n
        fresh = bytearray(have + n)
        fresh[:have] = self.inbuf[self.ip :]
        if ahead is not None:
            fresh[have:] = ahead.result()
        else:
            self.src.raw.readinto(start, memoryview(fresh)[have:])
        self.src.stats.add(requests=1, bytes_read=n)
        if self._read_ahead and n >= self.read_size:
            nxt = self._ahead[-1].start + self._ahead[-1].n if self._ahead else start + n
            while len(self._ahead) < READ_AHEAD and nxt < self.in_end:
                m = min(self.read_size, self.in_end - nxt)
                self._ahead.append(_ReadAhead(self.src.raw, nxt, m))
                nxt += m
        self.inbuf, self.in_base, self.ip = fresh, start - have, 0
        self.in_addr = _zlib.address(fresh)
        return len(fresh) >= at_least

    def take_byte(self) -> int:
        if not self._refill(1):
            raise self._truncated()
        b = self.inbuf[self.ip]
        self.ip += 1
        return b

    def _truncated(self) -> CorruptGzipError:
        return CorruptGzipError(
            f"{self.src.name!r}: truncated gzip stream: it ends at compressed byte "
            f"{self.in_pos} inside a deflate stream ({self.out_pos} bytes decompressed)"
        )

    def _corrupt(self, why: str) -> CorruptGzipError:
        return CorruptGzipError(
            f"{self.src.name!r}: corrupt gzip data near compressed byte {self.in_pos} "
            f"(decompressed offset {self.out_pos}): {why}"
        )

    def _member_end(self) -> None:
        """After a deflate stream ends: skip the trailer, then the next member, padding or EOF."""
        if self.raw:  # in gzip mode zlib consumed and checked the trailer
            if not self._refill(8):
                raise self._truncated()
            if self.check is not None:
                t = self.inbuf[self.ip : self.ip + 8]
                crc, isize = int.from_bytes(t[:4], "little"), int.from_bytes(t[4:], "little")
                if crc != self.check[0] or isize != self.check[1] & 0xFFFFFFFF:
                    # The serial pass from the start reports it as zlib words it.
                    raise Fallback("bad trailer check")
                self.check = None
            self.ip += 8
        if not self._refill(1):
            self.eof = True
            return
        if self._refill(2) and self.inbuf[self.ip : self.ip + 2] == b"\x1f\x8b":
            self.inf.reset(_GZIP_WBITS)
            self.raw = False
            self.new_member = True
            self.member_start = self.out_pos
            return
        # Zero padding after the last member is accepted silently (as gzip and Python do);
        # other bytes are ignored with a warning: nibabel never reads past the image data,
        # so it reads such files, and the data before them has passed its CRC.
        while self._refill(1):
            rest = bytes(self.inbuf[self.ip :])
            zeros = len(rest) - len(rest.lstrip(b"\x00"))
            if zeros < len(rest):
                warnings.warn(
                    f"{self.src.name!r}: bytes that are not gzip data follow the gzip stream "
                    f"at compressed byte {self.in_pos + zeros}; they are ignored",
                    TrailingDataWarning,
                    stacklevel=2,
                )
                break
            self.ip = len(self.inbuf)
        self.eof = True

    def pump(
        self,
        stop: int | None,
        sinks: Sequence[_Sink],
        index: GzipIndex | None = None,
        progress: Callable[[int], None] | None = None,
        to_point: bool = False,
    ) -> Point | None:
        """Inflate until ``out_pos == stop`` (or the end of the file when ``stop`` is None),
        writing output that falls in ``sinks`` (sorted, disjoint) into them. With
        ``index``, record seek points at block boundaries (the build pass). With
        ``to_point``, stop at the next block boundary instead and return it (the
        parallel pass starts there)."""
        flush = _zlib.Z_NO_FLUSH
        # Window compression runs on the I/O pool, off this sequential pass's path.
        compress = None if in_io_pool() or io_workers() < 2 else io_pool().submit
        target_end = stop if stop is not None else 1 << 62
        if self._scratch is None:
            self._scratch = bytearray(SCRATCH)
        scratch_addr = _zlib.address(self._scratch)
        reported = self.in_base
        si = 0
        stalls = 0
        inflated = 0
        while not self.eof and self.out_pos < target_end:
            while si < len(sinks) and sinks[si].end <= self.out_pos:
                si += 1
            if si < len(sinks) and sinks[si].off <= self.out_pos:
                s = sinks[si]
                out_addr = s.addr + (self.out_pos - s.off)
                out_len = min(s.end, target_end) - self.out_pos
            else:
                nxt = sinks[si].off if si < len(sinks) else target_end
                out_addr = scratch_addr
                out_len = min(SCRATCH, nxt - self.out_pos, target_end - self.out_pos)
            if index is not None:
                # Inflate freely up to where the next point is due, then stop at each
                # block boundary (Z_BLOCK) until one is recorded.
                due = (
                    self.out_pos if self.new_member or to_point else index.out[-1] + index.spacing
                )
                if self.out_pos < due:
                    flush = _zlib.Z_NO_FLUSH
                    out_len = min(out_len, due - self.out_pos)
                else:
                    flush = _zlib.Z_BLOCK
            if self.ip >= len(self.inbuf) and not self._refill(1):
                raise self._truncated()
            ret, used, made, dtype = self.inf.inflate(
                self.in_addr + self.ip, len(self.inbuf) - self.ip, out_addr, out_len, flush
            )
            self.ip += used
            if self.check is not None and made:
                self.check[0] = _zlib.crc32_at(out_addr, made, self.check[0])
                self.check[1] += made
            self.out_pos += made
            inflated += made
            if ret == _zlib.Z_STREAM_END:
                if index is not None:
                    index.members += 1
                self._member_end()
                stalls = 0
            elif ret == _zlib.Z_OK or ret == _zlib.Z_BUF_ERROR:
                if used == 0 and made == 0:
                    if self.ip >= len(self.inbuf) and not self._refill(1):
                        raise self._truncated()
                    stalls += 1
                    if stalls > 3:
                        raise self._corrupt("inflate makes no progress")
                else:
                    stalls = 0
            else:
                raise self._corrupt(self.inf.message)
            if (
                flush == _zlib.Z_BLOCK
                and not self.eof
                and dtype & 128
                and not dtype & 64
                and (self.new_member or to_point or self.out_pos - index.out[-1] >= index.spacing)
            ):
                window = b"" if self.new_member else self.inf.get_dictionary()
                if not len(index) or self.out_pos > index.out[-1]:
                    index.add(self.out_pos, self.in_pos, dtype & 7, window, compress)
                self.new_member = False
                if to_point:
                    self.src.stats.add(bytes_inflated=inflated)
                    index.frontier_out, index.frontier_in = self.out_pos, self.in_pos
                    return self.point(window, dtype & 7)
            if index is not None:
                index.frontier_out, index.frontier_in = self.out_pos, self.in_pos
            if progress is not None and self.in_base != reported:
                reported = self.in_base
                progress(self.in_pos)
        self.src.stats.add(bytes_inflated=inflated)
        if self.eof and index is not None:
            index.uncompressed_size = self.out_pos
            index.frontier_in = index.compressed_size
        if stop is not None and self.out_pos < stop:
            raise TruncatedFileError(
                f"{self.src.name!r}: the gzip stream holds {self.out_pos} decompressed bytes; "
                f"data up to byte {stop} was expected"
            )

    def point(self, window: bytes, bits: int) -> Point:
        """This pass's position, at a block boundary, as the parallel pass takes it."""
        if self.check is not None:
            crc, member_out = self.check
        else:  # gzip mode: zlib keeps the member's running CRC-32 in ``adler``
            crc, member_out = self.inf.check_value, self.out_pos - self.member_start
        return Point(self.out_pos, self.in_pos * 8 - bits, window, crc, member_out)

    @classmethod
    def resume(cls, src: GzipSource, at: Point) -> _Pass:
        """A raw build pass from a verified point inside a member (after the parallel
        pass), checking the member's CRC-32 and length at its end."""
        inp = (at.bit + 7) >> 3
        bits = inp * 8 - at.bit
        p = cls(src, inp - 1 if bits else inp, at.out, True, src.index.compressed_size, BUILD_READ)
        if bits:
            p.inf.prime(bits, p.take_byte() >> (8 - bits))
        p.inf.set_dictionary(at.window)
        p.new_member = False
        p.member_start = at.out - at.member_out
        p.check = [at.crc, at.member_out]
        return p

    def close(self) -> None:
        self.inf.close()


class GzipSource(Source):
    """The decompressed stream of a gzip file held by another source (``raw``).

    ``load_index()`` is called at most once, when a read first needs data past
    the build pass's frontier, to fetch a stored index (header reads never
    need it). ``on_complete(index)`` is called when the build pass reaches the
    end of the file (voxray uses it to store the index for the next process).
    """

    def __init__(
        self,
        raw: Source,
        index: GzipIndex | None = None,
        spacing: int | None = None,
        load_index: Callable[[], GzipIndex | None] | None = None,
        on_complete: Callable[[GzipIndex], None] | None = None,
    ):
        super().__init__()
        self.raw = raw
        self.name = raw.name
        size = raw.size
        if size is None:
            raise ValueError(f"{raw.name!r}: the compressed size must be known")
        magic = raw.read(0, 2) if size >= 2 else b""
        if magic != b"\x1f\x8b":
            raise CorruptGzipError(
                f"{raw.name!r} is not a gzip stream: it starts with {magic!r}, not b'\\x1f\\x8b'"
            )
        self.index = index if index is not None else GzipIndex(size, spacing)
        self.on_complete = on_complete
        self._load_index = load_index
        self._build_lock = threading.Lock()
        self._builder: _Pass | None = None
        self._parallel: ParallelPass | None = None
        self._serial_only = False
        self._park: Park | None = None

    @property
    def size(self) -> int | None:
        return self.index.uncompressed_size

    @property
    def request_cost(self) -> int:  # type: ignore[override]
        # A request inflates, on average, half a spacing before reaching its data.
        return self.index.spacing // 2

    def readinto(self, offset: int, buffer) -> None:
        self.read_many([(offset, buffer)])

    def read_prefix(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` from the start, by a one-off pass (headers of tiny files too)."""
        if self.index.complete:
            return super().read_prefix(nbytes)
        parts = []
        p = _Pass(self, 0, 0, False, self.index.compressed_size, BUILD_READ, 64 * 1024)
        try:
            while p.out_pos < nbytes and not p.eof:
                part = bytearray(min(nbytes - p.out_pos, 2**20))
                start = p.out_pos
                try:
                    p.pump(start + len(part), [_Sink(start, memoryview(part))])
                except TruncatedFileError:
                    if not p.eof:
                        raise
                parts.append(bytes(part[: p.out_pos - start]))
        finally:
            p.close()
        return b"".join(parts)

    def read_many(self, requests: Sequence[tuple[int, object]]) -> None:
        reqs = []
        for off, buf in requests:
            mv = memoryview(buf).cast("B")
            if off < 0:
                raise ValueError(f"negative offset {off}")
            if mv.nbytes:
                reqs.append((off, mv))
        if not reqs:
            return
        reqs.sort(key=lambda r: r[0])
        if any(a[0] + a[1].nbytes > b[0] for a, b in zip(reqs, reqs[1:])):
            for r in reqs:  # overlapping requests: serve them one at a time
                self.read_many([r])
            return
        size = self.index.uncompressed_size
        if size is not None:
            for off, mv in reqs:
                if off + mv.nbytes > size:
                    raise TruncatedFileError(
                        f"{self.name!r}: the gzip stream holds {size} decompressed bytes; "
                        f"cannot read {mv.nbytes} bytes at offset {off}"
                    )
        self.stats.add(bytes_returned=sum(mv.nbytes for _, mv in reqs))
        reqs = self._from_park(reqs)
        if not reqs:
            return
        hi = max(off + mv.nbytes for off, mv in reqs)
        if hi > self.index.frontier_out and not self.index.complete:
            self._try_stored_index()  # (waits for a pass that is running)
            reqs = self._from_park(reqs)
            if not reqs:
                return
        if hi > self.index.frontier_out and not self.index.complete:
            reqs = self._build(reqs, hi)
        if reqs:
            self._read_indexed(reqs)

    def _from_park(self, reqs):
        """Serve the requests a parallel pass parked (it went through their bytes before
        any read asked for them); return the others."""
        park = self._park
        if park is None or not park.ranges:
            return reqs
        return [(off, mv) for off, mv in reqs if not park.take(off, mv)]

    # -- the build pass ------------------------------------------------------

    def _trailer_index(self) -> GzipIndex | None:
        """The index voxray's writer appends to its files, if this file has one."""
        size = self.index.compressed_size
        n = min(size, TRAILER_READ)
        try:
            tail = self.raw.read(size - n, n)
        except TruncatedFileError:
            return None
        self.stats.add(requests=1, bytes_read=n)
        return parse_trailer(tail, size)

    def _try_stored_index(self) -> None:
        with self._build_lock:
            loader, self._load_index = self._load_index, None
            if loader is None or self.index.complete:
                return
            stored = loader() or self._trailer_index()
            if stored is not None and stored.compressed_size == self.index.compressed_size:
                self._reset_pass()
                self.index = stored

    def _advance(self, stop: int | None, sinks, progress=None) -> bool:
        """Run the build pass to ``stop`` (None: the end); caller holds the build lock.
        Returns True when this call completed the index."""
        try:
            return self._advance_once(stop, sinks, progress)
        except Fallback:
            # The parallel pass met an error, a bad check or a stream that ends early:
            # the serial pass from the start reports it exactly as it always has.
            self._reset_pass()
            self._serial_only = True
            return self._advance_once(stop, sinks, progress)

    def _stop_passes(self) -> None:
        if self._parallel is not None:
            self._parallel.close()
            self._parallel = None
        if self._builder is not None:
            self._builder.close()
            self._builder = None

    def _reset_pass(self) -> None:
        self._stop_passes()
        if not self.index.complete:  # never trust a half-built index after an error
            self.index = GzipIndex(self.index.compressed_size, self.index.spacing)

    def _parallel_ok(self, stop: int | None) -> bool:
        idx = self.index
        return (
            not self._serial_only
            and not idx.complete
            and io_workers() > 1
            and not in_io_pool()
            and idx.compressed_size - idx.frontier_in
            >= 2 * gzparallel.chunk_size(idx.compressed_size, io_workers())
            and (stop is None or stop - idx.frontier_out >= gzparallel.parallel_min())
        )

    def _add_point(self, out: int, inp: int, bits: int, window: bytes) -> None:
        idx = self.index
        if not len(idx) or out > idx.out[-1]:
            idx.add(out, inp, bits, window, io_pool().submit)

    def _advance_once(self, stop: int | None, sinks, progress) -> bool:
        if self._parallel is None and self._parallel_ok(stop):
            if self._builder is None:
                self._builder = _Pass(
                    self, 0, 0, False, self.index.compressed_size, BUILD_READ, 64 * 1024
                )
            try:
                # To the next block boundary: the parallel pass starts from a known window.
                at = self._builder.pump(None, sinks, self.index, to_point=True)
            except BaseException:
                self._reset_pass()
                raise
            if at is not None:
                self._builder.close()
                self._builder = None
                self._parallel = ParallelPass(
                    self.raw,
                    self.index.compressed_size,
                    at,
                    self._add_point,
                    io_pool().submit,
                    io_workers(),
                    self.index.spacing,
                )
        if self._parallel is not None:
            par = self._parallel
            before = par.inflated
            if sinks and self._park is None:
                self._park = Park(gzparallel.park_budget())
            try:
                par.advance(stop, sinks, progress, self._park if sinks else None)
            finally:
                self.stats.add(bytes_inflated=par.inflated - before)
            self.index.frontier_out, self.index.frontier_in = par.cur.out, par.cur.bit >> 3
            if par.trailer_end is None and not par.gave_up:
                return False  # at or past ``stop``, in the middle of the stream
            self._parallel = None
            par.close()
            if par.trailer_end is not None:
                # Past the member's trailer: the serial pass takes the rest (the end of
                # the file, padding, or another member).
                self.index.members += 1
                b = _Pass(self, par.trailer_end - 8, par.cur.out, True, par.size, BUILD_READ)
                b.new_member = False
                b._member_end()
            else:
                b = _Pass.resume(self, par.cur)
            self._builder = b
        if self._builder is None:
            self._builder = _Pass(
                self, 0, 0, False, self.index.compressed_size, BUILD_READ, 64 * 1024
            )
        b = self._builder
        try:
            b.pump(stop, sinks, self.index, progress)
        except BaseException:  # (a Fallback is retried by _advance, from the start)
            self._reset_pass()
            raise
        if b.eof:
            b.close()
            self._builder = None
            return True
        return False

    def _build(self, reqs, hi: int):
        """Advance the build pass to ``hi``, serving the parts of ``reqs`` beyond the
        frontier; return the parts before it (for the indexed reader)."""
        with self._build_lock:
            reqs = self._from_park(reqs)  # parked while this read waited for the lock
            if not reqs:
                return []
            hi = max(off + mv.nbytes for off, mv in reqs)
            front = self.index.frontier_out
            completed = False
            if hi > front and not self.index.complete:
                sinks = [
                    _Sink(max(off, front), mv[max(0, front - off) :])
                    for off, mv in reqs
                    if off + mv.nbytes > front
                ]
                big = sum(k.end - k.off for k in sinks) >= PREFAULT_MIN
                helper = prefault_async([(k.addr, k.end - k.off) for k in sinks]) if big else None
                completed = self._advance(hi, sinks)
                if helper is not None:
                    helper.join()
                b = self._builder
                near = self.index.compressed_size - FINISH_WITHIN
                if (b is not None and b.in_pos >= near) or (
                    self._parallel is not None and self.index.frontier_in >= near
                ):
                    # Only the stream's tail (its trailer, maybe some padding) is left:
                    # finish, so the index is complete and can be stored.
                    completed = self._advance(None, [])
            behind = [(off, mv[: front - off]) for off, mv in reqs if off < front]
            if behind and self._parallel is not None:
                # The last chunk the parallel pass resolved is still in memory.
                behind = self._parallel.take_from_tail(behind)
        if completed:
            self._store_in_background()
        return behind

    def _store_in_background(self) -> None:
        """Store the completed index off the read's path, on a non-daemon thread (the
        interpreter finishes writing it before exiting); see :func:`flush_index_writes`."""
        if self.on_complete is None:
            return
        t = threading.Thread(
            target=self.on_complete, args=(self.index,), name="voxray-store-index"
        )
        with _pending_lock:
            _pending.add(t)
        t.start()

    def build_index(self, progress: Callable[[int], None] | None = None) -> GzipIndex:
        """Run the build pass to the end of the file; ``progress(compressed_bytes_done)``."""
        self._try_stored_index()
        completed = False
        with self._build_lock:
            if not self.index.complete:
                completed = self._advance(None, [], progress)
        if completed and self.on_complete is not None:
            self.on_complete(self.index)
        return self.index

    # -- reads through the index ---------------------------------------------

    def _read_indexed(self, reqs) -> None:
        idx = self.index
        groups = coalesce_ranges([(off, mv.nbytes) for off, mv in reqs], idx.spacing)
        pieces: list[tuple[int, int, int, list[tuple[int, memoryview]]]] = []
        for g_off, g_len, members in groups:
            g_end = g_off + g_len
            start = g_off
            while start < g_end:
                p = idx.locate(start)
                # End the piece at the first seek point at least PIECE bytes on.
                end = g_end
                j = p + 1
                while j < len(idx) and idx.out[j] < g_end:
                    if idx.out[j] - start >= PIECE:
                        end = idx.out[j]
                        break
                    j += 1
                parts = []
                for m in members:
                    off, mv = reqs[m]
                    lo, hi = max(off, start), min(off + mv.nbytes, end)
                    if lo < hi:
                        parts.append((lo, mv[lo - off : hi - off]))
                if parts:
                    pieces.append((p, start, max(lo + v.nbytes for lo, v in parts), parts))
                start = end
        if len(pieces) > 1 and io_workers() > 1 and not in_io_pool():
            for f in [io_pool().submit(self._read_piece, *piece) for piece in pieces]:
                f.result()
        else:
            for piece in pieces:
                self._read_piece(*piece)

    def _read_piece(self, point: int, start: int, stop: int, parts) -> None:
        idx = self.index
        out0, in0, bits = idx.out[point], idx.inp[point], idx.bits[point]
        bound = idx.bound(stop)
        begin = in0 - 1 if bits else in0
        if self.raw.request_cost >= TIGHT_COST:
            # Bytes cost money and time: fetch up to an estimate of where ``stop`` lies,
            # then (rarely) the rest in small reads.
            first = min(SPAN_READ, idx.estimate(stop) - begin)
            p = _Pass(self, begin, out0, True, bound, 64 * 1024, first_read=first)
        else:
            p = _Pass(self, begin, out0, True, bound, min(bound - begin, SPAN_READ))
        try:
            if bits:
                p.inf.prime(bits, p.take_byte() >> (8 - bits))
            p.inf.set_dictionary(idx.window(point))
            p.pump(stop, [_Sink(o, m) for o, m in parts])
        finally:
            p.close()

    def close(self) -> None:
        with self._build_lock:
            self._stop_passes()
            if self._park is not None:
                self._park.close()
        self.raw.close()
