"""Byte sources, and the plain-value specs that graph tasks carry instead of handles.

A *spec* is a small frozen dataclass (path, size, mtime, compression) that
pickles to a few hundred bytes. :func:`open_source` turns it into a
:class:`~voxray.sources.base.Source` through a per-process cache, so each
worker process opens each file (and loads each gzip index) once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from ..errors import NotAnImageError
from .base import Source, SourceStats, io_pool, io_workers, is_url
from .fileobj import FileObjSource
from .gzindex import DEFAULT_SPACING, GzipIndex
from .gzip import GzipSource, flush_index_writes
from .local import LocalFileSource, file_identity

__all__ = [
    "DEFAULT_SPACING",
    "FileObjSource",
    "FileObjSpec",
    "GzipIndex",
    "GzipSource",
    "LocalFileSource",
    "LocalSpec",
    "Source",
    "SourceStats",
    "clear_cache",
    "file_identity",
    "flush_index_writes",
    "io_pool",
    "io_workers",
    "is_url",
    "local_spec",
    "remote_locator",
    "open_source",
]


@dataclass(frozen=True)
class LocalSpec:
    """A local file as it was when opened: ``(size, mtime_ns)`` detect later changes, and
    the inode tells a file replaced in place (same size, same timestamp tick) from the old
    one, so the per-process source cache never serves the old file's bytes."""

    path: str
    size: int
    mtime_ns: int
    compression: str | None = None  # None or "gzip"
    inode: int = 0

    @classmethod
    def for_path(cls, path: str, compression: str | None = None) -> LocalSpec:
        path = os.path.abspath(os.fspath(path))
        size, mtime_ns = file_identity(path)
        try:
            inode = os.stat(path).st_ino
        except OSError:
            inode = 0
        return cls(path, size, mtime_ns, compression, inode)

    @property
    def name(self) -> str:
        return self.path

    def open(self) -> Source:
        raw = LocalFileSource(self.path, (self.size, self.mtime_ns))
        if self.compression == "gzip":
            from .gzcache import index_hooks

            load, store = index_hooks(self)
            return GzipSource(raw, load_index=load, on_complete=store)
        return raw


@dataclass(frozen=True, eq=False)
class FileObjSpec:
    """A file-like object (compared by identity); for nibabel's ``ArrayProxy(fileobj, ...)``."""

    fileobj: object

    @property
    def name(self) -> str:
        return getattr(self.fileobj, "name", None) or repr(self.fileobj)

    def open(self) -> Source:
        return FileObjSource(self.fileobj)


_MAX_OPEN = 64
_cache: OrderedDict[object, Source] = OrderedDict()
_cache_lock = threading.Lock()


def open_source(spec) -> Source:
    """The process's source for ``spec``, opened on first use and reused after."""
    with _cache_lock:
        src = _cache.get(spec)
        if src is not None:
            _cache.move_to_end(spec)
            return src
    src = spec.open()
    with _cache_lock:
        existing = _cache.get(spec)
        if existing is not None:
            return existing
        _cache[spec] = src
        while len(_cache) > _MAX_OPEN:
            _cache.popitem(last=False)  # closed when the last reader drops it
    return src


def clear_cache() -> None:
    """Store pending gzip indexes, then forget every open source (they close once no
    reader holds them): what the next process would see."""
    flush_index_writes()
    with _cache_lock:
        _cache.clear()


def _reset_after_fork() -> None:
    global _cache_lock
    _cache.clear()
    _cache_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def local_spec(path: str) -> LocalSpec:
    """Spec of a local file, with its compression found from its magic bytes."""
    spec = LocalSpec.for_path(path)
    head = open_source(spec).read(0, min(4, spec.size))
    if head[:2] == b"\x1f\x8b":
        return replace(spec, compression="gzip")
    if head[:3] == b"BZh" or head[:4] == b"\x28\xb5\x2f\xfd":
        kind = "bzip2" if head[:3] == b"BZh" else "zstd"
        raise NotAnImageError(
            f"{path!r} is {kind}-compressed; voxray reads uncompressed and gzip-compressed "
            f"images (recompress it with gzip, or decompress it)"
        )
    return spec


#: Object names read as gzip streams (remote objects are not sniffed before the first read).
GZIP_SUFFIXES = (".gz", ".mgz")


def remote_locator(storage_options: dict | None = None):
    """``locate`` for fsspec URLs: the object's spec (size, ETag), gzip by its suffix
    (``.gz``, and FreeSurfer's ``.mgz``)."""

    def locate(name: str):
        from .remote import RemoteSpec

        compression = "gzip" if name.lower().split("?", 1)[0].endswith(GZIP_SUFFIXES) else None
        return RemoteSpec.for_url(name, storage_options, compression)

    return locate
