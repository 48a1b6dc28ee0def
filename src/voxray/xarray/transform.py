"""World coordinates from an affine, as an xarray ``CoordinateTransform``.

An :class:`AffineTransform` maps voxel positions along some of the voxel
dimensions ``i, j, k`` to some of the world coordinates ``x, y, z`` (mm, RAS+):
``world = matrix @ [i, j, k] + offset``. It keeps all three voxel columns even
when a dimension has been removed by an integer selection (the position is
folded into the offset), so the full 4x4 affine can always be rebuilt.

Pure numpy; the only xarray dependency is the base class.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from xarray.core.coordinate_transform import CoordinateTransform

__all__ = ["VOXEL_DIMS", "WORLD_NAMES", "AffineTransform"]

VOXEL_DIMS = ("i", "j", "k")
WORLD_NAMES = ("x", "y", "z")


class AffineTransform(CoordinateTransform):
    """``world[name] = matrix[row(name)] @ [i, j, k] + offset[row(name)]``.

    Parameters
    ----------
    matrix : (n_world, 3) array
        Columns for the voxel dimensions named in ``columns`` (i, j, k).
    offset : (n_world,) array
    coord_names : world coordinate names, one per row (x, y, z or a subset).
    dim_size : {dim: size} for the voxel dimensions present, in order.
    columns : names of the three voxel columns (i, j, k, or renamed ones).
    """

    def __init__(
        self,
        matrix,
        offset,
        coord_names: Sequence[Hashable],
        dim_size: Mapping[str, int],
        columns: Sequence[str] = VOXEL_DIMS,
    ):
        super().__init__(coord_names, dim_size, dtype=np.dtype(np.float64))
        self.matrix = np.array(matrix, dtype=np.float64).reshape(len(self.coord_names), 3)
        self.offset = np.array(offset, dtype=np.float64).reshape(len(self.coord_names))
        self.columns = tuple(columns)
        if not set(self.dims) <= set(self.columns):
            raise ValueError(f"dims {self.dims} must be among the columns {self.columns}")

    # -- CoordinateTransform -----------------------------------------------------

    def _col(self, dim: str) -> int:
        return self.columns.index(dim)

    def forward(self, dim_positions: dict[str, Any]) -> dict[Hashable, Any]:
        out = {}
        for r, name in enumerate(self.coord_names):
            value = self.offset[r]
            for dim in self.dims:
                value = value + self.matrix[r, self._col(dim)] * np.asarray(
                    dim_positions[dim], dtype=np.float64
                )
            out[name] = value
        return out

    def reverse(self, coord_labels: dict[Hashable, Any]) -> dict[str, Any]:
        """Voxel positions (fractional) of world labels; least squares if not square."""
        world = np.stack(
            np.broadcast_arrays(
                *[np.asarray(coord_labels[n], dtype=np.float64) for n in self.coord_names]
            ),
            axis=-1,
        )
        cols = [self._col(d) for d in self.dims]
        sub = self.matrix[:, cols]
        rhs = world - self.offset
        if sub.shape[0] == sub.shape[1]:
            pos = np.linalg.solve(sub, rhs.reshape(-1, sub.shape[0]).T).T
        else:
            pos = (np.linalg.pinv(sub) @ rhs.reshape(-1, sub.shape[0]).T).T
        pos = pos.reshape(*world.shape[:-1], len(self.dims))
        return {d: pos[..., a] for a, d in enumerate(self.dims)}

    def equals(self, other, exclude: frozenset[Hashable] | None = None, **kwargs) -> bool:
        if not isinstance(other, AffineTransform):
            return False
        if self.coord_names != other.coord_names or self.dim_size != other.dim_size:
            return False
        if self.columns != other.columns:
            return False
        scale = max(1.0, float(np.abs(self.matrix).max(initial=0)))
        return bool(
            np.allclose(self.matrix, other.matrix, rtol=0, atol=1e-6 * scale)
            and np.allclose(self.offset, other.offset, rtol=0, atol=1e-6 * scale)
        )

    # -- voxray ------------------------------------------------------------------

    def isel(self, indexers: Mapping[str, Any]) -> AffineTransform | None:
        """The transform after basic indexing (slices with any step, integers).

        Returns None for any other indexer (arrays): there is no affine then.
        """
        offset = self.offset.copy()
        matrix = self.matrix.copy()
        dim_size = dict(self.dim_size)
        for dim, idx in indexers.items():
            if dim not in dim_size:
                continue
            col = self._col(dim)
            n = dim_size[dim]
            if isinstance(idx, slice):
                rng = range(n)[idx]
                start = rng.start if len(rng) else 0
                # One selected voxel has no step: it keeps its size, as in Image.slicer.
                step = rng.step if len(rng) > 1 else 1
                offset = offset + matrix[:, col] * start
                matrix[:, col] = matrix[:, col] * step
                dim_size[dim] = len(rng)
            elif np.ndim(idx) == 0 and np.issubdtype(np.asarray(idx).dtype, np.integer):
                i = int(idx)
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for {dim!r} with size {n}")
                offset = offset + matrix[:, col] * (i % n)
                del dim_size[dim]
            else:
                return None
        return AffineTransform(matrix, offset, self.coord_names, dim_size, self.columns)

    def renamed(self, name_dict: Mapping, dims_dict: Mapping) -> AffineTransform:
        return AffineTransform(
            self.matrix,
            self.offset,
            [name_dict.get(n, n) for n in self.coord_names],
            {str(dims_dict.get(d, d)): s for d, s in self.dim_size.items()},
            [str(dims_dict.get(c, c)) for c in self.columns],
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World bounding box (min, max per coordinate) of the voxel centres."""
        corners = np.array(
            np.meshgrid(*[[0, max(self.dim_size[d] - 1, 0)] for d in self.dims], indexing="ij")
        ).reshape(len(self.dims), -1)
        world = self.forward({d: corners[a] for a, d in enumerate(self.dims)})
        vals = np.array([np.atleast_1d(world[n]) for n in self.coord_names])
        return vals.min(axis=1), vals.max(axis=1)

    def __repr__(self) -> str:
        return (
            f"AffineTransform({list(self.coord_names)} <- {list(self.dims)} "
            f"{self.dim_size}, matrix={self.matrix.round(4).tolist()}, "
            f"offset={self.offset.round(4).tolist()})"
        )
