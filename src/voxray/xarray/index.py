"""xarray indexes over :class:`AffineTransform`: selection in millimetres.

* :class:`AxisIndex` — one world coordinate along one voxel dimension (axis-aligned
  affines: diagonal, or a permutation with flips). It behaves like any 1-D index:
  ``.sel(x=slice(-20, 20))``, exact labels, ``method="nearest"``, alignment.
* :class:`AffineIndex` — ``x, y, z`` coupled over ``i, j, k`` (oblique affines):
  point selection with ``method="nearest"`` and world-box slices.

Both keep themselves through ``isel`` with slices of any step (the affine is
updated so every voxel keeps its world position) and integer indices (the
position folds into the offset); both raise ``KeyError`` for labels outside the
image instead of wrapping around; both refuse to align with an index of another
affine, with a message saying so, rather than misaligning data silently.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from xarray import DataArray, Variable
from xarray.core.indexes import CoordinateTransformIndex, Index, PandasIndex
from xarray.core.indexing import IndexSelResult

from ..errors import AffineMismatchError
from .transform import AffineTransform

__all__ = ["AffineIndex", "AffineMismatchError", "AxisIndex"]

_EPS = 1e-6  # in voxels: labels this close to a voxel centre are on it


class _AffineIndexBase(CoordinateTransformIndex):
    transform: AffineTransform

    def __init__(self, transform: AffineTransform):
        super().__init__(transform)

    def isel(self, indexers: Mapping[Any, Any]) -> Index | None:
        unwrapped = {}
        for dim, idx in indexers.items():
            if isinstance(idx, Variable | DataArray):
                if idx.ndim != 0:
                    return self._fancy_isel(indexers)
                idx = idx.values[()]
            elif isinstance(idx, np.ndarray | list) and np.ndim(idx) != 0:
                return self._fancy_isel(indexers)
            unwrapped[dim] = idx
        t = self.transform.isel(unwrapped)
        if t is None or not t.dims:
            return None
        return type(self)(t)

    def _fancy_isel(self, indexers) -> Index | None:
        return None  # coordinates stay, computed for the selected points

    def equals(self, other: Index, *, exclude: frozenset[Hashable] | None = None) -> bool:
        return isinstance(other, type(self)) and self.transform.equals(other.transform)

    def join(self, other: Index, how: str = "inner") -> Index:
        if self.equals(other):
            return self
        raise AffineMismatchError(
            f"cannot combine images on different voxel grids: {self.transform!r} vs "
            f"{getattr(other, 'transform', other)!r}. Resample one image onto the other's "
            f"grid first (voxray does not interpolate implicitly)."
        )

    def reindex_like(self, other: Index, method=None, tolerance=None) -> dict[Hashable, Any]:
        if self.equals(other):
            return {}
        self.join(other)  # raises with the explanation
        return {}

    def rename(self, name_dict: Mapping[Any, Hashable], dims_dict: Mapping[Any, Hashable]):
        return type(self)(self.transform.renamed(name_dict, dims_dict))

    def create_variables(self, variables=None):
        out = super().create_variables(variables)
        for name, var in out.items():
            if not var.attrs:
                var.attrs = {"units": "mm", "long_name": f"{name} (RAS+ world coordinate)"}
        return out


class AxisIndex(_AffineIndexBase):
    """A world coordinate (x, y or z) along one voxel dimension: ``start + n * step`` mm."""

    @property
    def coord_name(self) -> Hashable:
        return self.transform.coord_names[0]

    @property
    def dim(self) -> str:
        return self.transform.dims[0]

    @property
    def size(self) -> int:
        return self.transform.dim_size[self.dim]

    @property
    def step(self) -> float:
        return float(self.transform.matrix[0, self.transform._col(self.dim)])

    @property
    def start(self) -> float:
        return float(self.transform.offset[0])

    @property
    def values(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.size)

    def _fancy_isel(self, indexers) -> Index | None:
        idx = indexers[self.dim]
        values = self.values[np.asarray(idx)]
        if values.ndim != 1:
            return None
        new_dim = idx.dims[0] if isinstance(idx, Variable | DataArray) else self.dim
        return PandasIndex(pd.Index(values, name=self.coord_name), new_dim)

    def to_pandas_index(self) -> pd.Index:
        return pd.Index(self.values, name=self.coord_name)

    def sel(self, labels: dict[Any, Any], method=None, tolerance=None) -> IndexSelResult:
        label = labels[self.coord_name]
        if isinstance(label, slice):
            return IndexSelResult({self.dim: self._interval(label)})
        if method not in (None, "nearest"):
            raise ValueError(
                f"{self.coord_name}: method must be None or 'nearest', not {method!r}"
            )
        dims = label.dims if isinstance(label, Variable | DataArray) else None
        values = np.asarray(label.values if dims is not None else label, dtype=np.float64)
        pos = (values - self.start) / self.step
        nearest = np.round(pos)
        off_grid = np.abs(pos - nearest) > _EPS
        if method is None and np.any(off_grid):
            raise KeyError(
                f"{values[off_grid].tolist() if values.ndim else float(values)} mm is not a voxel "
                f"centre along {self.coord_name} ({self.start:g} + n * {self.step:g} mm); "
                f"use method='nearest'"
            )
        if tolerance is not None:
            far = np.abs(nearest - pos) * abs(self.step) > tolerance
            if np.any(far):
                raise KeyError(f"no voxel centre within {tolerance} mm of {values[far].tolist()}")
        outside = (nearest < 0) | (nearest > self.size - 1)
        if np.any(outside):
            lo, hi = sorted((self.start, self.start + self.step * (self.size - 1)))
            bad = values[outside].tolist() if values.ndim else float(values)
            raise KeyError(
                f"{bad} mm is outside the image along {self.coord_name} "
                f"(voxel centres from {lo:g} to {hi:g} mm)"
            )
        ints = nearest.astype(np.int64)
        if dims is not None:
            ints = (
                Variable(dims, ints) if isinstance(label, Variable) else DataArray(ints, dims=dims)
            )
        elif ints.ndim == 0:
            ints = int(ints)
        return IndexSelResult({self.dim: ints})

    def _interval(self, label: slice) -> slice:
        """Voxels whose centres lie in the closed interval between the slice's bounds."""
        if label.step is not None:
            raise ValueError(
                f"{self.coord_name}: a label slice selects an interval in mm; steps are in "
                f"voxels (use .isel({self.dim}=slice(..., ..., step)))"
            )
        lo = -np.inf if label.start is None else float(label.start)
        hi = np.inf if label.stop is None else float(label.stop)
        lo, hi = min(lo, hi), max(lo, hi)
        with np.errstate(invalid="ignore"):
            p = sorted(((lo - self.start) / self.step, (hi - self.start) / self.step))
        first = max(0, int(np.ceil(p[0] - _EPS))) if np.isfinite(p[0]) else 0
        last = (
            min(self.size - 1, int(np.floor(p[1] + _EPS))) if np.isfinite(p[1]) else self.size - 1
        )
        return slice(first, last + 1) if last >= first else slice(0, 0)

    def _repr_inline_(self, max_width: int) -> str:
        return f"AxisIndex({self.coord_name} = {self.start:g} + {self.step:g} * {self.dim} mm)"


