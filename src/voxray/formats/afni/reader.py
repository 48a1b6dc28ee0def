"""Reading a BRIK: the base byte-range reader, then nibabel's per-volume factors.

A BRIK is a plain Fortran-order array (``x, y, z, t``) at offset 0, so the bytes a
selection needs are planned and read by :class:`voxray.reader.Reader` (through the
gzip seek index for ``.BRIK.gz``). AFNI scales each volume (sub-brick) by its own
factor (``BRICK_FLOAT_FACS``; 0 means unscaled), which one slope cannot express:
:class:`AfniReader` multiplies the raw selection by the factors of the volumes it
holds, exactly as nibabel's ``AFNIArrayProxy`` does (``raw * factors`` in
``np.result_type(raw, factors)``: float64 for every integer or float32 BRIK), so
every chunk has the dtype and values of the whole array.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ...planning import AxisSel
from ...proxy import ArrayProxy
from ...reader import ArrayLayout, BaseReader, Reader

__all__ = ["AFNIArrayProxy", "AfniReader"]


@dataclass(frozen=True)
class AfniReader(BaseReader):
    """The values of a BRIK: ``raw`` is the stored dtype, ``factors`` one float per
    volume (None for an unscaled dataset), and ``layout`` describes the values a read
    returns (shape, offset 0, and the dtype after the factors: float64 when scaled),
    so the writers and the dask graph see the values' dtype, never the stored one.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from voxray.sources import local_spec
    >>> path = os.path.join(tempfile.mkdtemp(), "x+orig.BRIK")
    >>> np.arange(16, dtype="<i2").tofile(path)
    >>> reader = AfniReader.of(local_spec(path), (2, 2, 2, 2), np.dtype("<i2"), (1.0, 0.5))
    >>> reader.dtype, reader[1, 1, 1, :].tolist()
    (dtype('float64'), [7.0, 7.5])
    """

    source: object
    layout: ArrayLayout
    scales_by_layout: ClassVar[bool] = False  # scaled in read_raw
    raw: np.dtype
    factors: tuple[float, ...] | None = None

    @classmethod
    def of(cls, source, shape, raw: np.dtype, factors=None, offset: int = 0) -> AfniReader:
        """The reader of a BRIK of ``shape`` stored as ``raw`` at ``offset``."""
        raw = np.dtype(raw)
        values = raw if factors is None else np.result_type(raw, np.float64)
        return cls(source, ArrayLayout(shape, values, offset), raw, factors)

    @property
    def stored(self) -> ArrayLayout:
        """The layout of the stored (unscaled) values."""
        lay = self.layout
        return ArrayLayout(lay.shape, self.raw, lay.offset)

    def unscaled(self) -> AfniReader:
        """The same BRIK read without its factors (the stored values)."""
        return replace(self, layout=self.stored, factors=None)

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        raw = Reader(self.source, self.stored).read_raw(sel)
        if self.factors is None:
            return raw
        # The volume axis is the last one of the result (unless it was dropped).
        factors = np.asarray(self.factors, np.float64)[sel[3].as_index()]
        return raw * factors.astype(np.result_type(raw, factors))

    def _token_extra(self) -> tuple:
        return (self.raw.str, self.factors)


class AFNIArrayProxy(ArrayProxy):
    """voxray's :class:`~voxray.ArrayProxy` with nibabel's ``AFNIArrayProxy`` extras:
    ``scaling`` (the per-volume factors, or None) and ``get_unscaled()`` (the stored
    values). Slices and reorientations of it are plain voxray proxies."""

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype, as nibabel's ``AFNIArrayProxy.dtype``."""
        return self.reader.raw

    @property
    def scaling(self) -> np.ndarray | None:
        factors = self.reader.factors
        return None if factors is None else np.array(factors, np.float64)

    def get_unscaled(self) -> np.ndarray:
        return ArrayProxy.from_reader(self.reader.unscaled(), self.view).get_unscaled()

    def __reduce__(self):
        return (type(self).from_reader, (self.reader, self.view, self._chunks))
