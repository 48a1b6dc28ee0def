"""Worker processes for the fuzz campaign: a memory limit, a time limit, restarts.

:func:`run_pool` sends work items to ``workers`` forked processes, one item at a time
each, and yields ``(item, result)`` in completion order. A worker sets
``RLIMIT_AS`` on itself when it starts, so an allocation sized by a lying header
fails there (``MemoryError``) instead of taking the machine. The parent enforces the
time limit: a worker that has not answered within ``time_limit`` seconds is killed,
its item is reported ``hang``, and a fresh worker takes its place; a worker that dies
(a signal, ``os._exit``) has its item reported ``crash`` and is replaced too.

The function run on each item returns a dict with at least ``"cls"``. If it raises,
the worker reports ``"crash"`` for a ``MemoryError`` (the limit was hit) and
``"other"`` for anything else, with the traceback. While it runs it may write a short
phase label through the ``phase`` callback (``"nibabel"``, ``"voxray"``): the parent
reports the phase a hang or a crash happened in.

Workers are forked (Linux): they inherit the parent's imports, so starting one takes
milliseconds, and a function defined anywhere (even a lambda in a test) can be run.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import wait

__all__ = ["DEFAULT_MEMORY_LIMIT", "DEFAULT_TIME_LIMIT", "run_pool"]

#: Address-space limit of a worker: numpy, dask's threads and zarr run well under it
#: (a worker's virtual size after a threaded dask compute is about 0.6 GB).
DEFAULT_MEMORY_LIMIT = 3 * 1024**3
#: Wall-clock seconds a case may take before its worker is killed as hung.
DEFAULT_TIME_LIMIT = 20.0

_PHASES = ("", "setup", "nibabel", "voxray", "compare")


def _worker(conn, fn, memory_limit, phase_value) -> None:  # pragma: no cover - in a child
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    def phase(name: str) -> None:
        phase_value.value = _PHASES.index(name) if name in _PHASES else 0

    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        phase("")
        try:
            result = fn(item, phase)
        except MemoryError:
            result = {
                "cls": "crash",
                "detail": "MemoryError",
                "tb": traceback.format_exc()[-3000:],
            }
        except BaseException as exc:
            result = {
                "cls": "other",
                "detail": f"{type(exc).__name__}: {str(exc)[:300]}",
                "tb": traceback.format_exc()[-3000:],
            }
        try:
            conn.send(result)
        except Exception as exc:  # an unpicklable result
            conn.send({"cls": "other", "detail": f"result not sendable: {exc!r}"})


class _Slot:
    def __init__(self, ctx, fn, memory_limit):
        self.ctx, self.fn, self.memory_limit = ctx, fn, memory_limit
        self.item = None
        self.deadline = 0.0
        self.start()

    def start(self) -> None:
        self.phase = self.ctx.Value("i", 0, lock=False)
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(
            target=_worker, args=(child, self.fn, self.memory_limit, self.phase), daemon=True
        )
        # A forked child's bootstrap closes sys.stdin. Where another thread is blocked
        # reading stdin (pytest-xdist's execnet worker is), that thread holds the stream's
        # lock at the fork and the child deadlocks on it: the child gets no stdin instead.
        stdin, sys.stdin = sys.stdin, None
        try:
            self.proc.start()
        finally:
            sys.stdin = stdin
        child.close()
        self.conn = parent

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


def run_pool(
    items: Iterable,
    fn: Callable,
    *,
    workers: int | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> Iterator[tuple[object, dict]]:
    """Run ``fn(item, phase)`` for every item in worker processes; yield ``(item, result)``.

    Parameters
    ----------
    items : iterable
        Work items (picklable: they are sent to the workers).
    fn : callable
        ``fn(item, phase) -> dict`` with a ``"cls"`` key; ``phase(name)`` labels what it
        is doing, for the report of a hang or a crash.
    workers : int, optional
        Number of processes (default ``os.cpu_count()``).
    time_limit : float
        Seconds an item may take; then its worker is killed and the item is ``hang``.
    memory_limit : int or None
        ``RLIMIT_AS`` of each worker in bytes (None: no limit).

    Examples
    --------
    >>> results = dict(run_pool(range(3), lambda i, phase: {"cls": "equal", "i": i}, workers=2))
    >>> sorted(r["i"] for r in results.values())
    [0, 1, 2]
    """
    ctx = mp.get_context("fork")
    n = max(1, workers or os.cpu_count() or 1)
    it = iter(items)
    slots = [_Slot(ctx, fn, memory_limit) for _ in range(n)]
    exhausted = False
    try:
        while True:
            for s in slots:
                if s.item is None and not exhausted:
                    try:
                        item = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    s.item = (item,)
                    s.deadline = time.monotonic() + time_limit
                    s.conn.send(item)
            busy = [s for s in slots if s.item is not None]
            if not busy:
                return
            timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
            ready = set(wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout))
            now = time.monotonic()
            for s in busy:
                item = s.item[0]
                result = None
                if s.conn in ready:
                    try:
                        result = s.conn.recv()
                    except (EOFError, OSError):
                        result = None
                if result is None and (s.conn in ready or s.proc.sentinel in ready):
                    s.proc.join(5)
                    phase = _PHASES[s.phase.value]
                    code = s.proc.exitcode
                    result = {
                        "cls": "crash",
                        "detail": f"worker died (exit code {code}) in {phase or 'setup'}",
                        "phase": phase,
                    }
                    s.kill()
                    s.start()
                elif result is None and now >= s.deadline:
                    phase = _PHASES[s.phase.value]
                    result = {
                        "cls": "hang",
                        "detail": f"no answer in {time_limit:g} s (in {phase or 'setup'})",
                        "phase": phase,
                    }
                    s.kill()
                    s.start()
                if result is not None:
                    s.item = None
                    yield item, result
    finally:
        for s in slots:
            if s.item is not None:
                s.kill()
            else:
                s.stop()
