"""The lazy resampling engine behind :mod:`voxray.processing.resample`.

An output grid is cut into blocks (one block when the whole volume is small, tiles
otherwise). For each block the corners are mapped through the voxel-to-voxel transform
(output voxel -> input voxel) to the input's voxel coordinates; their bounding box,
padded by the interpolation's support (order 0: 1 voxel, order 1: 2 voxels, spline
order ``n > 1``: ``n // 2 + 2`` plus a prefilter ``halo``) and clipped to the input, is the
only input region the block reads (a slice of the input's dask array). scipy's
``affine_transform`` then runs on that region with the offset shifted by the region's
origin, so the region edges that are true image edges keep scipy's boundary handling
exactly. Spline orders above 1 prefilter the region (scipy's own prefilter, same mode):
the IIR filter's influence decays as ``|z| ** d`` with the distance ``d`` from a region
edge (``z`` the spline's pole of largest modulus, -0.2679 for cubic), so a halo of
``ceil(log(tol) / log|z|) + 1`` voxels makes the region's prefilter equal the whole
image's to about ``tol`` relative (:data:`SPLINE_TOL`). For the modes ``reflect``,
``mirror``, ``wrap`` (and their ``grid-`` forms) a block whose support crosses an image
edge reads the whole axis, as the reflected or wrapped values may come from anywhere on
it. In ``constant``/``grid-constant`` mode a block that maps entirely (by more than the
spline support) outside the input is filled with scipy's value of ``cval`` without
reading anything.

Every task is a module-level function over plain values, so graphs pickle and run on a
process cluster.

>>> import numpy as np, dask.array as da
>>> arr = da.from_array(np.arange(27.0).reshape(3, 3, 3), chunks=2)
>>> out = resample_dask(arr, np.eye(3), np.zeros(3), (3, 3, 3), order=1)
>>> bool((out.compute() == arr.compute()).all())
True
"""

from __future__ import annotations

import math

import numpy as np
import numpy.linalg as npl
from scipy import ndimage

from ..errors import InputError

__all__ = [
    "MODES",
    "check_affine",
    "check_mode",
    "check_number",
    "check_order",
    "check_shape",
    "get_bounds",
    "check_interpolation",
    "inverse",
    "nanmin_max",
    "nilearn_class",
    "nilearn_image",
    "POLES",
    "SPLINE_TOL",
    "SMALL_BYTES",
    "clip_block",
    "default_chunks",
    "resample_block",
    "resample_dask",
    "spline_halo",
]

#: the largest-modulus pole of scipy's B-spline prefilter for each order
POLES = {2: -0.171572875, 3: -0.267949192, 4: -0.361341226, 5: -0.430575348}
#: the relative difference allowed between a region's prefilter and the whole image's
SPLINE_TOL = 1e-9
#: an output volume of at most this many float64 bytes is one block
SMALL_BYTES = 64 * 2**20
MODES = (
    "constant",
    "nearest",
    "reflect",
    "mirror",
    "wrap",
    "grid-constant",
    "grid-mirror",
    "grid-wrap",
)
_CLIPPED_MODES = ("constant", "grid-constant", "nearest")
_INTERPOLATIONS = {"continuous": 3, "linear": 1, "nearest": 0}


def spline_halo(order: int, tol: float = SPLINE_TOL) -> int:
    """Voxels of prefilter halo for a spline of ``order``: ``|z| ** halo`` below ``tol``.

    >>> spline_halo(3), spline_halo(1)
    (17, 0)
    """
    if order < 2:
        return 0
    return math.ceil(math.log(tol) / math.log(abs(POLES[order]))) + 1


