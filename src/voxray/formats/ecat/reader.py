"""Reading ECAT frames by byte ranges, scaled per frame as nibabel does.

Each frame is a plain Fortran-order block (``x, y, z``) at its own offset (from the
matrix list), with its own stored dtype and scale factor (from its subheader); the
main header's calibration factor applies to all. :class:`EcatReader` reads, for
each frame a selection touches, only the bytes of the selected voxels
(:class:`voxray.reader.Reader` plans them), flips the axes nibabel flips for the
patient orientation (neurological: ``x, y, z``; radiological: ``y, z``) by reading
the mirrored voxels, and scales them as nibabel's ``EcatImageArrayProxy``:
``(raw * calibration) * scale``. The values are float64 (nibabel fills a float64
array), except for one frame picked by an integer index, which keeps the dtype of
that product (float32 for float32 frames), as nibabel returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...planning import AxisSel
from ...reader import ArrayLayout, BaseReader, Reader
from .header import Frame

__all__ = ["EcatReader"]


@dataclass(frozen=True)
class EcatReader(BaseReader):
    """The scaled values of an ECAT file's frames (plain values only: it pickles small).

    ``layout`` has the 4-D shape and the values' dtype (float64); ``frames`` are the
    frames in nibabel's order, ``calibration`` the main header's factor and ``flips``
    the spatial axes nibabel reverses.
    """

    source: object
    layout: ArrayLayout
    scales_by_layout: ClassVar[bool] = False  # scaled in read_raw
    frames: tuple[Frame, ...]
    calibration: float = 1.0
    flips: tuple[bool, bool, bool] = (False, False, False)

    def _frame(self, index: int, spatial: tuple[AxisSel, ...]) -> np.ndarray:
        frame = self.frames[index]
        layout = ArrayLayout(self.layout.shape[:3], np.dtype(frame.dtype), frame.offset)
        raw = Reader(self.source, layout).read_raw(spatial)
        data = raw * self.calibration
        return data * frame.scale

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        shape = self.layout.shape
        spatial = []
        for axis, s in enumerate(sel[:3]):
            if self.flips[axis] and s.count:
                s = AxisSel(shape[axis] - 1 - s.start, -s.step, s.count, s.drop)
            spatial.append(s)
        spatial = tuple(spatial)
        t = sel[3]
        if t.drop:
            return self._frame(t.start, spatial)
        out_shape = (*(s.count for s in spatial if not s.drop), t.count)
        out = np.empty(out_shape, np.float64)
        for n in range(t.count):
            out[..., n] = self._frame(t.start + n * t.step, spatial)
        return out

    def _token_extra(self) -> tuple:
        return (self.frames, self.calibration, self.flips)
