"""The ``.vx`` DataArray accessor: affine, header, orientation and conversion."""

from __future__ import annotations

import io
import os

import numpy as np
import xarray as xr
from nibabel.affines import apply_affine
from nibabel.orientations import axcodes2ornt, ornt2axcodes, ornt_transform

from ..headers import xyzt_units
from ..image import orientation
from .build import DIMS, affine_of
from .transform import VOXEL_DIMS

__all__ = ["VoxrayAccessor", "reorient"]


def reorient(da: xr.DataArray, axcodes="RAS") -> xr.DataArray:
    """``da`` with its voxel axes flipped and permuted to ``axcodes`` order, lazily.

    Flips are reversed slices and permutations are transposes plus renames, so the
    data stays a lazy view and every voxel keeps its world coordinates.
    """
    present = [d for d in VOXEL_DIMS if d in da.dims]
    if len(present) < 3:
        raise ValueError(f"reorientation needs the three voxel dims i, j, k; got {da.dims}")
    affine = affine_of(da)
    target = axcodes2ornt(tuple(axcodes))
    ornt = ornt_transform(orientation(affine, da.encoding.get("source") or da.name), target)
    out = da
    flips = {VOXEL_DIMS[a]: slice(None, None, -1) for a in range(3) if ornt[a, 1] == -1}
    if flips:
        out = out.isel(flips)
    rename = {VOXEL_DIMS[a]: VOXEL_DIMS[int(ornt[a, 0])] for a in range(3)}
    rename = {k: v for k, v in rename.items() if k != v}
    if rename:
        out = out.rename(rename)
    order = [d for d in DIMS if d in out.dims] + [d for d in out.dims if d not in DIMS]
    out = out.transpose(*order)
    if "freq_dim" in out.attrs or "phase_dim" in out.attrs or "slice_dim" in out.attrs:
        out.attrs = {
            k: (rename.get(v, v) if k in ("freq_dim", "phase_dim", "slice_dim") else v)
            for k, v in out.attrs.items()
        }
    return out


