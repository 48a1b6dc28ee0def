"""CIFTI-2 images as DataArrays: dims and coordinates from the CIFTI axes.

Each matrix dimension is named after its nibabel axis, and gets that axis's
coordinates (all read from the header; the data stays a lazy dask array):

=================  ===================  ==============================================
nibabel axis       dim                  coordinates
=================  ===================  ==============================================
``SeriesAxis``     ``time`` (SECOND),   the dim itself: ``start + step * i`` in the
                   ``frequency``        base unit (s, Hz, m, rad; nibabel has already
                   (HERTZ), ``distance``  applied ``series_exponent``)
                   (METER), ``angle``
                   (RADIAN)
``BrainModelAxis`` ``grayordinate``     ``structure`` (CIFTI structure name),
                                        ``vertex`` (surface vertex, -1 for voxels),
                                        ``voxel_i/j/k`` (-1 for vertices), ``x, y, z``
                                        (mm, from the axis affine; NaN for vertices)
``ParcelsAxis``    ``parcel``           the dim itself: parcel names
``ScalarAxis``     ``scalar``           the dim itself: map names
``LabelAxis``      ``label``            the dim itself: map names; label tables in
                                        ``attrs["label_tables"]``
=================  ===================  ==============================================

A name used by two axes (a dense connectome's two brain-model axes) is suffixed
``_row`` and ``_col`` (``grayordinate_row``, ``structure_row``...), or ``_0``,
``_1``, ``_2`` for three.
"""

from __future__ import annotations

import os

import numpy as np
from nibabel.cifti2 import cifti2_axes

from ...errors import InvalidHeaderError

__all__ = ["axis_coords", "dim_names", "to_dataarray"]

_SERIES = {
    "SECOND": ("time", "s"),
    "HERTZ": ("frequency", "Hz"),
    "METER": ("distance", "m"),
    "RADIAN": ("angle", "rad"),
}


def _base_name(ax) -> str:
    if isinstance(ax, cifti2_axes.SeriesAxis):
        return _SERIES.get(str(ax.unit).upper(), ("series", ""))[0]
    if isinstance(ax, cifti2_axes.BrainModelAxis):
        return "grayordinate"
    if isinstance(ax, cifti2_axes.ParcelsAxis):
        return "parcel"
    if isinstance(ax, cifti2_axes.LabelAxis):
        return "label"
    if isinstance(ax, cifti2_axes.ScalarAxis):
        return "scalar"
    return "axis"


def dim_names(axes) -> tuple[tuple[str, str], ...]:
    """``(dim, coordinate suffix)`` per axis: base names, suffixed where they repeat.

    >>> import numpy as np
    >>> bm = cifti2_axes.BrainModelAxis.from_surface(np.arange(3), 5, "CortexLeft")
    >>> dim_names([bm, bm])
    (('grayordinate_row', '_row'), ('grayordinate_col', '_col'))
    >>> dim_names([cifti2_axes.SeriesAxis(0, 0.72, 4), bm])
    (('time', ''), ('grayordinate', ''))
    """
    bases = [_base_name(ax) for ax in axes]
    out = []
    for i, base in enumerate(bases):
        same = [j for j, b in enumerate(bases) if b == base]
        if len(same) == 1:
            suffix = ""
        elif len(same) == 2:
            suffix = ("_row", "_col")[same.index(i)]
        else:
            suffix = f"_{same.index(i)}"
        out.append((base + suffix, suffix))
    return tuple(out)


