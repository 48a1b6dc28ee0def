"""An interactive orthogonal viewer that reads planes on demand.

:class:`OrthoViewer` is what ``img.orthoview()`` returns: the three panels of
:func:`~voxray.plotting.plot_ortho` (sagittal, coronal, axial, in world mm and nilearn's
conventions) with cross-hairs through the cursor, a readout of the cursor's world
position, voxel index and value, and a volume slider for a 4-D image. nibabel's
``orthoview`` builds an ``OrthoSlicer3D`` over the whole array (a 4-D file is read
into memory first); this viewer holds three planes and reads a plane only when the
cursor leaves it:

* a click on a panel moves the cursor to that world point: on the sagittal panel it
  sets ``y, z`` (``x`` is kept, so the sagittal plane is not read again), on the
  coronal panel ``x, z``, on the axial panel ``x, y``; a plane is read again only when
  the voxel plane it cuts changes (an oblique image: when its coordinate changes);
* the slider (or :meth:`OrthoViewer.set_volume`) reads the three planes of the new
  volume;
* the arrow keys move the cursor one voxel in the panel under the mouse (the axial
  panel when the mouse is elsewhere), page up / page down and the scroll wheel move it
  through that panel's cut, and ``<`` / ``>`` (or ``,`` / ``.``) step the volume.

The display limits are computed once, from the first three planes (or given as
``vmin``/``vmax``), so moving the cursor never changes the contrast.

With ``figure=None`` the figure comes from ``matplotlib.pyplot``, so it is interactive
under a GUI backend (and in Jupyter with ``%matplotlib widget``); pass a
:class:`matplotlib.figure.Figure` to draw elsewhere (tests, an embedding application).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ortho import BACKGROUND, FOREGROUND, contrast, draw_plane
from .planes import PLANES, Plane, axis_alignment, check_coords, check_t, plane
from .volume import as_volume, require_matplotlib

__all__ = ["OrthoViewer"]

#: Figure layout (inches): gap between panels, readout band, slider band, title band.
GAP, READOUT, SLIDER, TITLE = 0.08, 0.32, 0.3, 0.3
CURSOR = {"color": "tab:red", "lw": 0.8}


class OrthoViewer:
    """Sagittal, coronal and axial planes of an image, with a cursor you move by clicking.

    Parameters
    ----------
    img : image or DataArray
        A voxray or nibabel image, or a DataArray with voxel dims ``i, j, k[, t]``.
    coords : (x, y, z), optional
        Initial cursor position, world mm (RAS+); default the centre of the field of view.
    t : int
        Initial volume of a 4-D image.
    radiological : bool
        Mirror the coronal and axial panels (the subject's right on the left).
    cmap, vmin, vmax
        Colour map and display limits (default: robust percentiles of the first planes
        shown, then kept).
    figure : matplotlib Figure, optional
        Draw into this figure (cleared); default a new ``pyplot`` figure.
    title : str, optional
        Shown above the panels (and as the window title of a pyplot figure).

    Examples
    --------
    >>> import matplotlib.figure
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> img = vx.load(NIBABEL_DATA / "example4d.nii.gz")
    >>> v = OrthoViewer(img, figure=matplotlib.figure.Figure())
    >>> v.set_position(0, 10, 20)
    >>> v.position.tolist(), v.volume
    ([0.0, 10.0, 20.0], 0)
    >>> v.set_volume(1)
    >>> v.voxel
    (59, 25, 9, 1)
    """

    def __init__(
        self,
        img,
        coords=None,
        t=0,
        radiological: bool = False,
        cmap="gray",
        vmin=None,
        vmax=None,
        figure=None,
        title: str | None = None,
    ):
        require_matplotlib()
        self._vol = vol = as_volume(img)
        self._xyz = check_coords(vol, coords).copy()
        self._t = check_t(vol, t)
        self._radiological = bool(radiological)
        self._cmap = cmap
        self._aligned = axis_alignment(vol.affine)
        self._planes = [plane(vol, axis, self._xyz, self._t) for _, axis, _ in PLANES]
        self._keys = [self._plane_key(axis, self._xyz) for _, axis, _ in PLANES]
        self._clim = contrast(self._planes, vmin, vmax)
        self._steps = self._voxel_steps()
        self._figure = self._make_figure(figure, title)
        self._axes, self._images, self._labels, self._cursor = [], [], [], []
        self._slider = None
        self._layout(title)
        self._connections = [
            self._figure.canvas.mpl_connect("button_press_event", lambda e: self._on_click(e)),
            self._figure.canvas.mpl_connect("key_press_event", lambda e: self._on_key(e)),
            self._figure.canvas.mpl_connect("scroll_event", lambda e: self._on_scroll(e)),
        ]
        self._update_readout()

    # -- public API ---------------------------------------------------------------------

    @property
    def figure(self):
        """The matplotlib Figure the viewer draws in."""
        return self._figure

    @property
    def axes(self) -> list:
        """The sagittal, coronal and axial axes (labelled so)."""
        return list(self._axes)

    @property
    def position(self) -> np.ndarray:
        """The cursor's world position ``(x, y, z)`` in mm."""
        return self._xyz.copy()

    @property
    def volume(self) -> int:
        """The volume shown (0 for a 3-D image)."""
        return 0 if self._t is None else self._t

    @property
    def n_volumes(self) -> int:
        """Number of volumes (1 for a 3-D image), as nibabel's ``OrthoSlicer3D``."""
        return self._vol.nt

    @property
    def voxel(self) -> tuple[int, ...]:
        """The voxel index nearest the cursor (``i, j, k`` and ``t`` for a 4-D image);
        it may lie outside the image when the cursor does."""
        out = tuple(self._nearest(a, self._xyz) for a in range(3))
        return out if self._t is None else (*out, self._t)

    @property
    def value(self) -> float:
        """The value at the cursor (NaN outside the image), taken from the planes shown."""
        p = self._planes[2]
        h, v = p.hv
        return _pixel(p, self._xyz[h], self._xyz[v])

    @property
    def readout(self) -> str:
        """The text under the panels: world position (mm), voxel index, value, time."""
        return self._readout.get_text()

    @property
    def slider(self):
        """The volume :class:`matplotlib.widgets.Slider` (None for a single volume)."""
        return self._slider

    @property
    def figs(self) -> list:
        """``[figure]``, as nibabel's ``OrthoSlicer3D.figs``."""
        return [self._figure]

    @property
    def clim(self) -> tuple[float, float]:
        """The display limits ``(vmin, vmax)``."""
        return self._clim

    @property
    def planes(self) -> list[Plane]:
        """The three planes shown (sagittal, coronal, axial)."""
        return list(self._planes)

    def set_position(self, x=None, y=None, z=None) -> None:
        """Move the cursor to world point ``(x, y, z)`` (mm); None keeps a coordinate.
        Reads only the planes whose cut changes."""
        new = self._xyz.copy()
        for axis, c in enumerate((x, y, z)):
            if c is not None:
                new[axis] = c
        new = check_coords(self._vol, new)
        changed = []
        for axis in range(3):
            key = self._plane_key(axis, new)
            if key != self._keys[axis]:
                self._planes[axis] = plane(self._vol, axis, new, self._t)
                self._keys[axis] = key
                changed.append(axis)
            elif new[axis] != self._xyz[axis]:  # same voxel plane: only its label moves
                self._planes[axis] = replace(self._planes[axis], coord=float(new[axis]))
        self._xyz = new
        self._redraw(changed)

    def set_volume(self, t) -> None:
        """Show volume ``t`` of a 4-D image (negative counts from the end): reads its three
        planes."""
        ti = check_t(self._vol, t)
        if ti == self._t:
            return
        self._t = ti
        self._planes = [plane(self._vol, axis, self._xyz, ti) for _, axis, _ in PLANES]
        if self._slider is not None and int(self._slider.val) != ti:
            self._slider.set_val(ti)  # its callback sees the volume already set
        self._redraw([0, 1, 2])

    set_volume_idx = set_volume  # nibabel's OrthoSlicer3D name

    def show(self) -> None:
        """Show the figure (``pyplot.show`` for a pyplot figure; a plain Figure is only
        redrawn)."""
        if getattr(self._figure.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.show()
        else:
            self._figure.canvas.draw_idle()

    def close(self) -> None:
        """Disconnect the viewer and close its pyplot figure."""
        for cid in self._connections:
            self._figure.canvas.mpl_disconnect(cid)
        self._connections = []
        if getattr(self._figure.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)

    def __repr__(self) -> str:
        x, y, z = self._xyz
        name = self._vol.label()
        return (
            f"<OrthoViewer of {name} shape={self._vol.shape} at ({x:g}, {y:g}, {z:g}) mm, "
            f"volume {self.volume}>"
        )

    # -- reading ------------------------------------------------------------------------

    def _plane_key(self, axis: int, xyz) -> tuple:
        """What a plane depends on: the voxel plane it reads (axis-aligned), else its
        world coordinate."""
        if self._aligned is None:
            return ("world", float(xyz[axis]))
        a = int(self._aligned[0][axis])
        idx = self._nearest(a, xyz)
        return ("voxel", max(-1, min(idx, self._vol.shape[a])))  # every outside cut is empty

    def _nearest(self, a: int, xyz) -> int:
        """Index along voxel axis ``a`` of the voxel nearest world point ``xyz``; for an
        axis-aligned image a tie goes to the higher world coordinate, as the planes'."""
        A, b = self._vol.affine[:3, :3], self._vol.affine[:3, 3]
        u = float(np.linalg.solve(A, np.asarray(xyz, np.float64) - b)[a])
        if self._aligned is not None:
            perm, sign = self._aligned
            if sign[int(np.flatnonzero(perm == a)[0])] < 0:
                return int(np.ceil(u - 0.5))
        return int(np.floor(u + 0.5))

    def _voxel_steps(self) -> np.ndarray:
        """One pixel of the planes shown along each world axis (mm)."""
        steps = np.zeros(3)
        for p in self._planes:
            for axis, n, (e0, e1) in zip(p.hv, p.data.shape, (p.extent[:2], p.extent[2:])):
                steps[axis] = abs(e1 - e0) / max(n, 1)
        return steps

    # -- drawing ------------------------------------------------------------------------

    def _make_figure(self, figure, title):
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure(figsize=self._figsize(title), facecolor=BACKGROUND)
            manager = getattr(figure.canvas, "manager", None)
            if title and manager is not None:
                manager.set_window_title(str(title))
            return figure
        figure.clear()
        figure.set_facecolor(BACKGROUND)
        return figure

    def _bands(self, title) -> tuple[float, float]:
        """(bottom, top) bands in inches: the readout and slider, the title."""
        bottom = READOUT + (SLIDER if self._vol.nt > 1 else 0.0)
        return bottom, (TITLE if title else 0.05)

    def _sizes(self) -> list[tuple[float, float]]:
        return [
            (abs(p.extent[1] - p.extent[0]), abs(p.extent[3] - p.extent[2])) for p in self._planes
        ]

    def _figsize(self, title) -> tuple[float, float]:
        sizes = self._sizes()
        width = 9.0
        scale = (width - GAP * 4) / sum(w for w, _ in sizes)
        bottom, top = self._bands(title)
        return width, max(h for _, h in sizes) * scale + bottom + top

    def _layout(self, title) -> None:
        fig = self._figure
        fw, fh = fig.get_size_inches()
        bottom, top = self._bands(title)
        sizes = self._sizes()
        avail_h = max(fh - bottom - top, 0.1 * fh)
        scale = min((fw - GAP * 4) / sum(w for w, _ in sizes), avail_h / max(h for _, h in sizes))
        x = GAP
        lo, hi = self._clim
        for p, (w, h) in zip(self._planes, sizes):
            y = bottom + (avail_h - h * scale) / 2
            ax = fig.add_axes((x / fw, y / fh, w * scale / fw, h * scale / fh))
            x += w * scale + GAP
            first_text = len(ax.texts)
            im = draw_plane(ax, p, self._cmap, lo, hi, self._radiological)
            ax.set_navigate(True)
            hh, vv = p.hv
            cursor = (ax.axvline(self._xyz[hh], **CURSOR), ax.axhline(self._xyz[vv], **CURSOR))
            self._axes.append(ax)
            self._images.append(im)
            self._labels.append(ax.texts[first_text])
            self._cursor.append(cursor)
        if title:
            fig.suptitle(
                str(title), color=FOREGROUND, x=0.01, ha="left", y=1 - 0.03 / fh, va="top"
            )
        self._readout = fig.text(
            0.01,
            (READOUT / 2 + (SLIDER if self._vol.nt > 1 else 0.0)) / fh,
            "",
            color=FOREGROUND,
            family="monospace",
            fontsize=9,
            ha="left",
            va="center",
        )
        if self._vol.nt > 1:
            from matplotlib.widgets import Slider

            sax = fig.add_axes((0.08, 0.05 / fh, 0.84, (SLIDER - 0.1) / fh), facecolor="0.2")
            sax.set_label("volume")
            self._slider = Slider(
                sax,
                "t",
                0,
                self._vol.nt - 1,
                valinit=self._t,
                valstep=1,
                valfmt="%d",
                color="0.6",
            )
            self._slider.label.set_color(FOREGROUND)
            self._slider.valtext.set_color(FOREGROUND)
            self._slider.on_changed(lambda val: self.set_volume(int(np.rint(val))))

    def _redraw(self, changed) -> None:
        for axis in changed:
            p = self._planes[axis]
            self._images[axis].set_data(np.ma.masked_invalid(p.data.T))
        for axis, p in enumerate(self._planes):
            self._labels[axis].set_text(p.label)
            hh, vv = p.hv
            vline, hline = self._cursor[axis]
            vline.set_xdata([self._xyz[hh]] * 2)
            hline.set_ydata([self._xyz[vv]] * 2)
        self._update_readout()
        self._figure.canvas.draw_idle()

    def _update_readout(self) -> None:
        x, y, z = self._xyz
        vox = self.voxel
        inside = all(0 <= i < n for i, n in zip(vox[:3], self._vol.shape[:3]))
        where = f"voxel ({', '.join(str(i) for i in vox)})" if inside else "outside the image"
        value = self.value
        text = f"x={x:.1f} y={y:.1f} z={z:.1f} mm   {where}"
        if inside:
            text += f"   value {value:.6g}"
        if self._t is not None and self._vol.tr:
            text += f"   t={self._vol.times()[self._t]:g} s"
        self._readout.set_text(text)

    # -- events -------------------------------------------------------------------------

    def _navigating(self) -> bool:
        toolbar = getattr(self._figure.canvas, "toolbar", None)
        return bool(getattr(toolbar, "mode", ""))

    def _on_click(self, event) -> None:
        if event.button != 1 or event.inaxes not in self._axes or self._navigating():
            return
        if event.xdata is None or event.ydata is None:
            return
        h, v = self._planes[self._axes.index(event.inaxes)].hv
        coords: list = [None, None, None]
        coords[h], coords[v] = float(event.xdata), float(event.ydata)
        self.set_position(*coords)

    def _on_scroll(self, event) -> None:
        if event.inaxes not in self._axes:
            return
        axis = self._axes.index(event.inaxes)
        coords: list = [None, None, None]
        coords[axis] = self._xyz[axis] + float(event.step) * self._steps[axis]
        self.set_position(*coords)

    def _on_key(self, event) -> None:
        axis = self._axes.index(event.inaxes) if event.inaxes in self._axes else 2
        h, v = self._planes[axis].hv
        # A mirrored panel's left arrow moves towards its left edge: +x.
        sign_h = -1.0 if self._radiological and axis != 0 else 1.0
        moves = {
            "left": (h, -sign_h),
            "right": (h, sign_h),
            "down": (v, -1.0),
            "up": (v, 1.0),
            "pagedown": (axis, -1.0),
            "pageup": (axis, 1.0),
        }
        if event.key in moves:
            w, d = moves[event.key]
            coords: list = [None, None, None]
            coords[w] = self._xyz[w] + d * self._steps[w]
            self.set_position(*coords)
        elif event.key in ("<", ",", ">", ".") and self._t is not None:
            step = -1 if event.key in ("<", ",") else 1
            self.set_volume(min(max(self._t + step, 0), self._vol.nt - 1))


def _pixel(p: Plane, hc: float, vc: float) -> float:
    """The value of plane ``p`` at world point ``(hc, vc)`` of its plane (NaN outside)."""
    h0, h1, v0, v1 = p.extent
    nh, nv = p.data.shape
    ih = int(np.floor((hc - h0) / (h1 - h0) * nh)) if h1 != h0 else 0
    iv = int(np.floor((vc - v0) / (v1 - v0) * nv)) if v1 != v0 else 0
    if not (0 <= ih < nh and 0 <= iv < nv):
        return float("nan")
    return float(p.data[ih, iv])