def default_chunks(shape: tuple[int, ...], chunks=None) -> tuple[tuple[int, ...], ...]:
    """Output chunks over the spatial ``shape``: one block when it holds at most
    :data:`SMALL_BYTES` of float64, roughly cubic tiles of a quarter of that otherwise;
    ``chunks`` (anything dask's ``normalize_chunks`` takes) overrides.

    >>> default_chunks((4, 5, 6))
    ((4,), (5,), (6,))
    >>> default_chunks((10, 10, 10), chunks=4)
    ((4, 4, 2), (4, 4, 2), (4, 4, 2))
    """
    from dask.array.core import normalize_chunks

    if chunks is None:
        if math.prod(shape) * 8 <= SMALL_BYTES:
            return tuple((n,) for n in shape)
        return normalize_chunks("auto", shape, limit=SMALL_BYTES // 4, dtype=np.float64)
    try:
        return normalize_chunks(chunks, shape, dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise InputError(f"chunks: cannot chunk the output {shape!r} by {chunks!r}: {e}") from None


def resample_block(region, matrix, offset, out_shape, order, mode, cval, dtype):
    """scipy's ``affine_transform`` of an input region (volume by volume along any axes
    after the third) onto one output block."""
    region = np.asarray(region)
    extra = region.shape[3:]
    out = np.empty(tuple(out_shape) + extra, dtype=dtype)
    for idx in np.ndindex(*extra):
        sel = (slice(None),) * 3 + idx
        ndimage.affine_transform(
            region[sel],
            matrix,
            offset=offset,
            output_shape=tuple(out_shape),
            output=out[sel],
            order=order,
            mode=mode,
            cval=cval,
        )
    return out


def clip_block(block, lo, hi):
    """nilearn's clip: into ``[min(lo, 0), max(hi, 0)]``, keeping the block's dtype."""
    lo = min(np.asarray(lo)[()], 0)
    hi = max(np.asarray(hi)[()], 0)
    return np.clip(block, lo, hi, out=np.array(block, copy=True))


def _fill_value(order, mode, cval, dtype):
    """The value scipy writes far outside the input (``cval`` cast as scipy casts)."""
    out = ndimage.affine_transform(
        np.zeros((1, 1, 1)),
        np.eye(3),
        offset=-1e3,
        output_shape=(1, 1, 1),
        output=np.dtype(dtype),
        order=order,
        mode=mode,
        cval=cval,
    )
    return out.flat[0]


def _map(matrix, point):
    return matrix * point if matrix.ndim == 1 else matrix @ point


def resample_dask(
    arr,
    matrix,
    offset,
    out_shape,
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    dtype=None,
    chunks=None,
    halo: int | None = None,
):
    """A dask array of ``affine_transform(arr, matrix, offset, out_shape, ...)`` on the
    first three axes (``matrix`` 3x3 or its diagonal as shape (3,)), volume by volume
    along the rest, each output block reading only its input region.

    Parameters
    ----------
    arr : dask.array.Array
        The input, 3-D or more; axes after the third keep their chunks.
    matrix, offset : numpy.ndarray
        Output voxel ``o`` samples input voxel ``matrix @ o + offset``.
    out_shape : tuple of 3 ints
    order, mode, cval
        As scipy's ``affine_transform``.
    dtype : numpy dtype, optional
        The output dtype (default the input's, as scipy gives).
    chunks : optional
        Output spatial chunks (see :func:`default_chunks`).
    halo : int, optional
        Prefilter halo in voxels for spline orders > 1 (default :func:`spline_halo`).

    Returns
    -------
    dask.array.Array
    """
    import dask.array as da

    matrix = np.asarray(matrix, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    in_shape = np.array(arr.shape[:3])
    dtype = np.dtype(arr.dtype if dtype is None else dtype)
    extra_chunks = arr.chunks[3:]
    if halo is None:
        halo = spline_halo(order)
    elif not isinstance(halo, int | np.integer) or halo < 0:
        raise InputError(f"halo: expected a whole number of voxels >= 0, got {halo!r}")
    pad = 1 if order == 0 else 2 if order == 1 else order // 2 + 2 + int(halo)
    # scipy pads grid-constant splines by 12 voxels of cval before prefiltering: values
    # there are near cval, not cval
    margin = order + 2 + (12 if mode == "grid-constant" and order > 1 else 0)
    out_chunks = default_chunks(tuple(int(n) for n in out_shape), chunks)
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in out_chunks]
    fill = None
    rows = []
    for i0, n0 in zip(starts[0], out_chunks[0], strict=True):
        plane = []
        for i1, n1 in zip(starts[1], out_chunks[1], strict=True):
            line = []
            for i2, n2 in zip(starts[2], out_chunks[2], strict=True):
                start = np.array([i0, i1, i2])
                size = np.array([n0, n1, n2])
                corners = np.array(
                    [
                        _map(matrix, start + (size - 1) * np.array(c)) + offset
                        for c in np.ndindex(2, 2, 2)
                    ]
                )
                cmin, cmax = corners.min(0), corners.max(0)
                outside = (cmax < -margin) | (cmin > in_shape - 1 + margin)
                # a block beyond an edge still needs the halo inside the image (the
                # prefilter's values at the edge depend on it): pad from the clipped box
                lo = np.floor(np.clip(cmin, 0, in_shape - 1)).astype(int) - pad
                hi = np.floor(np.clip(cmax, 0, in_shape - 1)).astype(int) + pad + 1
                lo = np.where(cmin < 0, np.floor(cmin).astype(int) - pad, lo)
                hi = np.where(cmax > in_shape - 1, np.floor(cmax).astype(int) + pad + 1, hi)
                lo_c, hi_c = np.maximum(lo, 0), np.minimum(hi, in_shape)
                if mode in ("constant", "grid-constant") and (
                    outside.any() or (hi_c <= lo_c).any()
                ):
                    if fill is None:
                        fill = _fill_value(order, mode, cval, dtype)
                    line.append(
                        da.full(
                            (n0, n1, n2, *arr.shape[3:]),
                            fill,
                            dtype=dtype,
                            chunks=((n0,), (n1,), (n2,), *extra_chunks),
                        )
                    )
                    continue
                if mode not in _CLIPPED_MODES:
                    whole = (lo < 0) | (hi > in_shape)
                    lo_c = np.where(whole, 0, lo_c)
                    hi_c = np.where(whole, in_shape, hi_c)
                lo_c = np.minimum(lo_c, in_shape - 1)
                hi_c = np.maximum(hi_c, lo_c + 1)
                sl = tuple(slice(int(a), int(b)) for a, b in zip(lo_c, hi_c, strict=True))
                region = arr[sl]
                region = region.rechunk(region.shape[:3] + extra_chunks)
                local = _map(matrix, start.astype(np.float64)) + offset - lo_c
                line.append(
                    region.map_blocks(
                        resample_block,
                        matrix,
                        local,
                        (int(n0), int(n1), int(n2)),
                        order,
                        mode,
                        cval,
                        dtype,
                        chunks=((n0,), (n1,), (n2,), *extra_chunks),
                        dtype=dtype,
                        meta=np.empty((0,) * arr.ndim, dtype=dtype),
                    )
                )
            plane.append(line[0] if len(line) == 1 else da.concatenate(line, axis=2))
        rows.append(plane[0] if len(plane) == 1 else da.concatenate(plane, axis=1))
    return rows[0] if len(rows) == 1 else da.concatenate(rows, axis=0)


# -- argument checks and output classes shared by resample.py ---------------------------


def check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 0 <= order <= 5:
        raise InputError(f"order: expected a spline order 0 to 5, got {order!r}")
    return int(order)


def check_mode(mode) -> str:
    if mode not in MODES:
        raise InputError(f"mode: expected one of {MODES!r}, got {mode!r}")
    return mode


def check_number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a number, got {value!r}") from None


def check_affine(value, what: str, shapes=((4, 4),)) -> np.ndarray:
    try:
        aff = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected an affine array, got {value!r}") from None
    if aff.shape not in shapes or not np.all(np.isfinite(aff)):
        raise InputError(f"{what}: expected a finite array of shape {shapes[0]}, got {value!r}")
    return aff


def check_shape(value, what: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in value)
        ok = all(int(n) == n and n >= 1 for n in value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{what}: expected a sequence of positive whole numbers, got {value!r}")
    return shape


def inverse(aff: np.ndarray, what: str) -> np.ndarray:
    try:
        return npl.inv(aff)
    except npl.LinAlgError:
        raise InputError(f"{what}: the affine {aff.tolist()!r} is not invertible") from None


def nilearn_class(im):
    from ..formats.nifti import Nifti1Image

    name = type(im).__name__
    return type(im) if name in ("Nifti1Image", "Nifti2Image") else Nifti1Image


def nilearn_image(im, data, affine, copy_header):
    header = im.header.copy() if copy_header and im.header is not None else None
    klass = nilearn_class(im)
    if header is None:
        try:
            return klass(data, affine, None, dtype=data.dtype)
        except TypeError:
            return klass(data, affine)
    try:
        header = klass.header_class.from_header(header)
        header.set_data_dtype(data.dtype)
    except Exception:
        return klass(data, affine)
    return klass(data, affine, header)


def check_interpolation(interpolation) -> int:
    if interpolation not in _INTERPOLATIONS:
        raise InputError(
            f"interpolation: expected one of {tuple(_INTERPOLATIONS)!r}, got {interpolation!r}"
        )
    return _INTERPOLATIONS[interpolation]


def nanmin_max(arr):
    import dask.array as da

    if arr.dtype.kind in "iub":
        return arr.min(), arr.max()
    return da.nanmin(arr), da.nanmax(arr)


def get_bounds(shape, affine):
    """nilearn's ``get_bounds``: world bounds of the corner voxel centres."""
    a, b, c = (n - 1 for n in shape)
    box = np.array(
        [
            [0.0, 0, 0, 1],
            [a, 0, 0, 1],
            [0, b, 0, 1],
            [0, 0, c, 1],
            [a, b, 0, 1],
            [a, 0, c, 1],
            [0, b, c, 1],
            [a, b, c, 1],
        ]
    ).T
    box = np.dot(affine, box)[:3]
    return list(zip(box.min(axis=-1), box.max(axis=-1), strict=False))