@xr.register_dataarray_accessor("vx")
class VoxrayAccessor:
    """Neuroimaging helpers on a DataArray with voxel dims ``i, j, k`` (voxray's layout).

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> da = vx.open_dataarray(NIBABEL_DATA / "example4d.nii.gz")
    >>> da.vx.axcodes, da.vx.zooms[:3]
    (('L', 'A', 'S'), (2.0, 2.0, 2.199999))
    """

    def __init__(self, da: xr.DataArray):
        self._da = da

    @property
    def affine(self) -> np.ndarray:
        """Voxel (i, j, k) to world (x, y, z, mm, RAS+) affine, kept up to date by slicing."""
        return affine_of(self._da)

    @property
    def axcodes(self) -> tuple[str, ...]:
        da = self._da
        return tuple(ornt2axcodes(orientation(self.affine, da.encoding.get("source") or da.name)))

    @property
    def zooms(self) -> tuple[float, ...]:
        """Voxel sizes along i, j, k (mm, to 1e-6: headers store float32), then the time
        step (s) when there is one."""
        norms = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        zooms = tuple(float(z) for z in np.round(norms, 6))
        if "t" in self._da.coords and self._da.sizes.get("t", 0) > 1:
            t = np.asarray(self._da["t"])
            zooms += (float(np.round(t[1] - t[0], 9)),)
        return zooms

    @property
    def header(self):
        """A nibabel header for the DataArray as it is now (shape, affine, dtype, units),
        starting from the source's header when the DataArray came from a file."""
        return self.to_image().header

    def voxel_to_world(self, ijk) -> np.ndarray:
        """World coordinates (mm) of voxel positions ``(..., 3)``."""
        return apply_affine(self.affine, np.asarray(ijk, dtype=np.float64))

    def world_to_voxel(self, xyz) -> np.ndarray:
        """Fractional voxel positions of world coordinates ``(..., 3)`` (mm)."""
        return apply_affine(np.linalg.inv(self.affine), np.asarray(xyz, dtype=np.float64))

    def reorient(self, axcodes="RAS") -> xr.DataArray:
        """Lazily reorient to ``axcodes`` (default RAS+, like ``as_closest_canonical``)."""
        return reorient(self._da, axcodes)

    def to_image(self):
        """A voxray Image with the same data (lazy when dask-backed), affine and header.

        The header is the source file's (extensions included) when the DataArray still
        carries it in ``encoding``, updated for shape, affine, units and time step; the
        on-disk dtype is then kept."""
        from ..image import Image, Provenance

        da = self._da
        order = [d for d in DIMS if d in da.dims]
        extra = [d for d in da.dims if d not in DIMS]
        if extra:
            raise ValueError(
                f"dims {extra} are not NIfTI axes ({', '.join(DIMS)}); select or reduce them first"
            )
        da = da.transpose(*order)
        header = _source_header(da)
        data = da.data
        img = Image(data, self.affine, header)
        source = da.encoding.get("source")
        if source:  # writers refuse to overwrite the file the data is read from
            img.provenance = Provenance(files=frozenset([_local_name(source)]))
        hdr = img.header
        if hasattr(hdr, "set_xyzt_units"):
            space, time = xyzt_units(hdr)
            hdr.set_xyzt_units(
                space if space != "unknown" else "mm", "sec" if "t" in da.coords else time
            )
        if "t" in da.coords and da.sizes.get("t", 0) > 1:
            zooms = list(hdr.get_zooms())
            t = np.asarray(da["t"])
            zooms[3] = float(t[1] - t[0])
            hdr.set_zooms(zooms)
            if "toffset" in hdr:
                hdr["toffset"] = float(t[0])
        return img

    def to_nifti(self, path, **kwargs) -> None:
        """Write the DataArray to NIfTI out of core (see :func:`voxray.save`); values are
        encoded back with the on-disk dtype and scaling its encoding still names."""
        from ..open import save

        save(self._da, path, **kwargs)

    def to_zarr(self, store, **kwargs) -> str:
        """Write the DataArray as OME-Zarr 0.5 / NIfTI-Zarr (see :func:`voxray.to_zarr`)."""
        from ..open import to_zarr

        return to_zarr(self._da, store, **kwargs)

    # -- pictures (voxray.plotting: they read only what they show) ----------------------

    def _repr_html_(self) -> str:
        """``da.vx`` in a notebook: voxray's table of the DataArray (file, dims, dtype,
        zooms, axis codes, affine, storage, chunks) with a thumbnail only when it costs a
        bounded number of bytes (see :func:`voxray.plotting.html.dataarray_html`)."""
        from ..plotting.html import dataarray_html

        return dataarray_html(self._da)

    def plot_ortho(self, coords=None, **kwargs):
        """Sagittal, coronal and axial planes through world point ``coords`` (mm), reading
        only those planes: :func:`voxray.plot_ortho` of this DataArray (voxel dims
        ``i, j, k[, t]``; a sliced or reoriented DataArray is placed by its own affine).

        >>> import voxray as vx
        >>> from voxray.testing import NIBABEL_DATA
        >>> da = vx.open_dataarray(NIBABEL_DATA / "example4d.nii.gz")
        >>> [ax.get_label() for ax in da.vx.plot_ortho(t=1).axes]
        ['sagittal', 'coronal', 'axial']
        """
        from ..plotting import plot_ortho

        return plot_ortho(self._da, coords, **kwargs)

    def plot_mosaic(self, **kwargs):
        """A lightbox of evenly spaced planes: :func:`voxray.plot_mosaic` of this DataArray."""
        from ..plotting import plot_mosaic

        return plot_mosaic(self._da, **kwargs)

    def plot_timecourse(self, coords, **kwargs):
        """The series at world point(s) ``coords`` (mm): :func:`voxray.plot_timecourse`."""
        from ..plotting import plot_timecourse

        return plot_timecourse(self._da, coords, **kwargs)

    def plot_carpet(self, **kwargs):
        """Voxels x time, streamed once over the data: :func:`voxray.plot_carpet`."""
        from ..plotting import plot_carpet

        return plot_carpet(self._da, **kwargs)

    def orthoview(self, **kwargs):
        """An interactive viewer reading planes on demand (see ``Image.orthoview``):
        a :class:`~voxray.plotting.viewer.OrthoViewer` of this DataArray."""
        from ..plotting.viewer import OrthoViewer

        kwargs.setdefault("title", self._da.encoding.get("source") or self._da.name)
        return OrthoViewer(self._da, **kwargs)


def _local_name(source: str) -> str:
    from ..sources import is_url

    return source if is_url(source) else os.path.abspath(source.removeprefix("file://"))


def _source_header(da: xr.DataArray):
    """The source file's header (with extensions) if known, else a fresh NIfTI-1 header."""
    import nibabel as nib

    raw = da.encoding.get("nifti_header")
    if not raw:
        return None
    cls = {
        "Nifti2Image": nib.Nifti2Header,
        "Nifti2Pair": nib.nifti2.Nifti2PairHeader,
        "Nifti1Pair": nib.nifti1.Nifti1PairHeader,
        "AnalyzeImage": nib.AnalyzeHeader,
        "Spm99AnalyzeImage": nib.Spm99AnalyzeHeader,
        "Spm2AnalyzeImage": nib.Spm2AnalyzeHeader,
    }.get(da.encoding.get("nibabel_class"), nib.Nifti1Header)
    try:
        return cls.from_fileobj(io.BytesIO(raw), check=False)
    except Exception:  # a damaged encoding entry: fall back to a fresh header
        return None
