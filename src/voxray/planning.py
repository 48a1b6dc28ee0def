"""Pure planning: basic indices, lazy views, chunk grids and byte ranges. No I/O.

NIfTI data is a Fortran-ordered block of bytes: axis ``i`` varies fastest, then
``j``, ``k``, ``t``. Reading a basic index of it is a chain of pure steps, after
nibabel's ``fileslice`` (``calc_slicedefs -> read_segments -> ndarray``):

1. :func:`normalize_index` turns any basic index (ints, slices, ``...``,
   ``None``) into one :class:`AxisSel` per array axis (plus ``None`` for new
   axes), the same way numpy interprets it.
2. :class:`View` composes indices, flips and transposes lazily, so a sliced or
   reoriented image still reads only the bytes it shows.
3. :func:`plan_read` turns a selection into byte ranges and a strided view of
   the buffer they fill: it reads "through" the fastest axes when that is
   cheaper than one request per run (a cost model with a per-request price in
   bytes, which each source sets), and merges runs that touch.
4. :func:`assemble` views the filled buffer as the selected array.

The sources do the I/O in between. :func:`read_reference` is the deliberately
simple version of the whole chain (read everything, index with numpy); tests
check the planner against it.

>>> sel = normalize_index((Ellipsis, 3), (4, 5, 6, 7))
>>> [(s.start, s.step, s.count, s.drop) for s in sel]
[(0, 1, 4, False), (0, 1, 5, False), (0, 1, 6, False), (3, 1, 1, True)]
>>> plan = plan_read((4, 5, 6, 7), 2, sel)
>>> plan.ranges.tolist()  # one volume: one contiguous range of 4*5*6*2 bytes
[[720, 240, 0]]
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "NEW",
    "NEW_EMPTY",
    "AxisSel",
    "ReadPlan",
    "View",
    "assemble",
    "coalesce_ranges",
    "default_chunks",
    "expand_chunks",
    "normalize_index",
    "plan_read",
    "read_reference",
    "selection_shape",
]

#: Default chunk size: slabs along the slowest axes of at most this many bytes in memory.
DEFAULT_CHUNK_BYTES = 64 * 2**20

#: Marker in :attr:`View.axes` for a new axis of length 1 (``None`` in an index).
NEW = -1
#: Marker in :attr:`View.axes` for a new axis that was then sliced to length 0.
NEW_EMPTY = -2


@dataclass(frozen=True, slots=True)
class AxisSel:
    """The selection along one axis: ``count`` indices ``start + n * step``.

    ``drop`` is True for an integer index: one element, and the axis is removed
    from the result. An empty selection is normalized to ``AxisSel(0, 1, 0)``.
    """

    start: int
    step: int
    count: int
    drop: bool = False

    @classmethod
    def full(cls, n: int) -> AxisSel:
        return cls(0, 1, n) if n else cls(0, 1, 0)

    def compose(self, inner: AxisSel) -> AxisSel:
        """The selection of ``inner`` applied to the elements this one selects."""
        if inner.count == 0:
            return AxisSel(0, 1, 0)
        return AxisSel(
            self.start + inner.start * self.step,
            self.step * inner.step if inner.count > 1 else 1,
            inner.count,
            inner.drop,
        )

    def flipped(self) -> AxisSel:
        if self.count <= 1:
            return self
        return AxisSel(
            self.start + (self.count - 1) * self.step, -self.step, self.count, self.drop
        )

    def ascending(self) -> tuple[int, int, bool]:
        """``(first, positive step, reversed)``: the same elements in file order."""
        if self.count <= 1:
            return self.start, 1, False
        if self.step > 0:
            return self.start, self.step, False
        return self.start + (self.count - 1) * self.step, -self.step, True

    def as_index(self) -> int | slice:
        """An int or slice that selects the same elements with numpy or dask."""
        if self.drop:
            return self.start
        if self.count == 0:
            return slice(0, 0)
        stop = self.start + self.count * self.step
        return slice(self.start, None if stop < 0 else stop, self.step)


def _as_int(key: object) -> int:
    if isinstance(key, bool | np.bool_):
        raise TypeError(f"boolean index {key!r} is advanced indexing, which proxies do not take")
    try:
        return operator.index(key)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"only basic indices (integers, slices, ..., None) are valid for a proxy, not "
            f"{key!r}; use np.asarray(...) or .to_dask() first for fancy indexing"
        ) from None


def normalize_index(key: object, shape: Sequence[int]) -> tuple[AxisSel | None, ...]:
    """Interpret a basic numpy index for an array of ``shape``.

    Returns one :class:`AxisSel` per axis of ``shape``, in order, with ``None``
    entries where the index inserts a new axis. Raises ``IndexError`` and
    ``TypeError`` exactly where numpy would for basic indexing.

    >>> sel = normalize_index((slice(None, None, -2), None, 1), (5, 3))
    >>> sel[0], sel[1], sel[2].drop
    (AxisSel(start=4, step=-2, count=3, drop=False), None, True)
    """
    keys = key if isinstance(key, tuple) else (key,)
    n_ellipsis = sum(k is Ellipsis for k in keys)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(k is not None and k is not Ellipsis for k in keys)
    if n_real > len(shape):
        raise IndexError(
            f"too many indices for array: array is {len(shape)}-dimensional, "
            f"but {n_real} were indexed"
        )
    out: list[AxisSel | None] = []
    axis = 0
    for k in keys:
        if k is Ellipsis:
            for _ in range(len(shape) - n_real):
                out.append(AxisSel.full(shape[axis]))
                axis += 1
        elif k is None:
            out.append(None)
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[axis])  # ValueError for a zero step, as numpy
            count = len(range(start, stop, step))
            out.append(
                AxisSel(start, step if count > 1 else 1, count) if count else AxisSel.full(0)
            )
            axis += 1
        else:
            i, n = _as_int(k), shape[axis]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
            out.append(AxisSel(i % n, 1, 1, drop=True))
            axis += 1
    while axis < len(shape):
        out.append(AxisSel.full(shape[axis]))
        axis += 1
    return tuple(out)


def selection_shape(sel: Sequence[AxisSel | None]) -> tuple[int, ...]:
    """Shape of the result of a normalized selection."""
    return tuple(1 if s is None else s.count for s in sel if s is None or not s.drop)


@dataclass(frozen=True, slots=True)
class View:
    """A lazy basic-indexing view of a base array: what to read, and how to lay it out.

    ``base`` holds one :class:`AxisSel` per axis of the base array. ``axes``
    lists the view's axes in order: a base axis number, or :data:`NEW` /
    :data:`NEW_EMPTY` for an inserted axis of length 1 / 0. Base axes indexed
    by an integer (``drop``) do not appear in ``axes``.

    >>> v = View.identity((4, 5, 6)).compose((slice(None, None, -1), 2))
    >>> v.shape, v.transpose((1, 0)).shape
    ((4, 6), (6, 4))
    >>> v.base_index()
    (slice(3, None, -1), 2, slice(0, 6, 1))
    """

    base: tuple[AxisSel, ...]
    axes: tuple[int, ...]

    @classmethod
    def identity(cls, shape: Sequence[int]) -> View:
        return cls(tuple(AxisSel.full(n) for n in shape), tuple(range(len(shape))))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.base[a].count if a >= 0 else (1 if a == NEW else 0) for a in self.axes)

    def is_identity(self, base_shape: Sequence[int]) -> bool:
        return self == View.identity(base_shape)

    def compose(self, key: object) -> View:
        """The view of ``self[key]``."""
        base = list(self.base)
        axes: list[int] = []
        j = 0
        for s in normalize_index(key, self.shape):
            if s is None:
                axes.append(NEW)
                continue
            a = self.axes[j]
            j += 1
            if a < 0:  # an inserted axis of length 1 (or 0)
                if not s.drop:
                    axes.append(NEW if s.count == 1 else NEW_EMPTY)
                continue
            base[a] = base[a].compose(s)
            if not s.drop:
                axes.append(a)
        return View(tuple(base), tuple(axes))

    def flip(self, axis: int) -> View:
        """The view with output axis ``axis`` reversed."""
        a = self.axes[axis]
        if a < 0:
            return self
        base = list(self.base)
        base[a] = base[a].flipped()
        return View(tuple(base), self.axes)

    def transpose(self, perm: Sequence[int]) -> View:
        if sorted(perm) != list(range(len(self.axes))):
            raise ValueError(f"{tuple(perm)!r} is not a permutation of {len(self.axes)} axes")
        return View(self.base, tuple(self.axes[p] for p in perm))

    def base_index(self) -> tuple[int | slice, ...]:
        """Index of the base array (numpy or dask) that :meth:`finish` then lays out."""
        return tuple(s.as_index() for s in self.base)

    def finish(self, arr):
        """Lay out ``base[self.base_index()]`` (numpy or dask) as this view."""
        kept = [a for a, s in enumerate(self.base) if not s.drop]
        order = [kept.index(a) for a in self.axes if a >= 0]
        if order != sorted(order):
            arr = arr.transpose(order)
        if any(a < 0 for a in self.axes):
            arr = arr[tuple(None if a < 0 else slice(None) for a in self.axes)]
            if NEW_EMPTY in self.axes:
                arr = arr[tuple(slice(0, 0) if a == NEW_EMPTY else slice(None) for a in self.axes)]
        return arr


@dataclass(frozen=True, eq=False)
class ReadPlan:
    """Byte ranges to read and how to view the buffer they fill.

    ``ranges`` is an ``(n, 3)`` int64 array of ``(file_offset, nbytes,
    buffer_offset)``, file offsets relative to the start of the data. The
    buffer of ``nbytes`` bytes, viewed with ``shape`` and byte ``strides``,
    holds the selection in file order; ``flips`` and ``drops`` (per axis)
    finish it.
    """

    ranges: np.ndarray
    nbytes: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    flips: tuple[bool, ...]
    drops: tuple[bool, ...]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(n for n, d in zip(self.shape, self.drops) if not d)


def plan_read(
    shape: Sequence[int],
    itemsize: int,
    sel: Sequence[AxisSel],
    request_cost: int = 32 * 1024,
) -> ReadPlan:
    """Plan the reads of selection ``sel`` (no ``None``) of a Fortran-ordered array.

    The plan reads a contiguous *block* spanning the selection along the
    ``m`` fastest axes, once per selected index of the slower axes (a *run*).
    ``m`` minimises ``runs * (request_cost + block bytes)``; runs that touch
    in the file are merged into one range.

    >>> p = plan_read((10, 10), 1, normalize_index((3, slice(None)), (10, 10)))
    >>> p.ranges.tolist(), p.nbytes   # one row of a column-major array: read it through
    ([[3, 91, 0]], 91)
    >>> p = plan_read((1000, 1000), 1, normalize_index((slice(None), slice(0, 3)), (1000, 1000)))
    >>> p.ranges.tolist()
    [[0, 3000, 0]]
    """
    n = len(shape)
    counts = tuple(s.count for s in sel)
    drops = tuple(s.drop for s in sel)
    if any(c == 0 for c in counts):
        return ReadPlan(np.zeros((0, 3), np.int64), 0, counts, (0,) * n, (False,) * n, drops)
    asc = [s.ascending() for s in sel]
    lo = [a[0] for a in asc]
    step = [a[1] for a in asc]
    flips = tuple(a[2] for a in asc)
    fstride = [itemsize * math.prod(shape[:a]) for a in range(n)]

    # Choose m, the number of fast axes read through as one block per run.
    best_m, best_cost = n, None
    for m in range(n + 1):
        block = itemsize + sum((counts[a] - 1) * step[a] * fstride[a] for a in range(m))
        runs = math.prod(counts[m:])
        cost = runs * (request_cost + block)
        if best_cost is None or cost <= best_cost:
            best_m, best_cost = m, cost
    m = best_m
    block = itemsize + sum((counts[a] - 1) * step[a] * fstride[a] for a in range(m))

    # File offsets of every run, enumerated in Fortran order of the slow axes.
    offsets = np.array([sum(lo[a] * fstride[a] for a in range(n))], dtype=np.int64)
    for a in range(m, n):
        along = np.arange(counts[a], dtype=np.int64) * (step[a] * fstride[a])
        offsets = (along[:, None] + offsets[None, :]).ravel()
    # Merge runs that touch (the buffer keeps runs back to back, so they touch there too).
    breaks = np.flatnonzero(offsets[1:] != offsets[:-1] + block) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks, [offsets.size]))
    ranges = np.stack([offsets[first], (last - first) * block, first * block], axis=1)

    strides = [step[a] * fstride[a] for a in range(m)]
    for a in range(m, n):
        strides.append(block * math.prod(counts[m:a]))
    return ReadPlan(
        ranges.astype(np.int64), int(offsets.size * block), counts, tuple(strides), flips, drops
    )


def assemble(plan: ReadPlan, buffer, dtype: np.dtype) -> np.ndarray:
    """View a buffer filled per ``plan`` as the selected array (copying only if it is sparse)."""
    dtype = np.dtype(dtype)
    if plan.nbytes == 0:
        return np.empty(plan.out_shape, dtype=dtype, order="F")
    arr = np.ndarray(plan.shape, dtype=dtype, buffer=buffer, strides=plan.strides)
    index = tuple(
        0 if d else (slice(None, None, -1) if f else slice(None))
        for f, d in zip(plan.flips, plan.drops)
    )
    arr = arr[(*index, Ellipsis)]  # the Ellipsis keeps a 0-d result an array
    if arr.nbytes < plan.nbytes:  # the buffer holds bytes we skipped over: do not keep them alive
        arr = arr.copy(order="K")
    return arr


def coalesce_ranges(
    ranges: Sequence[tuple[int, int]], max_gap: int
) -> list[tuple[int, int, list[int]]]:
    """Group ``(offset, nbytes)`` ranges whose gaps are at most ``max_gap``.

    Returns ``(offset, nbytes, members)`` per group, sorted by offset;
    ``members`` are indices into ``ranges``.

    >>> coalesce_ranges([(100, 10), (0, 10), (15, 5)], max_gap=5)
    [(0, 20, [1, 2]), (100, 10, [0])]
    """
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    groups: list[tuple[int, int, list[int]]] = []
    for i in order:
        off, nb = ranges[i]
        if groups and off - (groups[-1][0] + groups[-1][1]) <= max_gap:
            g_off, g_nb, members = groups[-1]
            groups[-1] = (g_off, max(g_nb, off + nb - g_off), [*members, i])
        else:
            groups.append((off, nb, [i]))
    return groups


def default_chunks(
    shape: Sequence[int], itemsize: int, max_bytes: int = DEFAULT_CHUNK_BYTES
) -> tuple[int, ...]:
    """Chunk shape: slabs along the slowest axes of at most ``max_bytes`` (contiguous bytes).

    Whole fast axes are kept while they fit; the first axis that does not fit
    is split into balanced pieces; slower axes get chunks of 1.

    >>> default_chunks((98, 116, 94, 300), 2)   # 30 volumes of 2.1 MB each
    (98, 116, 94, 30)
    >>> default_chunks((700, 800, 900), 2)      # one big volume: slabs of k-planes
    (700, 800, 57)
    """
    chunk = list(shape)
    slab = max(1, itemsize)
    for a, n in enumerate(shape):
        if slab * n <= max_bytes:
            slab *= n
            continue
        per = max(1, max_bytes // slab)
        pieces = math.ceil(n / per)
        chunk[a] = math.ceil(n / pieces)
        for b in range(a + 1, len(shape)):
            chunk[b] = 1 if shape[b] else 0
        break
    return tuple(chunk)


def expand_chunks(shape: Sequence[int], block: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Dask-style chunks (sizes per axis) from a chunk shape.

    >>> expand_chunks((10, 7), (10, 3))
    ((10,), (3, 3, 1))
    """
    out = []
    for n, b in zip(shape, block):
        if n == 0:
            out.append((0,))
            continue
        b = max(1, min(b, n))
        out.append((b,) * (n // b) + ((n % b,) if n % b else ()))
    return tuple(out)


def read_reference(
    read_bytes: Callable[[int, int], bytes],
    shape: Sequence[int],
    dtype: np.dtype,
    key: object,
) -> np.ndarray:
    """The simple reference reader: read the whole array, then index it with numpy."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    whole = np.ndarray(tuple(shape), dtype=dtype, buffer=read_bytes(0, nbytes), order="F")
    return np.array(whole[key])