def axis_coords(ax, dim: str, suffix: str = "") -> tuple[dict, dict]:
    """``(coords, attrs)`` of one CIFTI axis along ``dim`` (see the module docstring)."""
    import xarray as xr

    coords: dict = {}
    attrs: dict = {}
    if isinstance(ax, cifti2_axes.SeriesAxis):
        _, units = _SERIES.get(str(ax.unit).upper(), ("series", str(ax.unit)))
        coords[dim] = xr.Variable((dim,), np.asarray(ax.time, dtype=np.float64), {"units": units})
    elif isinstance(ax, cifti2_axes.BrainModelAxis):
        voxel = np.asarray(ax.voxel)
        surface = np.asarray(ax.surface_mask)
        coords["structure" + suffix] = (dim, np.asarray(ax.name, dtype=str))
        coords["vertex" + suffix] = (dim, np.asarray(ax.vertex, dtype=np.int64))
        for c, letter in enumerate("ijk"):
            coords[f"voxel_{letter}{suffix}"] = (dim, voxel[:, c].astype(np.int64))
        xyz = np.full((ax.size, 3), np.nan)
        if ax.affine is not None and (~surface).any():
            from nibabel.affines import apply_affine

            xyz[~surface] = apply_affine(ax.affine, voxel[~surface])
        for c, letter in enumerate("xyz"):
            coords[letter + suffix] = xr.Variable((dim,), xyz[:, c], {"units": "mm"})
        if ax.affine is not None:
            attrs["volume_affine" + suffix] = np.asarray(ax.affine).tolist()
            attrs["volume_shape" + suffix] = [int(n) for n in ax.volume_shape]
        if ax.nvertices:
            attrs["nvertices" + suffix] = {str(k): int(v) for k, v in ax.nvertices.items()}
    elif isinstance(ax, cifti2_axes.LabelAxis):
        coords[dim] = (dim, np.asarray(ax.name, dtype=str))
        attrs["label_tables" + suffix] = [
            {int(k): [v[0], *(float(c) for c in v[1])] for k, v in table.items()}
            for table in ax.label
        ]
    elif isinstance(ax, cifti2_axes.ParcelsAxis | cifti2_axes.ScalarAxis):
        coords[dim] = (dim, np.asarray(ax.name, dtype=str))
    return coords, attrs


def _name(path: str | None) -> str | None:
    """``'sub-01_bold'`` for ``'/data/sub-01_bold.dtseries.nii'``."""
    if not path:
        return None
    from . import CIFTI

    base = os.path.basename(str(path))
    for suffix in [*sorted(CIFTI.suffixes, key=len, reverse=True), ".nii.gz", ".nii"]:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)] or None
    return base or None


def to_dataarray(img, name: str | None = None):
    """A CIFTI-2 image as a lazy, dask-backed DataArray (see the module docstring).

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> da = vx.load(NIBABEL_DATA / "row_major.dconn.nii").to_xarray()
    >>> da.dims, da.name, da.coords["structure_row"].values[0]
    (('grayordinate_row', 'grayordinate_col'), 'row_major', np.str_('CIFTI_STRUCTURE_CORTEX_LEFT'))
    """
    import xarray as xr
    from nibabel.cifti2 import Cifti2HeaderError

    try:
        axes = [img.header.get_axis(i) for i in range(len(img.shape))]
    except Cifti2HeaderError as e:  # a data dimension the XML does not map
        raise InvalidHeaderError(
            f"{img.get_filename() or 'this image'!r}: the data of shape {img.shape!r} has a "
            f"dimension without a CIFTI-2 index map in the XML header ({e})"
        ) from None
    lengths = tuple(len(ax) for ax in axes)
    if lengths != tuple(img.shape):  # nibabel loads this (with a warning); no labels fit
        raise InvalidHeaderError(
            f"{img.get_filename() or 'this image'!r}: the data's shape {tuple(img.shape)!r} "
            f"(NIfTI dim) disagrees with the CIFTI-2 XML's axis lengths {lengths!r}, so its "
            f"dimensions cannot be labelled"
        )
    names = dim_names(axes)
    coords: dict = {}
    attrs: dict = {"cifti_axes": [type(ax).__name__ for ax in axes]}
    for ax, (dim, suffix) in zip(axes, names):
        c, a = axis_coords(ax, dim, suffix)
        coords.update(c)
        attrs.update(a)
    nhdr = img.nifti_header
    try:
        intent = nhdr.get_intent()[0]
    except Exception:  # an intent code nibabel does not know stays numeric
        intent = int(nhdr["intent_code"])
    attrs["intent"] = intent
    dims = tuple(dim for dim, _ in names)
    out = xr.DataArray(
        img.to_dask(),
        dims=dims,
        coords=coords,
        name=name if name is not None else _name(img.get_filename()),
        attrs=attrs,
    )
    out.encoding.update(
        {
            "source": img.get_filename(),
            "nibabel_class": img.nibabel_class.__name__,
            "dtype": np.dtype(img.get_data_dtype()).newbyteorder("="),
            "cifti_header": img.header.to_xml(),
        }
    )
    return out
