"""Images to DataArrays, and DataArrays back to affines and headers.

Dims are ``i, j, k`` then ``t`` (NIfTI's 4th axis) and ``u, v, w`` (5th-7th).
World coordinates ``x, y, z`` (mm, RAS+) come lazily from the affine through
:mod:`.index`: axis-aligned affines get one 1-D :class:`AxisIndex` per world axis,
oblique ones one coupled :class:`AffineIndex`. ``t`` is in seconds from
``pixdim[4]``, ``toffset`` and ``xyzt_units``.

Header fields that describe the data go in ``attrs``; on-disk details go in
``encoding`` (``dtype``, ``scale_factor``/``add_offset`` as CF names them, which
is NIfTI's slope/intercept, ``source``, ``preferred_chunks``, and the raw header
with extensions as ``nifti_header``), as xarray's own backends do.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from ..headers import xyzt_units
from .index import AffineIndex, AxisIndex
from .transform import VOXEL_DIMS, WORLD_NAMES, AffineTransform

__all__ = [
    "DIMS",
    "affine_of",
    "build_dataarray",
    "header_attrs",
    "image_name",
    "world_coords",
]

DIMS = ("i", "j", "k", "t", "u", "v", "w")
_TIME_SCALE = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_AXIS_TOL = 1e-6  # off-axis terms below this fraction of the voxel size: axis-aligned


def image_name(path: str | None) -> str | None:
    """``'bold'`` for ``'/data/bold.nii.gz'``."""
    if not path:
        return None
    base = os.path.basename(str(path))
    for suffix in (".gz", ".bz2", ".zst"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    for suffix in (
        *(".nii", ".hdr", ".img", ".nii.zarr", ".zarr"),
        *(".mgh", ".mgz", ".mnc", ".par", ".rec", ".brik", ".head", ".v"),
    ):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)] or None
    return base or None


def _axis_aligned(A: np.ndarray) -> list[int] | None:
    """For each world row, its voxel column, if A is a scaled permutation (with flips)."""
    scale = np.abs(A).max(initial=0)
    if scale == 0:
        return None
    big = np.abs(A) > _AXIS_TOL * np.abs(A).max(axis=0, keepdims=True).clip(min=1e-300)
    if not (np.all(big.sum(axis=1) == 1) and np.all(big.sum(axis=0) == 1)):
        return None
    return [int(np.argmax(big[r])) for r in range(3)]


def world_coords(affine: np.ndarray, sizes: dict[str, int]) -> xr.Coordinates:
    """x, y, z coordinates (and indexes) of a voxel grid with this affine."""
    A = np.asarray(affine, dtype=np.float64)[:3, :3]
    c = np.asarray(affine, dtype=np.float64)[:3, 3]
    present = {d: n for d, n in sizes.items() if d in VOXEL_DIMS}
    cols = _axis_aligned(A)
    coords = xr.Coordinates()
    if cols is None:
        t = AffineTransform(A, c, WORLD_NAMES, present)
        return xr.Coordinates.from_xindex(AffineIndex(t))
    for r, name in enumerate(WORLD_NAMES):
        dim = VOXEL_DIMS[cols[r]]
        if dim in present:
            t = AffineTransform(A[r : r + 1], c[r : r + 1], [name], {dim: present[dim]})
            coords = coords.merge(xr.Coordinates.from_xindex(AxisIndex(t))).coords
        else:  # a 2-D image: the world position along the absent axis is a scalar
            coords = coords.merge(
                xr.Coordinates({name: xr.Variable((), c[r], {"units": "mm"})}, indexes={})
            ).coords
    return coords


def _time_coord(header, n: int) -> xr.Variable | None:
    zooms = header.get_zooms()
    if len(zooms) >= 4 and not hasattr(header, "get_xyzt_units") and _has(header, "tr"):
        tr = float(header["tr"])  # FreeSurfer MGH: the footer's TR, in ms
        if tr <= 0:
            return None
        return xr.Variable(
            ("t",), np.arange(n) * (tr / 1000.0), {"units": "s", "long_name": "time"}
        )
    if len(zooms) < 4 or not hasattr(header, "get_xyzt_units"):
        return None
    step = float(zooms[3])
    if step <= 0:
        return None
    _, unit = xyzt_units(header)
    toffset = float(header["toffset"]) if _has(header, "toffset") else 0.0
    if unit in _TIME_SCALE or unit == "unknown":
        scale = _TIME_SCALE.get(unit, 1.0)
        values = (toffset + step * np.arange(n)) * scale
        return xr.Variable(("t",), values, {"units": "s", "long_name": "time"})
    units = {"hz": "Hz", "ppm": "ppm", "rads": "rad/s"}.get(unit, unit)
    return xr.Variable(("t",), toffset + step * np.arange(n), {"units": units})


def _has(header, field: str) -> bool:
    try:
        return field in header
    except (TypeError, KeyError, ValueError):  # headers that are not mappings (MINC)
        return False


def header_attrs(header) -> dict:
    """Header fields that describe the data, as plain attrs."""
    from nibabel.nifti1 import slice_order_codes, xform_codes

    attrs: dict = {}
    if _has(header, "descrip"):
        text = bytes(header["descrip"]).split(b"\x00")[0].decode("latin-1").strip()
        if text:
            attrs["description"] = text
    if _has(header, "intent_code") and int(header["intent_code"]):
        try:
            name, params, intent_name = header.get_intent()
            attrs["intent"] = name
            if any(params):
                attrs["intent_params"] = [float(p) for p in params]
            if intent_name:
                attrs["intent_name"] = intent_name
        except Exception:  # unknown intent codes stay numeric
            attrs["intent"] = int(header["intent_code"])
    for field in ("cal_min", "cal_max"):
        if _has(header, field) and float(header[field]):
            attrs[field] = float(header[field])
    for field in ("qform_code", "sform_code"):
        if _has(header, field):
            code = int(header[field])
            attrs[field] = xform_codes.label[code] if code in xform_codes.code else code
    if hasattr(header, "get_dim_info"):
        for role, dim in zip(("freq_dim", "phase_dim", "slice_dim"), header.get_dim_info()):
            if dim is not None:
                attrs[role] = DIMS[dim]
    if _has(header, "slice_code") and int(header["slice_code"]):
        code = int(header["slice_code"])
        attrs["slice_code"] = (
            slice_order_codes.label[code] if code in slice_order_codes.code else code
        )
    for field in ("slice_start", "slice_end", "slice_duration"):
        if _has(header, field) and float(header[field]):
            attrs[field] = (
                float(header[field]) if field == "slice_duration" else int(header[field])
            )
    return attrs


def _header_bytes(header) -> bytes:
    import io

    buf = io.BytesIO()
    header.write_to(buf)
    return buf.getvalue()


def build_dataarray(img, data, name: str | None = None) -> xr.DataArray:
    """A DataArray of ``data`` (dask or lazily indexed, in NIfTI axis order) for image ``img``."""
    from ..planning import default_chunks

    dims = DIMS[: img.ndim]
    sizes = dict(zip(dims, img.shape))
    coords = world_coords(img.affine, sizes)
    if "t" in sizes:
        t = _time_coord(img.header, sizes["t"])
        if t is not None:
            coords = coords.merge(xr.Coordinates({"t": t})).coords
    name = name if name is not None else image_name(img.get_filename())
    da = xr.DataArray(data, dims=dims, coords=coords, name=name, attrs=header_attrs(img.header))
    proxy = img.dataobj
    enc: dict = {"source": img.get_filename(), "nibabel_class": img.nibabel_class.__name__}
    layout = getattr(getattr(proxy, "reader", None), "layout", None)
    disk = np.dtype(layout.dtype if layout is not None else img.get_data_dtype())
    if disk.fields is None:
        enc["dtype"] = disk.newbyteorder("=")
    if layout is not None and layout.is_scaled:
        enc["scale_factor"] = float(layout.slope)
        enc["add_offset"] = float(layout.inter)
    enc["preferred_chunks"] = dict(zip(dims, default_chunks(img.shape, da.dtype.itemsize)))
    enc["affine"] = np.asarray(img.affine).tolist()
    enc["nifti_header"] = _header_bytes(img.header)
    da.encoding.update(enc)
    return da


def to_dataarray(img, name: str | None = None) -> xr.DataArray:
    """The image as a dask-backed DataArray (lazy, in the image's chunks)."""
    return build_dataarray(img, img.to_dask(), name=name)


def affine_of(da: xr.DataArray) -> np.ndarray:
    """The 4x4 voxel (i, j, k) to world (x, y, z) affine of a DataArray, from its indexes."""
    affine = np.eye(4)
    known = set()
    seen = set()
    for index in da.xindexes.values():
        if id(index) in seen or not isinstance(index, AxisIndex | AffineIndex):
            continue
        seen.add(id(index))
        t = index.transform
        for r, wname in enumerate(t.coord_names):
            w = WORLD_NAMES.index(wname)
            for c, col in enumerate(t.columns):
                if col in VOXEL_DIMS:
                    affine[w, VOXEL_DIMS.index(col)] = t.matrix[r, c]
            affine[w, 3] = t.offset[r]
            known.add(w)
    source = np.asarray(da.encoding.get("affine", np.eye(4)), dtype=np.float64)
    for w, wname in enumerate(WORLD_NAMES):
        if w in known:
            continue
        # A world axis without an index (its voxel dimension was selected away):
        # the position is the scalar coordinate, the direction the source's.
        affine[w, :3] = source[w, :3]
        if wname in da.coords and da.coords[wname].ndim == 0:
            affine[w, 3] = float(da.coords[wname])
        else:
            affine[w, 3] = source[w, 3]
    return affine