class AffineIndex(_AffineIndexBase):
    """x, y, z coupled over the voxel dimensions (an oblique affine)."""

    def sel(self, labels: dict[Any, Any], method=None, tolerance=None) -> IndexSelResult:
        names = self.transform.coord_names
        if any(isinstance(v, slice) for v in labels.values()):
            return IndexSelResult(self._box(labels))
        missing = [n for n in names if n not in labels]
        if missing:
            raise ValueError(
                f"this image is oblique: its world coordinates {list(names)} are coupled; "
                f"select points with all of them (missing {missing}) and method='nearest'"
            )
        if method != "nearest":
            raise ValueError(
                "points of an oblique image are selected with method='nearest' "
                "(world labels fall between voxel centres)"
            )
        first = labels[names[0]]
        dims = None
        if isinstance(first, Variable | DataArray):
            dims = first.dims
        values = {
            n: np.asarray(getattr(labels[n], "values", labels[n]), np.float64) for n in names
        }
        shape = np.broadcast_shapes(*[v.shape for v in values.values()])
        if dims is None and len(shape) > 1:
            raise ValueError("point labels must be scalars or 1-D sequences of equal length")
        pos = self.transform.reverse(values)
        nearest = {d: np.round(p) for d, p in pos.items()}
        outside = np.zeros(shape, bool)
        for d, p in nearest.items():
            outside |= (p < 0) | (p > self.transform.dim_size[d] - 1)
        if np.any(outside):
            pts = np.stack([np.broadcast_to(values[n], shape) for n in names], -1)[outside]
            raise KeyError(f"points {pts.tolist()} (mm) are outside the image")
        if tolerance is not None:
            centre = self.transform.forward(nearest)
            dist = np.sqrt(sum((centre[n] - values[n]) ** 2 for n in names))
            if np.any(dist > tolerance):
                raise KeyError(f"no voxel centre within {tolerance} mm of some points")
        out = {}
        for d, p in nearest.items():
            ints = p.astype(np.int64)
            if dims is not None:
                out[d] = (
                    Variable(dims, ints)
                    if isinstance(first, Variable)
                    else DataArray(ints, dims=dims)
                )
            elif ints.ndim == 0:
                out[d] = int(ints)
            else:
                out[d] = Variable(("points",), ints)
        return IndexSelResult(out)

    def _box(self, labels) -> dict[str, slice]:
        """The voxel bounding box of a world box given as label slices (others unbounded)."""
        t = self.transform
        lo, hi = t.bounds()
        for r, n in enumerate(t.coord_names):
            if n not in labels:
                continue
            s = labels[n]
            if not isinstance(s, slice) or s.step is not None:
                raise ValueError(
                    f"a world box on an oblique image is given by label slices without steps; "
                    f"got {n}={s!r}"
                )
            a = -np.inf if s.start is None else float(s.start)
            b = np.inf if s.stop is None else float(s.stop)
            lo[r], hi[r] = max(lo[r], min(a, b)), min(hi[r], max(a, b))
        if np.any(lo > hi):
            return {d: slice(0, 0) for d in t.dims}
        corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(len(lo), -1)
        pos = t.reverse({n: corners[r] for r, n in enumerate(t.coord_names)})
        out = {}
        for d, p in pos.items():
            first = max(0, int(np.ceil(p.min() - _EPS)))
            last = min(t.dim_size[d] - 1, int(np.floor(p.max() + _EPS)))
            out[d] = slice(first, last + 1) if last >= first else slice(0, 0)
        return out

    def _repr_inline_(self, max_width: int) -> str:
        return (
            f"AffineIndex({', '.join(map(str, self.transform.coord_names))} <- "
            f"{', '.join(self.transform.dims)}, oblique)"
        )
