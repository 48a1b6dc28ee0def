"""Reads basic selections of one stored array: plan, read, view, scale.

A :class:`Reader` holds only plain values (a source spec and an
:class:`~voxray.layout.ArrayLayout`), so it pickles small and is what dask
graph tasks carry; the source behind the spec is opened once per process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import ArrayLayout
from .planning import AxisSel, assemble, normalize_index, plan_read
from .sources import open_source

__all__ = ["Reader"]


@dataclass(frozen=True)
class Reader:
    """Basic-index reads of the array ``layout`` describes, in the file ``source`` names.

    ``reader[key]`` returns scaled values (what nibabel's proxy returns), so a
    reader can back ``dask.array.from_array`` directly.
    """

    source: object
    layout: ArrayLayout

    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    @property
    def ndim(self) -> int:
        return len(self.layout.shape)

    @property
    def dtype(self) -> np.dtype:
        """dtype of the scaled values."""
        return self.layout.scaled_dtype()

    @property
    def name(self) -> str:
        return self.source.name

    def with_layout(self, layout: ArrayLayout) -> Reader:
        """The same file read with another layout (e.g. unscaled, or reshaped)."""
        return Reader(self.source, layout)

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        """The unscaled on-disk values of one selection per axis (integer axes dropped)."""
        lay = self.layout
        src = open_source(self.source)
        plan = plan_read(lay.shape, lay.dtype.itemsize, sel, src.request_cost)
        buf = np.empty(plan.nbytes, np.uint8)
        if plan.nbytes:
            src.read_many(
                [(lay.offset + int(f), buf[int(b) : int(b) + int(n)]) for f, n, b in plan.ranges]
            )
        return assemble(plan, buf, lay.dtype)

    def __getitem__(self, key) -> np.ndarray:
        """Scaled values of ``key``: basic indices are planned into byte ranges; advanced
        ones (lists, arrays, as dask may pass) read their bounding box, then index it."""
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, list | np.ndarray) and np.ndim(k) > 0 for k in keys):
            box, post = _split_advanced(keys, self.layout.shape)
            return self[box][post]
        sel = normalize_index(key, self.layout.shape)
        arr = self.read_raw(tuple(s for s in sel if s is not None))
        if any(s is None for s in sel):
            arr = arr[
                tuple(None if s is None else slice(None) for s in sel if s is None or not s.drop)
            ]
        return self.layout.scale(arr)

    def __dask_tokenize__(self):
        lay = self.layout
        return (
            "voxray.Reader",
            self.source,
            lay.shape,
            lay.dtype.str,
            lay.offset,
            repr(lay.slope),
            repr(lay.inter),
        )


def _split_advanced(keys: tuple, shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Split an index with advanced parts into a basic bounding-box read and an index
    of that box with the same numpy semantics (ints stay positional among arrays)."""
    expanded: list = []
    for k in keys:  # boolean masks index as their nonzero positions
        if isinstance(k, list | np.ndarray) and np.asarray(k).dtype == bool:
            expanded.extend(np.nonzero(np.asarray(k)))
        else:
            expanded.append(k)
    n_real = sum(k is not None and k is not Ellipsis for k in expanded)
    box: list = []
    post: list = []
    axis = 0
    for k in expanded:
        if k is None:
            post.append(None)
        elif k is Ellipsis:
            for _ in range(len(shape) - n_real):
                box.append(slice(None))
                post.append(slice(None))
                axis += 1
        elif isinstance(k, slice):
            box.append(k)
            post.append(slice(None))
            axis += 1
        elif isinstance(k, list | np.ndarray) and np.ndim(k) > 0:
            idx = np.asarray(k)
            if idx.dtype.kind not in "iu":
                raise IndexError(
                    f"arrays used as indices must be of integer type, not {idx.dtype}"
                )
            n = shape[axis]
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"index out of bounds for axis {axis} with size {n}")
            idx = np.where(idx < 0, idx + n, idx)
            lo = int(idx.min()) if idx.size else 0
            hi = int(idx.max()) + 1 if idx.size else 0
            box.append(slice(lo, hi))
            post.append(idx - lo)
            axis += 1
        else:
            i = int(k) % shape[axis] if -shape[axis] <= int(k) < shape[axis] else int(k)
            box.append(slice(i, i + 1))
            post.append(0)
            axis += 1
    return tuple(box), tuple(post)
