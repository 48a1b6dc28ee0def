"""World-aligned planes of an image, reading only what they show.

A :class:`Plane` is a 2-D array indexed ``[h, v]`` with both world coordinates
increasing along the array's axes, plus its extent in millimetres: drawn with
``imshow(plane.data.T, origin="lower", extent=plane.extent)`` it is in nilearn's
conventions (neurological: the subject's right on the right; superior up in the
sagittal and coronal planes, anterior up in the axial plane and to the right in
the sagittal plane). For a canonical (RAS+) image the sagittal, coronal and axial
planes are exactly ``data[i, :, :]``, ``data[:, j, :]`` and ``data[:, :, k]``.

Orientation comes from the affine, never from the array order:

* **Axis-aligned** images (each voxel axis along one world axis, up to nilearn's
  1e-3 tolerance on the other affine entries) give their planes by one read of a
  voxel plane (``dataobj[i, :, :, t]`` and so on), then flips and a transpose. For an
  orthogonal view of a volume of at most :data:`WHOLE_VOLUME_BYTES` stored bytes, the
  volume is read once instead: in any storage order two of the three planes touch
  every granule of it (a 32 KiB local read, a 512 KiB range, a seek point's inflation,
  a Zarr chunk), so three plane reads would cost about twice as much.
* **Oblique** images are resampled, nearest voxel, onto a world grid spaced by the
  smallest voxel size, for the plane only. The voxels it needs lie in a slab of the
  volume; they are read one voxel plane at a time (the plane along the voxel axis
  that varies least over the cut), each plane's bounding box of the needed voxels,
  never the whole volume unless the cut crosses all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from .volume import Volume

__all__ = ["PLANES", "Plane", "axis_alignment", "field_of_view", "ortho_planes", "plane"]

#: name, fixed world axis, (horizontal, vertical) world axes: nilearn's order and layout.
PLANES = (("sagittal", 0, (1, 2)), ("coronal", 1, (0, 2)), ("axial", 2, (0, 1)))
WORLD = "xyz"
#: Volumes up to this many stored bytes are read once for an orthogonal view.
WHOLE_VOLUME_BYTES = 64 * 2**20
#: Affine entries at most this large (mm) do not break axis alignment (nilearn's value).
ALIGN_TOL = 1e-3


@dataclass
class Plane:
    """One cut: ``data[h, v]`` (NaN outside the image), world extent ``(h0, h1, v0, v1)``
    in mm (voxel edges), the cut's world axis and coordinate."""

    name: str
    axis: int
    coord: float
    data: np.ndarray
    extent: tuple[float, float, float, float]
    hv: tuple[int, int]
    inside: bool = True

    @property
    def label(self) -> str:
        return f"{WORLD[self.axis]}={self.coord:.0f}"


def axis_alignment(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(voxel axis of each world axis, sign)`` when the affine is axis-aligned, else None.

    >>> perm, sign = axis_alignment(np.diag([-2.0, 2.0, 2.0, 1.0]))
    >>> perm.tolist(), sign.tolist()
    ([0, 1, 2], [-1.0, 1.0, 1.0])
    >>> axis_alignment(np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]]))[0]
    array([2, 0, 1])
    """
    rot = np.asarray(affine, np.float64)[:3, :3]
    if not np.all(np.isfinite(rot)):
        return None
    big = np.abs(rot) > ALIGN_TOL
    if not (np.all(big.sum(axis=0) == 1) and np.all(big.sum(axis=1) == 1)):
        return None
    perm = np.argmax(big, axis=1)  # world axis w <- voxel axis perm[w]
    sign = np.sign(rot[np.arange(3), perm])
    return perm, sign


def field_of_view(vol: Volume) -> tuple[np.ndarray, np.ndarray]:
    """World (lo, hi) of the voxel centres' bounding box, per axis (mm)."""
    n = np.array(vol.shape[:3], np.float64) - 1
    corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])])
    world = corners @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def centre(vol: Volume) -> np.ndarray:
    """World coordinates (mm) of the centre of the field of view."""
    return vol.affine[:3, :3] @ ((np.array(vol.shape[:3]) - 1) / 2) + vol.affine[:3, 3]


def check_coords(vol: Volume, coords) -> np.ndarray:
    """``coords`` as three finite world coordinates (default: the centre of the field of view)."""
    if coords is None:
        return centre(vol)
    try:
        xyz = np.asarray(coords, dtype=np.float64).reshape(3)
    except (TypeError, ValueError):
        raise InputError(f"coords must be three world coordinates (mm), got {coords!r}") from None
    if not np.all(np.isfinite(xyz)):
        raise InputError(f"coords must be finite, got {coords!r}")
    return xyz


def check_t(vol: Volume, t) -> int | None:
    """The volume index ``t`` (negative counts from the end), None for a 3-D image."""
    if vol.ndim == 3:
        if t not in (0, None, -1):
            raise InputError(f"{vol.label()} is 3-D: it has no volume {t}")
        return None
    try:
        t = int(t)
    except (TypeError, ValueError):
        raise InputError(f"t must be a volume number, got {t!r}") from None
    if not -vol.nt <= t < vol.nt:
        raise InputError(f"{vol.label()} has {vol.nt} volumes: there is no volume {t}")
    return t % vol.nt


def ortho_planes(vol: Volume, coords=None, t=0) -> list[Plane]:
    """The sagittal, coronal and axial planes through world point ``coords`` (mm) of
    volume ``t``: three reads of voxel planes for an axis-aligned image.

    >>> import voxray as vx
    >>> from voxray.plotting.volume import as_volume
    >>> from voxray.testing import NIBABEL_DATA
    >>> vol = as_volume(vx.load(NIBABEL_DATA / "functional.nii"))   # 17 x 21 x 3 x 20, LAS
    >>> [(p.name, p.label, p.data.shape) for p in ortho_planes(vol, (0, 0, 10), t=5)]
    [('sagittal', 'x=0', (21, 3)), ('coronal', 'y=0', (17, 3)), ('axial', 'z=10', (17, 21))]
    """
    xyz = check_coords(vol, coords)
    ti = check_t(vol, t)
    nbytes = math.prod(vol.shape[:3]) * max(1, vol.dtype.itemsize)
    if axis_alignment(vol.affine) is not None and nbytes <= WHOLE_VOLUME_BYTES:
        # Whatever the storage order, two of the three planes span the volume's bytes
        # (file granules, gzip inflation, Zarr chunks): one read of the volume costs
        # less than the three plane reads, and a chunk holding two planes is fetched once.
        key = (slice(None),) * 3 + (() if ti is None else (ti,))
        stored = vol.read_stored(key)
        vol = replace(vol, shape=vol.shape[:3], reader=lambda k, _a=stored: _a[k])
        ti = None
    return [plane(vol, axis, xyz, ti) for _, axis, _ in PLANES]


def plane(vol: Volume, axis: int, coords, t: int | None) -> Plane:
    """The plane through ``coords`` orthogonal to world axis ``axis`` (0=x, 1=y, 2=z)."""
    xyz = np.asarray(coords, np.float64)
    name, _, hv = PLANES[axis]
    aligned = axis_alignment(vol.affine)
    if aligned is not None:
        return _aligned_plane(vol, axis, xyz, t, name, hv, *aligned)
    return _oblique_plane(vol, axis, xyz, t, name, hv)


def _aligned_plane(vol, axis, xyz, t, name, hv, perm, sign) -> Plane:
    A, b = vol.affine[:3, :3], vol.affine[:3, 3]
    a_fixed = int(perm[axis])
    ijk = np.linalg.solve(A, xyz - b)
    # Nearest plane; a tie goes to the higher world coordinate whatever the storage order.
    u = ijk[a_fixed]
    idx = int(np.floor(u + 0.5) if sign[axis] > 0 else np.ceil(u - 0.5))
    h, v = hv
    ah, av = int(perm[h]), int(perm[v])
    nh, nv = vol.shape[ah], vol.shape[av]
    # World coordinates of the plane's first and last voxel centres along h and v.
    step_h, step_v = abs(A[h, ah]), abs(A[v, av])
    lo = [b[h] + min(0, A[h, ah] * (nh - 1)), b[v] + min(0, A[v, av] * (nv - 1))]
    # Off-axis entries under the tolerance shift a plane by less than 1e-3 mm per voxel.
    extent = (
        lo[0] - step_h / 2,
        lo[0] + step_h * (nh - 0.5),
        lo[1] - step_v / 2,
        lo[1] + step_v * (nv - 0.5),
    )
    if not 0 <= idx < vol.shape[a_fixed]:
        return Plane(name, axis, float(xyz[axis]), np.full((nh, nv), np.nan), extent, hv, False)
    key: list = [slice(None)] * 3
    key[a_fixed] = idx
    if t is not None:
        key.append(t)
    arr = vol.read(tuple(key))  # axes: the two remaining voxel axes, ascending
    rest = [a for a in range(3) if a != a_fixed]
    arr = arr if rest == [ah, av] else arr.T
    rev = slice(None, None, -1)
    arr = arr[rev if sign[h] < 0 else slice(None), rev if sign[v] < 0 else slice(None)]
    return Plane(name, axis, float(xyz[axis]), arr, extent, hv)


def _oblique_plane(vol, axis, xyz, t, name, hv) -> Plane:
    A, b = vol.affine[:3, :3], vol.affine[:3, 3]
    zooms = np.sqrt((A**2).sum(axis=0))
    step = float(zooms.min())
    lo, hi = field_of_view(vol)
    h, v = hv
    gh = np.arange(lo[h], hi[h] + step / 2, step)
    gv = np.arange(lo[v], hi[v] + step / 2, step)
    extent = (gh[0] - step / 2, gh[-1] + step / 2, gv[0] - step / 2, gv[-1] + step / 2)
    pts = np.empty((gh.size, gv.size, 3))
    pts[..., axis] = xyz[axis]
    pts[..., h] = gh[:, None]
    pts[..., v] = gv[None, :]
    ijk = np.floor(np.linalg.solve(A, (pts - b).reshape(-1, 3).T).T + 0.5).astype(np.int64)
    shape = np.array(vol.shape[:3])
    inside = np.all((ijk >= 0) & (ijk < shape), axis=1)
    out = np.full(gh.size * gv.size, np.nan)
    if inside.any():
        out[inside] = gather(vol, ijk[inside], t)
    return Plane(
        name, axis, float(xyz[axis]), out.reshape(gh.size, gv.size), extent, hv, inside.any()
    )


def gather(vol: Volume, ijk: np.ndarray, t: int | None) -> np.ndarray:
    """Values at voxel indices ``ijk`` (n, 3) of volume ``t``, read one voxel plane at a
    time along the axis whose index varies least, each plane's bounding box only."""
    spans = ijk.max(axis=0) - ijk.min(axis=0)
    a = int(np.argmin(spans))
    rest = [x for x in range(3) if x != a]
    values = np.empty(len(ijk))
    for u in np.unique(ijk[:, a]):
        sel = np.flatnonzero(ijk[:, a] == u)
        sub = ijk[sel]
        lo0, lo1 = sub[:, rest[0]].min(), sub[:, rest[1]].min()
        key: list = [None] * 3
        key[a] = int(u)
        key[rest[0]] = slice(int(lo0), int(sub[:, rest[0]].max()) + 1)
        key[rest[1]] = slice(int(lo1), int(sub[:, rest[1]].max()) + 1)
        if t is not None:
            key.append(t)
        box = vol.read(tuple(key))
        values[sel] = box[sub[:, rest[0]] - lo0, sub[:, rest[1]] - lo1]
    return values
