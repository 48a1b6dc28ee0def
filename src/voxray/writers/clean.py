"""Finding and removing what killed writers leave behind.

A writer killed mid-write (``SIGKILL``, a power cut, a job scheduler's time limit)
cannot remove its temporaries; nothing it leaves looks complete, but it takes space.
voxray's leftovers have names nothing else uses, and only those are ever touched:

=====================================  =================================================
``.NAME.voxray-XXXXXXXX.tmp``          a file being written (:class:`.atomic.AtomicFile`)
``.NAME.voxray-partial``               a Zarr store being built (a rerun resumes it)
``.NAME.voxray-partial.old``           a replaced store moved aside, not yet removed
``.NAME.voxray-lock``                  a lock file (:mod:`.lock`) whose lock nobody holds
``.tmp-XXXXXXXX.gzi``                  a gzip index being stored (cache or sidecar)
=====================================  =================================================

A leftover is removed only when it is older than a threshold (its newest modification
time, for a directory the newest inside it) and no live writer holds its destination:
:func:`clean_stale` takes the destination's lock itself while it removes that
destination's leftovers, so a writer starting at that moment is refused rather than
having its store removed under it (and a destination a writer holds is skipped).

Two ways in: ``voxray clean`` / :func:`clean_stale` over directories, and
:func:`remove_stale_of`, which every local write calls (holding the destination's lock)
for that destination's stale temporaries and aside directories. A partial Zarr store is
not removed on the next write: the writer resumes it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import DestinationLockedError, InputError
from .lock import LOCK_SUFFIX, DestinationLock, holder, is_held

__all__ = [
    "STALE_AFTER",
    "Leftover",
    "classify",
    "clean_stale",
    "find_leftovers",
    "parse_age",
    "remove_stale_of",
]

#: Seconds after which a leftover of a writer that no longer holds its destination is
#: stale (an hour: far longer than any pause between two writes of a live writer).
STALE_AFTER = 3600.0

_PATTERNS = (
    ("temporary file", re.compile(r"^\.(?P<dest>.+)\.voxray-[0-9a-f]{8}\.tmp$")),
    ("partial store", re.compile(r"^\.(?P<dest>.+)\.voxray-partial$")),
    ("aside store", re.compile(r"^\.(?P<dest>.+)\.voxray-partial\.old$")),
    ("lock file", re.compile(r"^\.(?P<dest>.+)" + re.escape(LOCK_SUFFIX) + "$")),
    ("index temporary", re.compile(r"^\.tmp-[A-Za-z0-9_]{8}\.gzi$")),
)


def classify(name: str) -> tuple[str, str | None] | None:
    """``(kind, destination name)`` of a voxray leftover's file name, or None.

    >>> classify(".bold.nii.gz.voxray-0a1b2c3d.tmp")
    ('temporary file', 'bold.nii.gz')
    >>> classify(".t1.nii.zarr.voxray-partial")
    ('partial store', 't1.nii.zarr')
    >>> classify("bold.nii.gz.tmp") is None
    True
    """
    for kind, pattern in _PATTERNS:
        m = pattern.match(name)
        if m:
            return kind, m.groupdict().get("dest")
    return None


@dataclass(frozen=True)
class Leftover:
    """A leftover found: its path, kind, destination (None for index temporaries),
    bytes it takes and age in seconds."""

    path: str
    kind: str
    dest: str | None
    size: int
    age: float

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "kind": self.kind,
            "destination": self.dest,
            "bytes": self.size,
            "age_seconds": round(self.age, 1),
        }


def _measure(path: str, st: os.stat_result) -> tuple[int, float]:
    """Bytes taken and newest mtime (the newest inside a directory)."""
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size, st.st_mtime
    size, newest = 0, st.st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                s = os.lstat(os.path.join(root, name))
                newest = max(newest, s.st_mtime)
                if not stat.S_ISDIR(s.st_mode):
                    size += s.st_size
    return size, newest


def _held_names(directory: str, names: Iterable[str]) -> set[str]:
    """Base names of the files the writers holding locks in ``directory`` write."""
    held = set()
    for name in names:
        found = classify(name)
        if found and found[0] == "lock file":
            path = os.path.join(directory, name)
            if is_held(path):
                held.add(found[1])
                held.update(os.path.basename(f) for f in holder(path).get("files", []))
    return held


def find_leftovers(
    paths: Iterable[str] | None = None,
    older_than: float = STALE_AFTER,
    recursive: bool = False,
    cache: bool = False,
) -> list[Leftover]:
    """voxray's leftovers in the directories ``paths`` (default: the current one) older
    than ``older_than`` seconds whose destination no live writer holds.

    Parameters
    ----------
    paths : iterable of str, optional
        Directories to look in (not their subdirectories unless ``recursive``).
    older_than : float
        Minimum age in seconds.
    recursive : bool
        Look in subdirectories too (never inside a leftover, nor through symlinks).
    cache : bool
        Look in the gzip index cache directory too.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> open(os.path.join(d, ".x.nii.voxray-0a1b2c3d.tmp"), "wb").close()
    >>> [(x.kind, os.path.basename(x.dest)) for x in find_leftovers([d], older_than=0)]
    [('temporary file', 'x.nii')]
    >>> find_leftovers([d], older_than=3600)
    []
    """
    dirs = [os.fspath(p) for p in (paths if paths is not None else [os.curdir])]
    if cache:
        from ..sources.gzcache import cache_dir

        if cache_dir().is_dir():
            dirs.append(str(cache_dir()))
    for d in dirs:
        if not os.path.isdir(d):
            raise InputError(f"{d!r} is not a directory; voxray clean looks in directories")
    now = time.time()
    found: list[Leftover] = []
    seen: set[str] = set()
    for top in dirs:
        walk = os.walk(top) if recursive else [(top, [], os.listdir(top))]
        for directory, subdirs, files in walk:
            names = sorted(set(subdirs) | set(files))
            subdirs[:] = [s for s in subdirs if classify(s) is None]
            held = _held_names(directory, names)
            for name in names:
                kind_dest = classify(name)
                if kind_dest is None:
                    continue
                kind, dest = kind_dest
                path = os.path.abspath(os.path.join(directory, name))
                if path in seen or (dest is not None and dest in held):
                    continue
                seen.add(path)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    continue
                size, newest = _measure(path, st)
                if now - newest < older_than:
                    continue
                if kind == "lock file" and is_held(path):
                    continue
                dest_path = os.path.join(os.path.dirname(path), dest) if dest else None
                found.append(Leftover(path, kind, dest_path, size, now - newest))
    return found


def _remove(item: Leftover) -> bool:
    """Remove one leftover, holding its destination's lock (False if a writer holds it)."""
    if item.kind == "lock file":
        try:  # taking and releasing the lock removes the file, inode-safely
            DestinationLock(item.dest).acquire().release()
        except DestinationLockedError:
            return False
        except OSError as e:
            warnings.warn(
                f"voxray clean could not remove {item.path!r}: {e.strerror or e}",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        return True
    lock = DestinationLock(item.dest) if item.dest is not None else None
    try:
        if lock is not None:
            lock.acquire()
        if os.path.isdir(item.path) and not os.path.islink(item.path):
            shutil.rmtree(item.path)
        else:
            os.unlink(item.path)
    except (DestinationLockedError, FileNotFoundError):
        return False  # a writer took it meanwhile, or someone else removed it
    except OSError as e:
        warnings.warn(
            f"voxray clean could not remove {item.path!r}: {e.strerror or e}",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    finally:
        if lock is not None:
            lock.release()
    return True


def clean_stale(
    paths: Iterable[str] | None = None,
    older_than: float = STALE_AFTER,
    dry_run: bool = False,
    recursive: bool = False,
    cache: bool = False,
) -> list[Leftover]:
    """Remove voxray's stale leftovers (see :func:`find_leftovers`); return what was
    removed (with ``dry_run``: what would be, removing nothing). A leftover that cannot
    be removed (a read-only directory) is skipped with a ``RuntimeWarning``.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> open(os.path.join(d, ".x.nii.voxray-0a1b2c3d.tmp"), "wb").close()
    >>> open(os.path.join(d, "x.nii.tmp"), "wb").close()  # not voxray's: never touched
    >>> [os.path.basename(x.path) for x in clean_stale([d], older_than=0)]
    ['.x.nii.voxray-0a1b2c3d.tmp']
    >>> sorted(os.listdir(d))
    ['x.nii.tmp']
    """
    found = find_leftovers(paths, older_than, recursive, cache)
    if dry_run:
        return found
    return [item for item in found if _remove(item)]


def remove_stale_of(files: Iterable[str], older_than: float | None = None) -> list[str]:
    """Remove the stale temporary files and aside directories of the destinations
    ``files`` (called by a writer holding their lock); return the paths removed.

    ``older_than`` defaults to :data:`STALE_AFTER` (read at each call). A partial store is
    kept: the Zarr writer resumes it.
    """
    if older_than is None:
        older_than = STALE_AFTER
    removed = []
    now = time.time()
    for f in files:
        directory, base = os.path.split(os.path.abspath(f))
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            found = classify(name)
            if (
                found is None
                or found[1] != base
                or found[0] not in ("temporary file", "aside store")
            ):
                continue
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)
                if now - _measure(path, st)[1] < older_than:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError:
                continue  # removed by someone else, or not removable: the write goes on
            removed.append(path)
    return removed


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """``"90"``, ``"30s"``, ``"10m"``, ``"1h"``, ``"2d"``, ``"1w"`` as seconds.

    >>> parse_age("1h"), parse_age("90"), parse_age("1.5m")
    (3600.0, 90.0, 90.0)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhdw]?)\s*", text.lower())
    if not m:
        raise InputError(
            f"age {text!r} is not understood; give a number of seconds or one with a unit: "
            f"30s, 10m, 1h, 2d, 1w"
        )
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]
