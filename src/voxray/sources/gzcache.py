"""Where gzip seek indexes live between processes.

An index is looked for, in order, as a sidecar next to the file
(``name.nii.gz.gzi``, written by ``voxray index --sidecar``) and in the cache
directory (``$VOXRAY_CACHE_DIR``, default the user cache dir), under a key made
of the path, size and mtime. The index records the file's size and mtime; an
index for another version of the file, or a damaged one, is ignored (and a
damaged cache entry removed), so the file is indexed again rather than misread.
Writes are atomic (temporary file ``.tmp-XXXXXXXX.gzi``, fsynced, then renamed; removed
on failure, and by ``voxray clean`` if a killed writer left it). A failed cache write
warns and never fails the read that built the index; ``voxray index`` reports it.

Remote objects work the same way with the URL, size and ETag as identity; their
sidecar is an object next to theirs (``s3://bucket/key.nii.gz.gzi``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from pathlib import Path

from .gzindex import GzipIndex, IndexFormatError

__all__ = ["cache_dir", "find_index", "index_hooks", "load_index", "sidecar_path", "store_index"]


def cache_dir() -> Path:
    env = os.environ.get("VOXRAY_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("voxray")) / "gzindex"


def _remote(spec) -> bool:
    return hasattr(spec, "etag")


def _identity(spec) -> dict:
    """What a stored index must match: size and mtime (local), size and ETag (remote)."""
    if _remote(spec):
        return {"size": spec.size, "etag": spec.etag}
    return {"size": spec.size, "mtime_ns": spec.mtime_ns}


def sidecar_path(spec):
    """``NAME.gzi`` next to the file (a Path), or next to the object (a URL)."""
    if _remote(spec):
        return spec.url + ".gzi"
    return Path(spec.path + ".gzi")


def cache_path(spec) -> Path:
    if _remote(spec):
        key = f"{spec.url}\0{spec.size}\0{spec.etag}"
    else:
        key = f"{spec.path}\0{spec.size}\0{spec.mtime_ns}\0{getattr(spec, 'inode', 0)}"
    return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.gzi"


def _remote_sidecar(spec) -> bytes | None:
    """The sidecar object's bytes, or None if there is none (or it cannot be read)."""
    from ..errors import VoxrayError
    from .remote import RemoteSource, RemoteSpec

    try:
        side = RemoteSpec.for_url(sidecar_path(spec), spec.options)
        return RemoteSource(side).read(0, side.size)
    except (VoxrayError, OSError):
        return None


def _places(spec) -> list[tuple[object, bool]]:
    """Where an index may be, in the order looked at: ``(place, is_cache)``.

    A local file's sidecar wins over the cache. For a remote object the cache is
    looked at first: it costs no round trip, and an index valid for the object's
    ETag is as good as its sidecar's.
    """
    places = [(sidecar_path(spec), False), (cache_path(spec), True)]
    return places[::-1] if _remote(spec) else places


def _exists(place, spec) -> bool:
    if isinstance(place, str):  # a sidecar object
        from ..errors import VoxrayError
        from .remote import call

        try:
            return bool(call(place, lambda: spec.fs().exists(place)))
        except (VoxrayError, OSError):
            return False
    return place.is_file()


def find_index(spec):
    """Where a stored index for this version of the file is (not yet validated), if any."""
    return next((p for p, _ in _places(spec) if _exists(p, spec)), None)


def load_index(spec) -> GzipIndex | None:
    """A valid stored index for ``spec``, or None (looked for in :func:`_places` order)."""
    for p, is_cache in _places(spec):
        if isinstance(p, str):  # a remote sidecar object
            data = _remote_sidecar(spec)
            if data is None:
                continue
        else:
            try:
                data = p.read_bytes()
            except OSError:
                continue
        try:
            return GzipIndex.from_bytes(data, _identity(spec))
        except (IndexFormatError, ValueError, KeyError):
            if is_cache:
                with contextlib.suppress(OSError):
                    p.unlink()
    return None


def store_index(spec, index: GzipIndex, sidecar: bool = False, strict: bool = False):
    """Write ``index`` atomically to the cache (or beside the file, ``sidecar``).

    The cache is an optimisation: a failed cache write (a full disk, a read-only cache
    directory) warns and returns None, and the read that built the index goes on. A
    sidecar write, or any write with ``strict`` (``voxray index``), raises
    :class:`~voxray.errors.WriteFailedError` naming the index file instead. Either way
    the temporary file is removed.
    """
    target = sidecar_path(spec) if sidecar else cache_path(spec)
    data = index.to_bytes(_identity(spec))
    if isinstance(target, str):  # a sidecar object next to a remote object
        from .remote import call

        call(target, lambda: spec.fs().pipe_file(target, data))  # one PUT: atomic
        return target
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".gzi", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        reason = e.strerror or str(e)
        if sidecar or strict:
            from ..errors import WriteFailedError

            raise WriteFailedError(
                e.errno,
                f"writing the gzip index {str(target)!r} failed: {reason}; nothing was "
                f"left behind",
            ) from e
        warnings.warn(
            f"voxray could not store the gzip index in {str(target.parent)!r} ({reason}); "
            f"the file will be indexed again when next opened",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return target


def index_hooks(spec):
    """``(load_index, on_complete)`` callbacks for a :class:`GzipSource` of ``spec``."""
    return (lambda: load_index(spec)), (lambda index: store_index(spec, index))
