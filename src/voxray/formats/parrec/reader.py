"""Reading REC data by byte ranges: one read per needed slice, scaled per slice.

A REC file is the PAR file's image rows back to back: row ``r`` is one
``nx * ny`` little-endian ``uint8``/``uint16`` slice at byte ``r * nx * ny *
itemsize``, in the order the scanner wrote them. nibabel's
``PARRECArrayProxy`` sorts the rows into the image (``header.
get_sorted_slice_indices()``: output slice ``k`` of volume ``t`` is row
``rows[k + nz * t]``, dropping rows of incomplete volumes) and scales each
output slice with its own slope and intercept (``header.get_data_scaling``).

:class:`ParrecReader` does the same, lazily, as a chain of pure steps:

1. the in-plane part of the selection is planned once with voxray's planner
   (:func:`voxray.planning.plan_read` over one ``(nx, ny)`` slice);
2. the selected slow indices (``k, t...``) become flat output-slice numbers, and
   those become REC rows; each row contributes the in-plane ranges at its own
   offset, and ranges that touch in the file and in the buffer are merged;
3. the buffer is viewed as ``in-plane x slices`` (no copy), reshaped to the
   slow axes, and scaled with the selected slices' slopes and intercepts with
   nibabel's expression (``raw * slope.astype(t) + inter.astype(t)``, ``t`` the
   result type of raw values, slopes and intercepts).

So one volume reads exactly its slices' bytes, whatever the row order, and the
reader holds plain values only (the REC's spec, the row table and the scaling
as tuples), so dask graphs over it pickle small and run on process clusters.

:class:`ParrecArrayProxy` is voxray's :class:`~voxray.proxy.ArrayProxy` over
such a reader, with nibabel's ``PARRECArrayProxy`` answers where they differ
from a single-slope proxy: ``dtype`` is the stored dtype and ``get_unscaled()``
the stored values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ...planning import AxisSel, plan_read
from ...proxy import ArrayProxy
from ...reader import ArrayLayout, BaseReader
from ...sources import open_source

__all__ = ["ParrecArrayProxy", "ParrecReader", "scaled_dtype"]


def scaled_dtype(raw_dtype, slopes, inters) -> np.dtype:
    """The dtype nibabel's ``PARRECArrayProxy`` scales to: ``np.result_type`` of the
    stored values, the slopes and the intercepts (float64 for every PAR/REC)."""
    return np.result_type(np.dtype(raw_dtype), np.asarray(slopes), np.asarray(inters))


@dataclass(frozen=True)
class ParrecReader(BaseReader):
    """Scaled (or stored) values of a REC file, read by byte ranges per slice.

    Parameters
    ----------
    source
        The REC file's spec (local, file object or URL).
    layout
        Shape of the image and dtype of the values :meth:`read_raw` returns (the
        scaled dtype, or ``raw_dtype`` when ``scaled`` is False); offset 0, slope 1,
        intercept 0 (scaling is per slice, below).
    raw_dtype
        Stored dtype (``"<u2"`` or ``"|u1"``).
    rows
        REC row of each output slice, flat in Fortran order over axes 2 and up.
    slopes, inters
        Slope and intercept of each output slice, in the same order.
    scaled
        Whether :meth:`read_raw` applies the scaling.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from voxray.sources import local_spec
    >>> path = os.path.join(tempfile.mkdtemp(), "x.REC")
    >>> np.arange(2 * 2 * 3, dtype="<u2").tofile(path)   # three 2x2 rows
    >>> r = ParrecReader(local_spec(path), ArrayLayout((2, 2, 3), "f8"), "<u2",
    ...                  rows=(2, 0, 1), slopes=(1.0, 10.0, 100.0), inters=(0.0, 0.0, 0.5))
    >>> r[0, 0, :].tolist()    # rows 2, 0, 1 scaled by 1, 10, 100 (+ 0.5)
    [8.0, 0.0, 400.5]
    """

    source: object
    layout: ArrayLayout
    scales_by_layout: ClassVar[bool] = False  # scaled in read_raw
    raw_dtype: str
    rows: tuple[int, ...]
    slopes: tuple[float, ...]
    inters: tuple[float, ...]
    scaled: bool = True

    #: For tools that describe a reader (``voxray info``): the stored values are scaled
    #: per slice, so the layout's dtype is the scaled one and ``raw_dtype`` is on disk.
    per_slice_scaling: ClassVar[bool] = True

    def unscaled(self) -> ParrecReader:
        """The reader of the stored values."""
        lay = self.layout
        return replace(self, layout=ArrayLayout(lay.shape, self.raw_dtype), scaled=False)

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        shape = self.layout.shape
        raw = np.dtype(self.raw_dtype)
        out_dtype = self.layout.dtype
        slow = sel[2:]
        counts = tuple(s.count for s in slow)
        out_shape = tuple(s.count for s in sel if not s.drop)
        src = open_source(self.source)
        inplane = plan_read(shape[:2], raw.itemsize, sel[:2], src.request_cost)
        flat = _flat_slices(slow, shape[2:])
        per = inplane.nbytes
        if flat.size == 0 or per == 0:
            return np.empty(out_shape, out_dtype)
        rows = np.asarray(self.rows, np.int64)[flat]
        buf = np.empty(flat.size * per, np.uint8)
        src.read_many(
            [
                (int(f), buf[int(b) : int(b) + int(n)])
                for f, n, b in _row_ranges(
                    rows, inplane.ranges, shape[0] * shape[1] * raw.itemsize, per
                )
            ]
        )
        arr = np.ndarray(
            (*inplane.shape, flat.size), dtype=raw, buffer=buf, strides=(*inplane.strides, per)
        )
        index = tuple(
            0 if d else (slice(None, None, -1) if f else slice(None))
            for f, d in zip(inplane.flips, inplane.drops)
        )
        arr = _slow_axes(arr[(*index, Ellipsis)], counts, slow)
        if not self.scaled:
            return arr.copy() if arr.nbytes < buf.nbytes else arr  # free skipped bytes
        lead = (1,) * (arr.ndim - sum(not s.drop for s in slow))
        slopes = _slow_axes(np.asarray(self.slopes)[flat], counts, slow).reshape(
            lead + arr.shape[len(lead) :]
        )
        inters = _slow_axes(np.asarray(self.inters)[flat], counts, slow).reshape(slopes.shape)
        # nibabel's PARRECArrayProxy._get_scaled, on the selected slices only
        return np.asarray(arr * slopes.astype(out_dtype) + inters.astype(out_dtype))

    def _token_extra(self) -> tuple:
        return (self.raw_dtype, self.rows, self.slopes, self.inters, self.scaled)


def _flat_slices(slow: tuple[AxisSel, ...], slow_shape: tuple[int, ...]) -> np.ndarray:
    """Flat output-slice numbers of a selection of the slow axes, first axis fastest.

    >>> s = (AxisSel(1, 1, 2), AxisSel(0, 2, 2))   # k in 1..2, t in {0, 2}; nz = 3
    >>> _flat_slices(s, (3, 4)).tolist()
    [1, 2, 7, 8]
    """
    flat = np.zeros(1, np.int64)
    stride = 1
    for s, n in zip(slow, slow_shape):
        idx = s.start + s.step * np.arange(s.count, dtype=np.int64)
        flat = (idx[:, None] * stride + flat[None, :]).ravel()
        stride *= n
    return flat


def _row_ranges(rows: np.ndarray, inplane: np.ndarray, row_bytes: int, per: int) -> list:
    """``(file offset, nbytes, buffer offset)`` of every slice's in-plane ranges, slice
    ``j`` (REC row ``rows[j]``) filling ``buf[j * per:(j + 1) * per]``; neighbours that
    touch both in the file and in the buffer are merged (a volume of consecutive rows is
    one read).

    >>> rng = np.array([[0, 8, 0]])                 # a whole 8-byte slice
    >>> _row_ranges(np.array([3, 4, 0]), rng, 8, 8)
    [(24, 16, 0), (0, 8, 16)]
    """
    files = (rows[:, None] * row_bytes + inplane[None, :, 0]).ravel()
    sizes = np.broadcast_to(inplane[None, :, 1], (rows.size, len(inplane))).ravel()
    bufs = (np.arange(rows.size, dtype=np.int64)[:, None] * per + inplane[None, :, 2]).ravel()
    out: list[tuple[int, int, int]] = []
    for f, n, b in zip(files.tolist(), sizes.tolist(), bufs.tolist()):
        if out and out[-1][0] + out[-1][1] == f and out[-1][2] + out[-1][1] == b:
            out[-1] = (out[-1][0], out[-1][1] + n, out[-1][2])
        else:
            out.append((f, n, b))
    return out


def _slow_axes(arr: np.ndarray, counts: tuple[int, ...], slow: tuple[AxisSel, ...]):
    """Split the last axis (flat slices, first slow axis fastest) into the slow axes,
    then drop those indexed by an integer."""
    arr = arr.reshape(arr.shape[:-1] + tuple(reversed(counts)))
    n = arr.ndim
    k = len(counts)
    arr = arr.transpose(tuple(range(n - k)) + tuple(reversed(range(n - k, n))))
    return arr[(Ellipsis, *(0 if s.drop else slice(None) for s in slow))]


class ParrecArrayProxy(ArrayProxy):
    """voxray's lazy proxy of PAR/REC data with nibabel's ``PARRECArrayProxy`` API:
    ``np.asarray(proxy)`` and ``proxy[...]`` are the scaled values, ``dtype`` the stored
    dtype, ``get_unscaled()`` the stored values (in image order).

    ``sliced`` / ``reoriented`` proxies are voxray's plain :class:`~voxray.proxy.ArrayProxy`
    over the scaled values (nibabel's sliced PAR/REC images hold scaled float64 arrays):
    their ``dtype`` and ``get_unscaled()`` are the scaled values, which is what voxray's
    writers copy for a "raw" write (``proxy.sliced(key).get_unscaled()``), never the
    stored integers, which no single NIfTI slope could describe. Both stay lazy and read
    only the slices they show.
    """

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._reader.raw_dtype)

    def get_unscaled(self) -> np.ndarray:
        view = self._view
        return view.finish(self._reader.unscaled().read_raw(view.base))

    def copy(self) -> ParrecArrayProxy:
        return type(self).from_reader(self._reader, self._view, self._chunks)

    def reshape(self, shape):
        """A lazy reshape (a dask-backed proxy): per-slice scaling does not survive a
        reshape of the byte layout, so the values are reshaped instead."""
        from ...proxy import DaskProxy

        return DaskProxy(self.to_dask().reshape(shape))

    def __reduce__(self):
        return (_rebuild, (self._reader, self._view, self._chunks))

    def __repr__(self) -> str:
        return (
            f"<voxray.ParrecArrayProxy {self._reader.name!r} shape={self.shape} "
            f"dtype={self.dtype}, scaled per slice to {self._reader.layout.dtype}>"
        )


def _rebuild(reader, view, chunks) -> ParrecArrayProxy:
    return ParrecArrayProxy.from_reader(reader, view, chunks)
