"""Atomic file replacement: a killed writer never leaves something that looks complete.

Data goes to a hidden temporary file in the destination's directory (same file
system, so the final ``os.replace`` is atomic); it is fsynced before the rename
and the directory after it. On any error the temporary file is removed.

:func:`guarded` wraps a whole write of one destination: it takes the destination's
lock (:mod:`.lock`), removes that destination's stale temporaries left by killed
writers (:mod:`.clean`), and turns any ``OSError`` the file system raises (a full disk,
a file-size limit, a quota, an I/O error, a read-only or forbidden directory), in this
thread, a pipeline thread or a dask task, into one
:class:`~voxray.errors.WriteFailedError` that names the destination, says the OS's
reason and keeps its ``errno``. The temporaries are removed by the writers' own
``abort`` before the error leaves them, so the old destination is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator

from ..errors import DestinationExistsError, VoxrayError, WriteFailedError

__all__ = ["AtomicFile", "StreamTarget", "guarded", "replace_dir", "temp_name", "write_failed"]


def write_failed(error: OSError, dest: str, files: Iterable[str] = ()) -> WriteFailedError:
    """``error`` (from the file system, while writing ``dest`` and ``files``, a pair's
    other files) as a WriteFailedError with the same ``errno``, naming the destination
    and the OS's reason.

    >>> import errno
    >>> e = write_failed(OSError(errno.ENOSPC, "No space left on device"), "/d/x.nii")
    >>> e.errno == errno.ENOSPC, str(e)
    (True, "[Errno 28] writing '/d/x.nii' failed: No space left on device; the destination \
was left as it was and the partial output removed")
    """
    reason = error.strerror or str(error) or type(error).__name__
    where = getattr(error, "filename", None)
    detail = f" ({where})" if where and os.path.abspath(str(where)) != dest else ""
    names = " and ".join(repr(n) for n in dict.fromkeys([dest, *files]))
    err = WriteFailedError(
        error.errno,
        f"writing {names} failed: {reason}{detail}; the destination was left as it was "
        f"and the partial output removed",
    )
    err.__cause__ = error
    return err


@contextlib.contextmanager
def guarded(dest: str, files: Iterable[str] = (), lock: bool = True) -> Iterator[None]:
    """Write ``dest`` (and ``files``, a pair's other files) under its lock, after removing
    its stale temporaries; file-system errors become :class:`WriteFailedError`.

    Parameters
    ----------
    dest : str
        The destination's primary path (a pair's image file, a store's directory).
    files : iterable of str
        Other files written with it; their stale temporaries are removed too.
    lock : bool
        Take the destination lock (False for destinations that are not local paths).

    Examples
    --------
    >>> import tempfile, os
    >>> dest = os.path.join(tempfile.mkdtemp(), "x.nii")
    >>> with guarded(dest):
    ...     with AtomicFile(dest) as f:
    ...         _ = f.write(b"data")
    >>> open(dest, "rb").read()
    b'data'
    """
    from .clean import remove_stale_of
    from .lock import DestinationLock

    dest = os.path.abspath(os.fspath(dest))
    files = [os.path.abspath(os.fspath(f)) for f in files]
    if lock and not os.path.isdir(os.path.dirname(dest)):
        raise WriteFailedError(
            errno.ENOENT,
            f"cannot write {dest!r}: the directory {os.path.dirname(dest)!r} does not exist",
        )
    held = DestinationLock(dest, files) if lock else None
    try:
        if held is not None:
            held.acquire()
            remove_stale_of([dest, *files])
        yield
    except VoxrayError:
        raise
    except OSError as e:
        raise write_failed(e, dest, files) from e
    finally:
        if held is not None:
            held.release()


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
            try:
                os.ftruncate(self.fd, size)  # EFBIG at once past a file-size limit
            except BaseException:
                self.abort()
                raise

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
        os.fsync(self.fd)  # ENOSPC / EIO of delayed allocation surface here, before the rename
        fd, self.fd = self.fd, -1
        os.close(fd)
        os.replace(self.path, self.final)
        self.committed = True
        with contextlib.suppress(OSError):
            dfd = os.open(os.path.dirname(self.final), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def abort(self) -> None:
        """Close and remove the temporary file (never raises: it runs while another
        error is on its way out)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        if not self.committed:
            with contextlib.suppress(OSError):
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
    first, then removed; the parent directory fsynced. If the move fails the old one is
    put back. Call it holding the destination's lock (an aside directory left by a
    killed writer is then dead, and removed first)."""
    aside = None
    if os.path.exists(final):
        if not overwrite:
            raise DestinationExistsError(
                f"{final!r} already exists; pass overwrite=True (--overwrite) to replace it"
            )
        aside = f"{partial}.old"
        if os.path.lexists(aside):
            shutil.rmtree(aside)
        os.replace(final, aside)
    try:
        os.replace(partial, final)
    except BaseException:
        if aside:
            os.replace(aside, final)
        raise
    if aside:
        shutil.rmtree(aside, ignore_errors=True)
    try:
        fd = os.open(os.path.dirname(final), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass
