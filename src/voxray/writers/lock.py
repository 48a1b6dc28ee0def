"""One writer per local destination: an exclusive ``flock`` on a lock file beside it.

A writer of ``DIR/NAME`` (a file, the image file of a pair, a Zarr store) opens
``DIR/.NAME.voxray-lock`` and takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on it before it
creates anything. If another open file description holds the lock (another process, or
another writer in this one), the writer fails at once with
:class:`~voxray.errors.DestinationLockedError` naming the destination and the holder
(pid, host, start time and the files it writes, which the holder writes into the lock
file), and writes nothing. There is no waiting: two jobs writing one output is a bug in
the caller, better reported than serialised.

The kernel releases a ``flock`` when its holder dies, even by ``SIGKILL``, so a killed
writer never blocks the next one; the lock file it leaves is only a name (and
``voxray clean`` removes it). Because a releasing writer (or ``voxray clean``) unlinks
the lock file, a new writer checks after locking that the file it holds is still the
one at that path (same device and inode) and starts again otherwise; without that
check two writers could each hold a lock on a different inode of the same name.

Limits: ``flock`` is advisory (only voxray writers take it), local to one machine on
some network file systems (older NFS), and means nothing for remote stores (``s3://``):
those are not locked; the Zarr writer writes their metadata last instead.
"""

from __future__ import annotations

import contextlib
import datetime
import errno as errno_codes
import fcntl
import json
import os
import socket

from ..errors import DestinationLockedError

__all__ = ["LOCK_SUFFIX", "DestinationLock", "describe", "holder", "is_held", "lock_path"]

#: What follows ``.NAME`` in a lock file's name.
LOCK_SUFFIX = ".voxray-lock"


def lock_path(dest: str) -> str:
    """The lock file of a destination: ``DIR/.NAME.voxray-lock``.

    >>> lock_path("/data/sub-01_bold.nii.gz")
    '/data/.sub-01_bold.nii.gz.voxray-lock'
    """
    d, base = os.path.split(os.path.abspath(os.fspath(dest).rstrip("/")))
    return os.path.join(d, f".{base}{LOCK_SUFFIX}")


def _read_holder(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode())
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def holder(path: str) -> dict:
    """What the holder of lock file ``path`` wrote: ``pid``, ``host``, ``started``,
    ``destination``, ``files`` ({} if unreadable, empty or absent).

    >>> import tempfile, os
    >>> dest = os.path.join(tempfile.mkdtemp(), "out.nii")
    >>> with DestinationLock(dest):
    ...     holder(lock_path(dest))["pid"] == os.getpid()
    True
    >>> holder(lock_path(dest))
    {}
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def describe(info: dict) -> str:
    """A holder as a message says it.

    >>> describe({"pid": 12, "host": "node1", "started": "2026-01-02T03:04:05+00:00"})
    'pid 12 on host node1 since 2026-01-02T03:04:05+00:00'
    """
    if not info.get("pid"):
        return "a writer that has not yet said who it is"
    return f"pid {info['pid']} on host {info.get('host', '?')} since {info.get('started', '?')}"


def is_held(path: str) -> bool:
    """Whether some live writer holds lock file ``path`` (False if it does not exist).

    The probe takes the lock for an instant when it is free; a writer arriving in that
    instant is refused as if another writer held it.

    >>> import tempfile, os
    >>> dest = os.path.join(tempfile.mkdtemp(), "out.nii")
    >>> with DestinationLock(dest):
    ...     is_held(lock_path(dest))
    True
    >>> is_held(lock_path(dest))
    False
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken by the probe
    return False


class DestinationLock:
    """An exclusive lock on a local destination, held from :meth:`acquire` to
    :meth:`release` (or as a context manager).

    Parameters
    ----------
    dest : str
        The destination (its lock file is :func:`lock_path` of it).
    files : iterable of str, optional
        Every file the writer makes (a pair's header and ``.mat``), recorded in the lock
        file so ``voxray clean`` leaves their temporary files alone while it is held.

    Examples
    --------
    >>> import tempfile, os
    >>> dest = os.path.join(tempfile.mkdtemp(), "out.nii")
    >>> with DestinationLock(dest):
    ...     try:
    ...         DestinationLock(dest).acquire()
    ...     except DestinationLockedError as e:
    ...         print("refused:", "out.nii" in str(e))
    refused: True
    >>> os.path.exists(lock_path(dest))
    False
    """

    def __init__(self, dest: str, files=()):
        self.dest = os.path.abspath(os.fspath(dest))
        self.path = lock_path(self.dest)
        self.files = sorted({self.dest, *(os.path.abspath(f) for f in files)})
        self.fd = -1

    def acquire(self) -> DestinationLock:
        """Take the lock or raise :class:`DestinationLockedError` (no waiting). Other
        ``OSError``\\ s (an unwritable directory) propagate for the caller to report."""
        if self.fd >= 0:
            raise RuntimeError(f"{self.path!r} is already held by this DestinationLock")
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_holder(fd)
                os.close(fd)
                raise DestinationLockedError(
                    errno_codes.EWOULDBLOCK,
                    f"{self.dest!r} is being written by another writer ({describe(info)}; "
                    f"lock file {self.path!r}); nothing was written. Wait for it to finish, or "
                    f"write elsewhere",
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                mine = os.fstat(fd)
                there = os.stat(self.path)
            except FileNotFoundError:  # the previous holder removed it: start again
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
                os.close(fd)  # we locked an unlinked file; the path is a new one
                continue
            break
        self.fd = fd
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "destination": self.dest,
            "files": self.files,
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:  # a full disk, a read-only descriptor: the lock holds all the same
            pass
        return self

    def _open(self) -> int:
        cloexec = getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | cloexec, 0o666)
        except PermissionError:
            # another user's stale lock file in a shared directory: flock works on a
            # read-only descriptor too (the holder note is then not written)
            return os.open(self.path, os.O_RDONLY | cloexec)

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still held: a waiting opener sees a new inode
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> DestinationLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
