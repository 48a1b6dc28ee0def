"""Objects in object storage (``s3://``, ``gs://``, ``https://``, any fsspec URL) by range.

A :class:`RemoteSource` speaks the sources protocol over an fsspec filesystem:

* every read is a stateless range request; ``read_many`` merges neighbouring
  ranges (gaps under :attr:`RemoteSource.request_cost`), splits large ones into
  pieces and sends them concurrently (``cat_ranges``), in batches of bounded size;
* small reads (headers, extensions, an index trailer) go through a bounded block
  cache that counts hits, misses and bytes;
* transient failures (5xx, 408, 429, timeouts, dropped connections) are retried
  per range with exponential backoff and jitter, within a bounded time; 403 and
  404 raise at once, naming the URL;
* an HTTP server that ignores ``Range`` is detected from the response status
  without downloading the object: small objects are then fetched once and served
  from memory, large ones are refused with a clear error;
* the object's size and ETag are recorded when it is opened; a process that
  opens it later and finds another ETag raises
  :class:`~voxray.errors.FileChangedError` instead of mixing two versions (over
  HTTP every range request also carries ``If-Match``).

Specs (:class:`RemoteSpec`) carry only the URL, identity and storage options;
each process builds its filesystem once (:func:`filesystem`).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import (
    AccessDeniedError,
    FileChangedError,
    ImageNotFoundError,
    RangeNotSupportedError,
    RemoteError,
    TruncatedFileError,
    VoxrayError,
)
from .base import Source, is_url

__all__ = [
    "AccessDeniedError",
    "RangeNotSupportedError",
    "RemoteError",
    "RemoteSource",
    "RemoteSpec",
    "filesystem",
    "is_url",
]

#: Transient failures are retried this many times per range...
RETRIES = 8
#: ...starting this long apart (doubling, with jitter, at most MAX_BACKOFF)...
BACKOFF = 0.05
MAX_BACKOFF = 2.0
#: ...for at most this long in all (seconds).
RETRY_BUDGET = 30.0
#: HTTP: give up on a response that sends nothing for this long (seconds).
READ_TIMEOUT = 60.0
#: Reads at most this large go through the block cache, in blocks of this size.
BLOCK = 64 * 1024
#: The block cache holds at most this many blocks per source.
CACHE_BLOCKS = 64
#: Large reads are split into pieces of this size, fetched concurrently...
PIECE = 8 * 2**20
#: ...at most this many at a time (bounds the memory in flight).
BATCH = 16
#: A server that ignores Range: objects up to this size are fetched whole, once.
WHOLE_MAX = 32 * 2**20


_fs_cache: dict = {}
_fs_lock = threading.Lock()


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


def filesystem(protocol: str, options: tuple):
    """The process's fsspec filesystem for ``protocol`` and frozen storage options."""
    key = (protocol, options)
    with _fs_lock:
        fs = _fs_cache.get(key)
    if fs is None:
        import fsspec

        try:
            fs = fsspec.filesystem(protocol, skip_instance_cache=True, **thaw(options))
        except ImportError as e:
            raise RemoteError(
                f"reading {protocol}:// URLs needs an fsspec backend that is not installed "
                f"({e}); voxray[cloud] installs what s3:// and https:// need"
            ) from None
        with _fs_lock:
            fs = _fs_cache.setdefault(key, fs)
    return fs


def _reset_after_fork() -> None:
    # Filesystems hold event loops and connection pools: a child builds its own.
    global _fs_lock
    _fs_cache.clear()
    _fresh.clear()
    _fs_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def freeze(value):
    """Storage options as a hashable, picklable value (for specs and caches)."""
    if isinstance(value, dict):
        return ("__dict__", tuple(sorted((str(k), freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("__seq__", tuple(freeze(v) for v in value))
    return value


def thaw(value):
    """The storage options :func:`freeze` froze (``{}`` for none)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__dict__":
        return {k: thaw(v) for k, v in value[1]}
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__seq__":
        return [thaw(v) for v in value[1]]
    if value == ():
        return {}
    return value


# -- classifying failures -----------------------------------------------------


def _status(exc) -> int | None:
    for attr in ("status", "status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


_TRANSIENT_NAMES = (
    "Disconnected",
    "ClientOS",
    "ClientPayload",
    "Timeout",
    "ConnectionClosed",
    "IncompleteRead",
    "ContentLength",
    "ClientConnector",
    "ReadError",
    "ConnectionError",
    "EndpointConnection",
    "ResponseStreamingError",
)


def _transient(exc: BaseException) -> bool:
    status = _status(exc)
    if status is not None:
        return status >= 500 or status in (408, 429)
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if any(s in type(exc).__name__ for s in _TRANSIENT_NAMES):
        return True
    # fsspec and s3fs wrap the cause (FileNotFoundError from HTTP info, OSError from s3fs).
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and _transient(cause)


def _permanent(url: str, exc: BaseException) -> BaseException | None:
    """The error to raise for ``exc``, or None when it is worth retrying."""
    if isinstance(exc, VoxrayError):
        return exc
    status = _status(exc)
    cause = exc.__cause__ or exc.__context__  # s3fs raises its translation inside except
    if status is None and cause is not None:
        status = _status(cause)
    if status == 403 or (status is None and isinstance(exc, PermissionError)):
        return AccessDeniedError(f"Access denied to {url!r} (403)")
    if status == 404 or (isinstance(exc, FileNotFoundError) and not _transient(exc)):
        return ImageNotFoundError(f"No such object: {url!r} (404)")
    if status == 412:
        return FileChangedError(f"{url!r} changed since it was opened (412: ETag differs)")
    if status == 416:
        return TruncatedFileError(f"{url!r}: range not satisfiable (416): {exc}")
    if _transient(exc):
        return None
    return RemoteError(f"reading {url!r} failed: {type(exc).__name__}: {exc}")


class _Backoff:
    """Exponential backoff with jitter within an attempt count and a time budget."""

    def __init__(self, url: str):
        self.url = url
        self.attempt = 0
        self.delay = BACKOFF
        self.deadline = time.monotonic() + RETRY_BUDGET

    def wait_or_raise(self, exc: BaseException) -> None:
        self.attempt += 1
        pause = self.delay * (0.5 + random.random())
        if self.attempt > RETRIES or time.monotonic() + pause > self.deadline:
            # fsspec wraps the server's answer (HTTP info: FileNotFoundError from a 503).
            cause = exc.__cause__ if isinstance(exc, OSError) and exc.__cause__ else exc
            raise RemoteError(
                f"reading {self.url!r} failed after {self.attempt} attempts "
                f"(transient errors, retried with backoff): {type(cause).__name__}: {cause}"
            ) from exc
        time.sleep(pause)
        self.delay = min(MAX_BACKOFF, self.delay * 2)


def call(url: str, fn: Callable):
    """``fn()`` with retries on transient errors; permanent ones become VoxrayErrors."""
    backoff = _Backoff(url)
    while True:
        try:
            return fn()
        except Exception as e:
            err = _permanent(url, e)
            if err is e:
                raise
            if err is not None:
                raise err from None
            backoff.wait_or_raise(e)


def _etag(info: dict) -> str | None:
    for key in ("ETag", "etag", "Etag", "md5Hash", "generation", "Last-Modified"):
        if info.get(key):
            return str(info[key])
    return None


# -- specs -------------------------------------------------------------------

#: Specs just made by ``RemoteSpec.for_url``: their first open needs no second HEAD.
_fresh: set = set()


@dataclass(frozen=True)
class RemoteSpec:
    """A remote object as it was when opened: URL, size, ETag, storage options."""

    url: str
    size: int
    etag: str | None
    storage_options: tuple = ()
    compression: str | None = None

    @property
    def name(self) -> str:
        return self.url

    @property
    def options(self) -> dict:
        return thaw(self.storage_options)

    @property
    def protocol(self) -> str:
        return protocol_of(self.url)

    def fs(self):
        return filesystem(self.protocol, self.storage_options)

    @classmethod
    def for_url(
        cls, url: str, storage_options: dict | None = None, compression: str | None = None
    ) -> RemoteSpec:
        """Look the object up (one HEAD request): its size and ETag."""
        opts = freeze(storage_options or {})
        fs = filesystem(protocol_of(url), opts)
        info = call(url, lambda: fs.info(url))
        if info.get("type") == "directory":
            raise ImageNotFoundError(f"{url!r} is a directory, not an image file")
        if info.get("size") is None:
            raise RemoteError(f"{url!r}: the server does not report the object's size")
        spec = cls(url, int(info["size"]), _etag(info), opts, compression)
        _fresh.add(spec)
        return spec

    def open(self) -> Source:
        raw = RemoteSource(self)
        if self.compression == "gzip":
            from .gzcache import index_hooks
            from .gzip import GzipSource

            load, store = index_hooks(self)
            return GzipSource(raw, load_index=load, on_complete=store)
        return raw


# -- fetching ranges ------------------------------------------------------------


class _Whole(Exception):
    """Raised by an HTTP fetch when the server ignored Range and sent a small object."""

    def __init__(self, body: bytes):
        super().__init__("whole object")
        self.body = body


async def _http_range(fs, url: str, start: int, stop: int, size: int, etag: str | None):
    """GET bytes ``start:stop``, refusing to download a large object by accident."""
    import aiohttp

    kw = fs.kwargs.copy()
    headers = dict(kw.pop("headers", None) or {})
    headers["Range"] = f"bytes={start}-{stop - 1}"
    if etag and etag.startswith('"'):
        headers["If-Match"] = etag  # a strong ETag: the server refuses another version
    kw.setdefault("timeout", aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT))
    session = await fs.set_session()
    async with session.get(fs.encode_url(url), headers=headers, **kw) as r:
        if r.status == 206:
            return await r.read()
        if r.status == 404:
            raise FileNotFoundError(url)
        r.raise_for_status()
        # 200: the server ignored Range; the body is the whole object.
        if start == 0 and stop == size:
            return await r.read()
        if size <= WHOLE_MAX:
            raise _Whole(await r.read())
        raise RangeNotSupportedError(
            f"{url!r}: the server ignores Range requests (it answered 200 with the whole "
            f"object, {size} bytes, for bytes {start}-{stop - 1}); voxray fetches whole objects "
            f"only up to {WHOLE_MAX} bytes: download the file and open it locally"
        )


async def _s3_range(fs, url: str, start: int, stop: int, etag: str | None):
    """GET bytes ``start:stop`` of an S3 object, refused (412) if its ETag changed.

    s3fs's ``cat_file`` cannot send ``IfMatch``; this is the same ``get_object``
    call it makes, with it.
    """
    bucket, key, version = fs.split_path(url)
    kw = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{stop - 1}"}
    if version:
        kw["VersionId"] = version
    if etag:
        kw["IfMatch"] = etag
    resp = await fs._call_s3("get_object", **kw)
    try:
        return await resp["Body"].read()
    finally:
        resp["Body"].close()


async def _each(get, fs, url, ranges, *args):
    """``get`` for every range, concurrently: bytes or the exception, in order."""
    import asyncio

    return await asyncio.gather(
        *(get(fs, url, a, b, *args) for a, b in ranges), return_exceptions=True
    )


class RemoteSource(Source):
    """Range reads of one remote object, with a block cache, retries and counters."""

    #: A request costs a round trip: the planner and coalescing read through smaller gaps.
    request_cost = 512 * 1024

    def __init__(self, spec: RemoteSpec):
        super().__init__()
        self.spec = spec
        self.name = spec.url
        self.fs = spec.fs()
        self._http = spec.protocol in ("http", "https")
        # S3 through s3fs's own get_object call, with IfMatch (see _s3_range).
        self._s3 = spec.protocol in ("s3", "s3a") and hasattr(self.fs, "_call_s3")
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._whole: bytes | None = None
        self._lock = threading.Lock()
        try:
            _fresh.remove(spec)  # looked up a moment ago, by this process
        except KeyError:
            if spec.etag is not None:
                info = call(spec.url, lambda: self.fs.info(spec.url))
                now = (int(info["size"]), _etag(info))
                if now != (spec.size, spec.etag):
                    raise FileChangedError(
                        f"{spec.url!r} changed since it was opened: (size, ETag) "
                        f"{(spec.size, spec.etag)!r} -> {now!r}; load it again"
                    ) from None

    @property
    def size(self) -> int:
        return self.spec.size

    def _get(self, ranges: list[tuple[int, int]]) -> list:
        """One attempt at each range: bytes or the exception, in order."""
        if self._http:
            from fsspec.asyn import sync

            return sync(
                self.fs.loop,
                _each,
                _http_range,
                self.fs,
                self.name,
                ranges,
                self.spec.size,
                self.spec.etag,
            )
        if self._s3:
            from fsspec.asyn import sync

            return sync(self.fs.loop, _each, _s3_range, self.fs, self.name, ranges, self.spec.etag)
        if len(ranges) == 1:
            a, b = ranges[0]
            try:
                return [self.fs.cat_file(self.name, start=a, end=b)]
            except Exception as e:
                return [e]
        try:
            return self.fs.cat_ranges(
                [self.name] * len(ranges),
                [a for a, _ in ranges],
                [b for _, b in ranges],
                on_error="return",
            )
        except Exception as e:  # the whole call failed (not per range)
            return [e] * len(ranges)

    def fetch(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes of each ``(start, stop)`` range, each retried on its own."""
        out: list[bytes | None] = [None] * len(ranges)
        if self._whole is not None:
            return [self._whole[a:b] for a, b in ranges]
        todo = list(range(len(ranges)))
        backoff = _Backoff(self.name)
        while todo:
            results = self._get([ranges[i] for i in todo])
            failed, last = [], None
            for i, res in zip(todo, results):
                a, b = ranges[i]
                if isinstance(res, _Whole):
                    return self._serve_whole(res.body, ranges)
                if isinstance(res, BaseException):
                    err = _permanent(self.name, res)
                    if err is res:
                        raise res
                    if err is not None:
                        raise err from None
                    failed.append(i)
                    last = res
                    continue
                if len(res) != b - a:
                    raise self._short(a, b, len(res))
                out[i] = res
                self.stats.add(requests=1, bytes_read=len(res))
            if failed:
                self.stats.add(retries=len(failed))
                backoff.wait_or_raise(last)
            todo = failed
        return out  # type: ignore[return-value]

    def _short(self, a: int, b: int, got: int) -> VoxrayError:
        if got == self.spec.size and b - a < self.spec.size:
            return RangeNotSupportedError(
                f"{self.name!r}: the server ignores Range requests (it sent the whole object "
                f"for bytes {a}-{b - 1}); download the file and open it locally"
            )
        return RemoteError(f"{self.name!r}: asked for bytes {a}-{b - 1}, got {got} bytes")

    def _serve_whole(self, body: bytes, ranges) -> list[bytes]:
        if len(body) != self.spec.size:
            raise RemoteError(
                f"{self.name!r}: the server sent {len(body)} bytes for an object of "
                f"{self.spec.size}"
            )
        self.stats.add(requests=1, bytes_read=len(body))
        self._whole = body
        return [body[a:b] for a, b in ranges]

    def _cached(self, start: int, stop: int) -> bytes:
        """Bytes ``start:stop`` through the block cache (small reads)."""
        first, last = start // BLOCK, (stop - 1) // BLOCK
        parts: dict[int, bytes] = {}
        with self._lock:
            for b in range(first, last + 1):
                block = self._blocks.get(b)
                if block is not None:
                    self._blocks.move_to_end(b)
                    parts[b] = block
        missing = [b for b in range(first, last + 1) if b not in parts]
        self.stats.add(cache_hits=len(parts), cache_misses=len(missing))
        if missing:
            size = self.spec.size
            blobs = self.fetch([(b * BLOCK, min(size, (b + 1) * BLOCK)) for b in missing])
            with self._lock:
                for b, blob in zip(missing, blobs):
                    parts[b] = blob
                    self._blocks[b] = blob
                    while len(self._blocks) > CACHE_BLOCKS:
                        self._blocks.popitem(last=False)
        whole = b"".join(parts[b] for b in range(first, last + 1))
        off = start - first * BLOCK
        return whole[off : off + stop - start]

    def readinto(self, offset: int, buffer) -> None:
        self.read_many([(offset, buffer)])

    def read_many(self, requests: Sequence[tuple[int, object]]) -> None:
        from ..planning import coalesce_ranges

        views = []
        for off, buf in requests:
            mv = memoryview(buf).cast("B")
            if off < 0 or off + mv.nbytes > self.spec.size:
                raise TruncatedFileError(
                    f"{self.name!r} has {self.spec.size} bytes; cannot read {mv.nbytes} bytes "
                    f"at offset {off}"
                )
            if mv.nbytes:
                views.append((off, mv))
        self.stats.add(bytes_returned=sum(mv.nbytes for _, mv in views))
        large = []
        for off, mv in views:
            if mv.nbytes <= BLOCK:
                mv[:] = self._cached(off, off + mv.nbytes)
            else:
                large.append((off, mv))
        if not large:
            return
        # Merge neighbours, then cut the merged ranges into pieces fetched concurrently.
        groups = coalesce_ranges([(off, mv.nbytes) for off, mv in large], self.request_cost)
        pieces = [
            (a, min(a + PIECE, g_off + g_len))
            for g_off, g_len, _ in groups
            for a in range(g_off, g_off + g_len, PIECE)
        ]
        for i in range(0, len(pieces), BATCH):
            batch = pieces[i : i + BATCH]
            for (a, b), blob in zip(batch, self.fetch(batch)):
                for off, mv in large:
                    lo, hi = max(a, off), min(b, off + mv.nbytes)
                    if lo < hi:
                        mv[lo - off : hi - off] = blob[lo - a : hi - a]

    def read_prefix(self, nbytes: int) -> bytes:
        n = min(nbytes, self.spec.size)
        return self._cached(0, n) if n else b""
