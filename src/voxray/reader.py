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
        sel = normalize_index(key, self.layout.shape)
        arr = self.read_raw(tuple(s for s in sel if s is not None))
        if any(s is None for s in sel):
            arr = arr[tuple(None if s is None else slice(None) for s in sel if s is None or not s.drop)]
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
