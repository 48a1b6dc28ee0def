"""Where gzip seek indexes live between processes.

An index is looked for, in order, as a sidecar next to the file
(``name.nii.gz.gzi``, written by ``voxray index --sidecar``) and in the cache
directory (``$VOXRAY_CACHE_DIR``, default the user cache dir), under a key made
of the path, size and mtime. The index records the file's size and mtime; an
index for another version of the file, or a damaged one, is ignored (and a
damaged cache entry removed), so the file is indexed again rather than misread.
Writes are atomic (temporary file, then rename).
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


def _identity(spec) -> dict:
    return {"size": spec.size, "mtime_ns": spec.mtime_ns}


def sidecar_path(spec) -> Path:
    return Path(spec.path + ".gzi")


def cache_path(spec) -> Path:
    key = hashlib.sha256(f"{spec.path}\0{spec.size}\0{spec.mtime_ns}".encode()).hexdigest()
    return cache_dir() / f"{key[:40]}.gzi"


def find_index(spec) -> Path | None:
    """Where a stored index for this version of the file is (not yet validated), if any."""
    for p in (sidecar_path(spec), cache_path(spec)):
        if p.is_file():
            return p
    return None


def load_index(spec) -> GzipIndex | None:
    """A valid stored index for ``spec``, or None."""
    for p, is_cache in ((sidecar_path(spec), False), (cache_path(spec), True)):
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


def store_index(spec, index: GzipIndex, sidecar: bool = False) -> Path | None:
    """Write ``index`` atomically to the cache (or beside the file); None if not writable."""
    target = sidecar_path(spec) if sidecar else cache_path(spec)
    data = index.to_bytes(_identity(spec))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".gzi", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        if sidecar:
            raise
        warnings.warn(
            f"voxray could not store the gzip index in {target.parent}: {e}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return target


def index_hooks(spec):
    """``(load_index, on_complete)`` callbacks for a :class:`GzipSource` of ``spec``."""
    return (lambda: load_index(spec)), (lambda index: store_index(spec, index))
