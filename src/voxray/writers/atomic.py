"""Atomic file replacement: a killed writer never leaves something that looks complete.

Data goes to a hidden temporary file in the destination's directory (same file
system, so the final ``os.replace`` is atomic); it is fsynced before the rename
and the directory after it. On any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil

from ..errors import DestinationExistsError

__all__ = ["AtomicFile", "StreamTarget", "replace_dir", "temp_name"]


def temp_name(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.voxray-{secrets.token_hex(4)}.tmp")


class AtomicFile:
    """``with AtomicFile(path) as f:`` write ``f.fd`` / ``f.path``; renamed on success.

    ``size`` preallocates the file (``ftruncate``) so other processes can write
    regions of it by path. ``commit()`` may be called early; several AtomicFiles
    can be committed in an order of the caller's choosing (pairs).
    """

    def __init__(self, path: str, size: int | None = None):
        self.final = os.path.abspath(os.fspath(path))
        self.path = temp_name(self.final)
        self.fd = os.open(
            self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o666
        )
        self.committed = False
        if size is not None:
            os.ftruncate(self.fd, size)

    def write(self, data) -> int:
        mv = memoryview(data).cast("B")
        done = 0
        while done < mv.nbytes:
            done += os.write(self.fd, mv[done:])
        return done

    def tell(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_CUR)

    def sync(self) -> None:
        os.fsync(self.fd)

    def commit(self) -> None:
        if self.committed:
            return
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.replace(self.path, self.final)
        self.committed = True
        with contextlib.suppress(OSError):
            dfd = os.open(os.path.dirname(self.final), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class StreamTarget:
    """An open file object as a write target (nibabel's ``FileHolder(fileobj=..., pos=...)``):
    written in order from ``pos``; ``commit``/``abort`` leave it open."""

    path = None

    def __init__(self, fileobj, pos: int = 0):
        self.fileobj = fileobj
        fileobj.seek(pos)  # as nibabel's FileHolder.get_prepare_fileobj

    def write(self, data) -> int:
        mv = memoryview(data).cast("B")
        self.fileobj.write(mv)
        return mv.nbytes

    def sync(self) -> None:
        flush = getattr(self.fileobj, "flush", None)
        if flush is not None:
            flush()

    def commit(self) -> None:
        self.sync()

    def abort(self) -> None:
        pass


def replace_dir(partial: str, final: str, overwrite: bool) -> None:
    """Move a finished directory (a store) into place atomically: the old one aside
    first, then removed; the parent directory fsynced."""
    aside = None
    if os.path.exists(final):
        if not overwrite:
            raise DestinationExistsError(
                f"{final!r} already exists; pass overwrite=True (--overwrite) to replace it"
            )
        aside = f"{partial}.old"
        os.replace(final, aside)
    os.replace(partial, final)
    if aside:
        shutil.rmtree(aside, ignore_errors=True)
    try:
        fd = os.open(os.path.dirname(final), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass
