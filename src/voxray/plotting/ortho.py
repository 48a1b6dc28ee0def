"""Orthogonal views and mosaics: matplotlib Figures that read only the planes they show.

Figures are made with :class:`matplotlib.figure.Figure` (not pyplot): no window, no
global state, safe in threads and on a headless machine; Jupyter displays them, and
``fig.savefig`` writes them. Panels are drawn in world millimetres (``imshow`` with
the plane's extent), so ``ax.transData`` maps a pixel to a world coordinate and every
panel has the same mm scale. The look follows nilearn's: black background, the cut
(``x=12``) in the lower left, orientation letters on the panel edges, NaN transparent.

Contrast: ``vmin``/``vmax`` default to the 1st and 99.5th percentiles of the finite,
non-zero values of the planes shown (zeros count when they are nearly all there is;
the minimum and maximum when the percentiles are equal, as for a mostly empty image).
Text is white with a black outline, readable over any data.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .planes import (
    WORLD,
    Plane,
    axis_alignment,
    check_coords,
    check_t,
    field_of_view,
    ortho_planes,
)
from .planes import plane as cut
from .volume import as_volume, require_matplotlib

__all__ = ["plot_mosaic", "plot_ortho"]

#: Letters at the (left, right, bottom, top) edges of each plane, neurological view.
EDGES = {"sagittal": ("P", "A", "I", "S"), "coronal": ("L", "R", "I", "S")}
EDGES["axial"] = ("L", "R", "P", "A")
FOREGROUND = "white"
BACKGROUND = "black"


def contrast(planes, vmin=None, vmax=None) -> tuple[float, float]:
    """Robust display limits from the planes shown (see the module docstring)."""
    if vmin is not None and vmax is not None:
        return float(vmin), float(vmax)
    values = np.concatenate([p.data[np.isfinite(p.data)].ravel() for p in planes])
    tissue = values[values != 0]
    if tissue.size >= max(1, values.size // 100):  # background zeros do not set the scale
        values = tissue
    if values.size == 0:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = (float(x) for x in np.percentile(values, [1, 99.5]))
        if hi <= lo:
            lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            hi = lo + 1.0
    return (lo if vmin is None else float(vmin)), (hi if vmax is None else float(vmax))


def colormap(cmap):
    """``cmap`` with NaN (outside the image, or NaN voxels) transparent."""
    import matplotlib as mpl

    cm = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    return cm.with_extremes(bad=(0, 0, 0, 0))


def new_figure(figure, figsize):
    require_matplotlib()
    from matplotlib.figure import Figure

    if figure is None:
        return Figure(figsize=figsize, facecolor=BACKGROUND)
    figure.clear()
    figure.set_facecolor(BACKGROUND)
    return figure


def draw_plane(ax, p: Plane, cmap, vmin, vmax, radiological: bool, letters: bool = True):
    """Draw plane ``p`` in world mm on ``ax``; returns the AxesImage."""
    data = np.ma.masked_invalid(p.data.T)
    im = ax.imshow(
        data,
        origin="lower",
        extent=p.extent,
        cmap=colormap(cmap),
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        aspect="equal",
    )
    ax.set_label(p.name)
    mirrored = radiological and p.name != "sagittal"
    if mirrored:
        ax.set_xlim(p.extent[1], p.extent[0])
    ax.set_facecolor(BACKGROUND)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.5, foreground=BACKGROUND)]
    style = {"color": FOREGROUND, "transform": ax.transAxes, "fontsize": 9}
    style["path_effects"] = outline
    ax.text(0.02, 0.02, p.label, ha="left", va="bottom", **style)
    if letters:
        left, right, bottom, top = EDGES[p.name]
        if mirrored:
            left, right = right, left
        ax.text(0.01, 0.5, left, ha="left", va="center", **style)
        ax.text(0.99, 0.5, right, ha="right", va="center", **style)
        ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)
        ax.text(0.5, 0.99, top, ha="center", va="top", **style)
    return im


def _sizes(planes) -> list[tuple[float, float]]:
    return [(abs(p.extent[1] - p.extent[0]), abs(p.extent[3] - p.extent[2])) for p in planes]


def _row_layout(fig, sizes, top: float, right: float):
    """Axes in one row, every panel at the same mm scale, bottoms aligned."""
    gap = 0.02
    width = 1 - right - gap * (len(sizes) + 1)
    total_w = sum(w for w, _ in sizes)
    fw, fh = fig.get_size_inches()
    scale = min(width * fw / total_w, (1 - top - 0.02) * fh / max(h for _, h in sizes))
    x = gap
    axes = []
    y = (1 - top - max(h for _, h in sizes) * scale / fh) / 2
    for w, h in sizes:
        aw, ah = w * scale / fw, h * scale / fh
        axes.append(fig.add_axes((x, y, aw, ah)))
        x += aw + gap
    return axes


def plot_ortho(
    img,
    coords=None,
    t=0,
    radiological: bool = False,
    cmap="gray",
    vmin=None,
    vmax=None,
    title: str | None = None,
    figure=None,
    colorbar: bool = False,
    cursor: bool = False,
    figsize=None,
):
    """Sagittal, coronal and axial planes through a world point, reading only those planes.

    Parameters
    ----------
    img : image or DataArray
        A voxray or nibabel image, or a DataArray with voxel dims ``i, j, k[, t]``.
    coords : (x, y, z), optional
        World point in mm (RAS+); default the centre of the field of view.
    t : int
        The volume of a 4-D image.
    radiological : bool
        Mirror the coronal and axial panels (the subject's right on the left).
    cmap, vmin, vmax
        Colour map and limits (default: robust percentiles of the planes shown).
    title : str, optional
    figure : matplotlib Figure, optional
        Draw into this figure (cleared) instead of a new one.
    colorbar : bool
        Add a colour bar on the right.
    cursor : bool
        Draw cross-hairs through ``coords`` on every panel.
    figsize : (w, h) inches, optional

    Returns
    -------
    matplotlib.figure.Figure
        Its axes are labelled ``"sagittal"``, ``"coronal"``, ``"axial"``.

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> fig = vx.plot_ortho(vx.load(NIBABEL_DATA / "example4d.nii.gz"), t=1)
    >>> [ax.get_label() for ax in fig.axes]
    ['sagittal', 'coronal', 'axial']
    """
    vol = as_volume(img)
    xyz = check_coords(vol, coords)
    planes = ortho_planes(vol, xyz, t)
    lo, hi = contrast(planes, vmin, vmax)
    sizes = _sizes(planes)
    top = 0.12 if title else 0.02
    right = 0.08 if colorbar else 0.0
    if figsize is None:
        total_w, max_h = sum(w for w, _ in sizes), max(h for _, h in sizes)
        figsize = (9.0, max(1.5, 9.0 * (1 - right) * max_h / total_w / (1 - top) + 0.2))
    fig = new_figure(figure, figsize)
    axes = _row_layout(fig, sizes, top, right)
    im = None
    for ax, p in zip(axes, planes):
        im = draw_plane(ax, p, cmap, lo, hi, radiological)
        if cursor:
            h, v = p.hv
            ax.axvline(xyz[h], color="tab:red", lw=0.8)
            ax.axhline(xyz[v], color="tab:red", lw=0.8)
    if title:
        fig.suptitle(title, color=FOREGROUND, x=0.01, ha="left", y=0.99, va="top")
    if colorbar and im is not None:
        cax = fig.add_axes((1 - right + 0.015, 0.15, 0.015, 0.7))
        bar = fig.colorbar(im, cax=cax)
        bar.ax.tick_params(colors=FOREGROUND, labelsize=8)
    return fig


def plot_mosaic(
    img,
    axis="z",
    n: int = 12,
    t=0,
    cuts=None,
    ncols: int | None = None,
    radiological: bool = False,
    cmap="gray",
    vmin=None,
    vmax=None,
    title: str | None = None,
    figure=None,
    colorbar: bool = False,
    figsize=None,
):
    """A lightbox of ``n`` evenly spaced planes orthogonal to world axis ``axis``.

    Reads ``n`` planes (for an axis-aligned image, ``n`` voxel planes). Planes are
    spread over the field of view, edges excluded, at distinct voxel planes; fewer
    than ``n`` when the image has fewer planes along the axis.

    Parameters
    ----------
    img : image or DataArray
    axis : {"x", "y", "z"}
        World axis the planes cut (sagittal, coronal, axial).
    n : int
        Number of planes.
    t : int
        Volume of a 4-D image.
    cuts : sequence of float, optional
        World coordinates (mm) of the planes, instead of ``n`` spread over the field of
        view (nilearn's ``cut_coords``).
    ncols : int, optional
        Panels per row (default about ``sqrt(1.5 n)``, as few as fill the rows).
    radiological, cmap, vmin, vmax, title, figure, colorbar, figsize
        As for :func:`plot_ortho`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> fig = vx.plot_mosaic(vx.load(NIBABEL_DATA / "anatomical.nii"), n=6)
    >>> [ax.texts[0].get_text() for ax in fig.axes]
    ['z=-10', 'z=-2', 'z=4', 'z=12', 'z=18', 'z=26']
    """
    vol = as_volume(img)
    if axis not in WORLD:
        raise InputError(f"axis must be one of 'x', 'y', 'z', got {axis!r}")
    a = WORLD.index(axis)
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise InputError(f"n must be a number of planes, got {n!r}") from None
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    ti = check_t(vol, t)
    centre = check_coords(vol, None)
    if cuts is not None:
        try:
            positions = [float(c) for c in np.atleast_1d(np.asarray(cuts, dtype=np.float64))]
        except (TypeError, ValueError):
            raise InputError(f"cuts must be world coordinates (mm), got {cuts!r}") from None
        if not positions or not np.all(np.isfinite(positions)):
            raise InputError(f"cuts must be finite world coordinates (mm), got {cuts!r}")
    else:
        positions = _positions(vol, a, n)
    planes = []
    for c in positions:
        xyz = centre.copy()
        xyz[a] = c
        planes.append(cut(vol, a, xyz, ti))
    lo, hi = contrast(planes, vmin, vmax)
    if not ncols:  # about sqrt(1.5 n) columns, then as few as fill the rows
        ncols = max(1, math.ceil(math.sqrt(len(planes) * 1.5)))
        ncols = math.ceil(len(planes) / math.ceil(len(planes) / ncols))
    ncols = int(ncols)
    nrows = math.ceil(len(planes) / ncols)
    w, h = _sizes(planes[:1])[0]
    top = 0.08 if title else 0.0
    right = 0.06 if colorbar else 0.0
    if figsize is None:
        width = min(12.0, 2.0 * ncols)
        figsize = (width, width * (1 - right) * (nrows * h) / (ncols * w) / (1 - top))
    fig = new_figure(figure, figsize)
    cell_w, cell_h = (1 - right) / ncols, (1 - top) / nrows
    im = None
    for i, p in enumerate(planes):
        r, c = divmod(i, ncols)
        pad = 0.004
        ax = fig.add_axes(
            (
                c * cell_w + pad,
                1 - top - (r + 1) * cell_h + pad,
                cell_w - 2 * pad,
                cell_h - 2 * pad,
            )
        )
        im = draw_plane(ax, p, cmap, lo, hi, radiological, letters=i == 0)
    if title:
        fig.suptitle(title, color=FOREGROUND, x=0.01, ha="left", y=0.995, va="top")
    if colorbar and im is not None:
        cax = fig.add_axes((1 - right + 0.01, 0.15, 0.012, 0.7))
        fig.colorbar(im, cax=cax).ax.tick_params(colors=FOREGROUND, labelsize=8)
    return fig


def _positions(vol, a: int, n: int) -> list[float]:
    """World coordinates of ``n`` planes along world axis ``a``, one per distinct voxel
    plane (axis-aligned) or evenly spread over the field of view (oblique)."""
    lo, hi = field_of_view(vol)
    aligned = axis_alignment(vol.affine)
    if aligned is None:
        return list(np.linspace(lo[a], hi[a], n + 2)[1:-1])
    perm, _ = aligned
    va = int(perm[a])
    size = vol.shape[va]
    idx = np.unique(np.floor(np.linspace(0, size - 1, n + 2)[1:-1] + 0.5).astype(int))
    if len(idx) < min(n, size):  # a thin axis: every plane
        idx = np.linspace(0, size - 1, min(n, size)).round().astype(int)
    step = vol.affine[a, va]
    return [float(vol.affine[a, 3] + step * i) for i in idx]
