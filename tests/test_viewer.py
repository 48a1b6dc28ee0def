"""The interactive orthogonal viewer: clicks, keys and the volume slider move the cursor
to the right world point, show the planes ``ortho_planes`` gives there, and read only
the planes that changed (counted in bytes on a voxray ``.nii``)."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import nibabel as nib
import numpy as np
import pytest
from matplotlib.backend_bases import KeyEvent, MouseEvent
from matplotlib.figure import Figure

import voxray as vx
from voxray.plotting import as_volume, ortho_planes
from voxray.plotting.planes import plane
from voxray.plotting.viewer import OrthoViewer
from voxray.sources import open_source

#: 128 x 128 x 64 float32, 3 volumes, LAS, 2 x 2 x 2.5 mm: a coronal or axial plane is
#: far below a quarter of a volume even with the local reader's 32 KiB request cost.
SHAPE = (128, 128, 64, 3)
AFFINE = np.array([[-2.0, 0, 0, 127.0], [0, 2.0, 0, -120.0], [0, 0, 2.5, -60.0], [0, 0, 0, 1]])
VOLUME = int(np.prod(SHAPE[:3])) * 4
NAMES = ("sagittal", "coronal", "axial")


@pytest.fixture(scope="module")
def path4d(tmp_path_factory):
    rng = np.random.default_rng(13)
    data = rng.random(SHAPE, dtype=np.float32)
    data[40:44, 70:74, 30:33] = 5.0  # a bright marker
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_zooms((2.0, 2.0, 2.5, 2.0))
    img.header.set_xyzt_units("mm", "sec")
    path = tmp_path_factory.mktemp("viewer") / "bold.nii"
    nib.save(img, path)
    return path


@pytest.fixture(scope="module")
def path3d(tmp_path_factory):
    rng = np.random.default_rng(7)
    data = (rng.random((20, 24, 16)) * 1000).astype(np.int16)
    path = tmp_path_factory.mktemp("viewer3d") / "anat.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), path)
    return path


def stats_of(img):
    return open_source(img.dataobj.reader.source).stats


def counting(obj):
    """A Volume of ``obj`` that records the key of every read."""
    vol = as_volume(obj)
    calls = []

    def reader(key, _inner=vol.reader):
        calls.append(key)
        return _inner(key)

    return dataclasses.replace(vol, reader=reader), calls


def axes_of(viewer, name):
    return next(ax for ax in viewer.axes if ax.get_label() == name)


def click(viewer, name, h, v, button=1):
    """A mouse press at world point (h, v) of panel ``name``."""
    fig = viewer.figure
    fig.canvas.draw()
    x, y = axes_of(viewer, name).transData.transform((h, v))
    MouseEvent("button_press_event", fig.canvas, x, y, button=button)._process()


def press(viewer, key, name=None):
    fig = viewer.figure
    fig.canvas.draw()
    if name is None:
        x, y = 1, 1  # outside every panel
    else:
        ax = axes_of(viewer, name)
        x, y = ax.transAxes.transform((0.5, 0.5))
    KeyEvent("key_press_event", fig.canvas, key, x, y)._process()


def shown(viewer):
    return [np.ma.filled(ax.images[0].get_array().astype(float), np.nan) for ax in viewer.axes]


def assert_shows(viewer, img):
    """The panels are ``ortho_planes`` at the viewer's position and volume."""
    vol = as_volume(img)
    t = viewer.volume if vol.ndim == 4 else 0
    for arr, p in zip(shown(viewer), ortho_planes(vol, viewer.position, t)):
        np.testing.assert_array_equal(arr, p.data.T)


def voxel_of(affine, xyz):
    return np.linalg.solve(affine[:3, :3], np.asarray(xyz, float) - affine[:3, 3])


def test_panels_and_layout(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, figure=Figure())
    assert [ax.get_label() for ax in v.axes] == list(NAMES)
    assert v.n_volumes == 3 and v.volume == 0
    np.testing.assert_allclose(
        v.position, AFFINE[:3, :3] @ ((np.array(SHAPE[:3]) - 1) / 2) + AFFINE[:3, 3]
    )
    assert_shows(v, img)
    # Each panel is drawn in world mm with the plane's extent.
    for ax, p in zip(v.axes, v.planes):
        assert ax.images[0].get_extent() == list(p.extent)
        assert ax.texts[0].get_text() == p.label
    assert "voxel (" in v.readout and "value" in v.readout
    assert v.figure.canvas.manager is None  # a plain Figure: no pyplot window


@pytest.mark.parametrize("radiological", [False, True])
@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("sagittal", (None, 20.3, -11.0)),
        ("coronal", (-33.1, None, 41.2)),
        ("axial", (15.0, -61.7, None)),
    ],
)
def test_click_moves_cursor(path4d, name, target, radiological):
    img = vx.load(path4d)
    v = OrthoViewer(img, radiological=radiological, figure=Figure())
    before = v.position
    h, v_axis = v.planes[NAMES.index(name)].hv
    click(v, name, target[h], target[v_axis])
    after = v.position
    fixed = NAMES.index(name)
    assert after[fixed] == before[fixed]  # the panel's own cut is kept
    expected = before.copy()
    expected[h], expected[v_axis] = target[h], target[v_axis]
    # Within a voxel of the clicked world point (pixels round-trip to < 1e-6 mm here).
    zooms = np.abs(np.diag(AFFINE)[:3])
    assert np.all(np.abs(after - expected) <= zooms / 2)
    assert np.all(np.abs(np.array(v.voxel[:3]) - voxel_of(AFFINE, after)) <= 0.5)
    assert_shows(v, img)
    # The cross-hairs pass through the cursor on every panel.
    for ax, p in zip(v.axes, v.planes):
        vline, hline = ax.lines[:2]
        assert vline.get_xdata()[0] == pytest.approx(after[p.hv[0]])
        assert hline.get_ydata()[0] == pytest.approx(after[p.hv[1]])


def test_click_in_sagittal_reads_coronal_and_axial_only(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, t=1, figure=Figure())
    stats = stats_of(img)
    y, z = 20.3, -11.0
    j, k = (int(np.rint(c)) for c in voxel_of(AFFINE, (0, y, z))[1:])
    # What reading those two planes alone costs (the same reader, the same plan).
    stats.reset()
    img.dataobj[:, j, :, 1]
    img.dataobj[:, :, k, 1]
    expected = stats.bytes_read
    stats.reset()
    click(v, "sagittal", y, z)
    assert stats.bytes_read == expected
    assert SHAPE[0] * (SHAPE[1] + SHAPE[2]) * 4 <= stats.bytes_read < VOLUME / 4
    assert_shows(v, img)


def test_reads_per_interaction(path4d):
    img = vx.load(path4d)
    vol, calls = counting(img)
    v = OrthoViewer(vol, figure=Figure())
    assert len(calls) == 3  # three planes up front
    fixed = [[a for a, s in enumerate(key[:3]) if isinstance(s, int)] for key in calls]
    assert fixed == [[0], [1], [2]]
    calls.clear()
    click(v, "sagittal", 20.3, -11.0)
    assert [[a for a, s in enumerate(key[:3]) if isinstance(s, int)] for key in calls] == [
        [1],
        [2],
    ]
    calls.clear()
    click(v, "axial", -33.1, 20.3)  # y is the same voxel plane: only the sagittal plane
    assert [[a for a, s in enumerate(key[:3]) if isinstance(s, int)] for key in calls] == [[0]]
    calls.clear()
    v.set_position(*v.position)  # nothing moved: nothing read
    v.set_position(x=v.position[0] + 0.4)  # within the same voxel plane
    assert calls == []
    assert axes_of(v, "sagittal").texts[0].get_text() == f"x={v.position[0]:.0f}"
    v.set_volume(2)
    assert len(calls) == 3 and all(key[3] == 2 for key in calls)
    calls.clear()
    v.set_volume(2)  # the same volume: nothing read
    assert calls == []


def test_slider_reads_the_three_planes_of_the_volume(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, figure=Figure())
    assert v.slider is not None and v.slider.valmax == 2
    stats = stats_of(img)
    i, j, k = v.voxel[:3]  # the centre: i is a tie, taken as the planes take it
    stats.reset()
    img.dataobj[i, :, :, 2]
    img.dataobj[:, j, :, 2]
    img.dataobj[:, :, k, 2]
    expected = stats.bytes_read
    stats.reset()
    v.slider.set_val(2)
    assert v.volume == 2
    assert stats.bytes_read == expected
    assert stats.bytes_read <= VOLUME + 2 * SHAPE[0] * SHAPE[1] * 4  # one volume at most
    assert_shows(v, img)
    assert "t=4 s" in v.readout
    # set_volume moves the slider, and the slider's callback reads nothing more.
    stats.reset()
    v.set_volume(0)
    assert v.slider.val == 0
    assert stats.bytes_read == expected
    assert_shows(v, img)
    v.set_volume(-1)
    assert v.volume == 2
    with pytest.raises(vx.InputError, match="3 volumes"):
        v.set_volume(3)


def test_contrast_is_kept(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, figure=Figure())
    clim = v.clim
    click(v, "coronal", -45.0, -0.0)  # through the marker (x=-45, z=-0..5)
    v.set_volume(1)
    assert all(ax.images[0].get_clim() == clim for ax in v.axes)
    v2 = OrthoViewer(img, vmin=0.1, vmax=0.9, figure=Figure())
    assert v2.clim == (0.1, 0.9)
    assert all(ax.images[0].get_clim() == (0.1, 0.9) for ax in v2.axes)


def test_value_readout(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, figure=Figure())
    # The marker: voxels 40:44, 70:74, 30:33 hold 5.0.
    xyz = AFFINE[:3, :3] @ np.array([41, 71, 31]) + AFFINE[:3, 3]
    v.set_position(*xyz)
    assert v.voxel == (41, 71, 31, 0)
    assert v.value == 5.0
    assert "voxel (41, 71, 31, 0)" in v.readout
    assert "value 5" in v.readout
    v.set_volume(1)
    assert v.value == float(np.asarray(img.dataobj[41, 71, 31, 1]))
    v.set_position(x=10_000.0)
    assert np.isnan(v.value) and "outside the image" in v.readout
    assert np.all(np.isnan(shown(v)[0]))  # the sagittal cut is outside: all transparent


def test_ignored_events(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, figure=Figure())
    before = v.position
    click(v, "axial", -33.1, 20.3, button=3)  # right button
    fig = v.figure
    MouseEvent("button_press_event", fig.canvas, 1, 1, button=1)._process()  # no panel
    np.testing.assert_array_equal(v.position, before)


def test_keys(path4d):
    img = vx.load(path4d)
    v = OrthoViewer(img, figure=Figure())
    x, y, z = v.position
    press(v, "right", "coronal")
    assert v.position.tolist() == [x + 2.0, y, z]
    press(v, "up", "coronal")
    assert v.position.tolist() == [x + 2.0, y, z + 2.5]
    press(v, "pageup", "coronal")
    assert v.position.tolist() == [x + 2.0, y + 2.0, z + 2.5]
    press(v, "down")  # outside the panels: the axial panel's keys
    assert v.position.tolist() == [x + 2.0, y, z + 2.5]
    press(v, ">")
    assert v.volume == 1
    press(v, ",")
    press(v, ",")
    assert v.volume == 0
    assert_shows(v, img)
    r = OrthoViewer(img, radiological=True, figure=Figure())
    x0 = r.position[0]
    press(r, "right", "axial")  # mirrored: the right edge is the subject's left (-x)
    assert r.position[0] == x0 - 2.0


def test_three_d_has_no_slider(path3d):
    img = vx.load(path3d)
    v = OrthoViewer(img, figure=Figure())
    assert v.slider is None and v.n_volumes == 1 and v.volume == 0
    assert len(v.figure.axes) == 3
    v.set_volume(0)
    with pytest.raises(vx.InputError, match="3-D"):
        v.set_volume(1)
    press(v, ">")  # no volumes to step: ignored
    click(v, "coronal", 5.0, 10.0)
    assert v.position[[0, 2]].tolist() == pytest.approx([5.0, 10.0], abs=0.75)
    assert_shows(v, img)
    assert v.voxel == tuple(int(i) for i in np.floor(voxel_of(img.affine, v.position) + 0.5))


def test_nibabel_image(path4d, path3d):
    for path in (path4d, path3d):
        nimg = nib.load(path)
        assert type(nimg).__module__.startswith("nibabel")
        v = OrthoViewer(nimg, figure=Figure())
        click(v, "axial", -20.0, 10.0)
        assert_shows(v, nimg)
        if nimg.ndim == 4:
            v.set_volume(2)
            assert_shows(v, nimg)
        assert not nimg.in_memory  # never loaded whole


def test_oblique_image(tmp_path):
    rng = np.random.default_rng(3)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array([[2 * c, -2 * s, 0, 10], [2 * s, 2 * c, 0, -20], [0, 0, 3, 5], [0, 0, 0, 1]])
    path = tmp_path / "oblique.nii"
    nib.save(nib.Nifti1Image(rng.random((30, 30, 12), dtype=np.float32), affine), path)
    img = vx.load(path)
    vol, calls = counting(img)
    v = OrthoViewer(vol, figure=Figure())
    assert_shows(v, img)
    n = len(calls)
    click(v, "axial", 15.0, 10.0)  # x and y change: the sagittal and coronal planes
    assert len(calls) > n
    assert_shows(v, img)
    calls.clear()
    v.set_position(*v.position)
    assert calls == []


def test_orthoview_overrides_nibabel(path4d):
    img = vx.load(path4d)
    stats = stats_of(img)
    centre = AFFINE[:3, :3] @ ((np.array(SHAPE[:3]) - 1) / 2) + AFFINE[:3, 3]
    stats.reset()
    vol = as_volume(img)
    for axis in range(3):
        plane(vol, axis, centre, 0)
    three_planes = stats.bytes_read
    stats.reset()
    viewer = img.orthoview(figure=Figure())
    assert isinstance(viewer, OrthoViewer)
    assert stats.bytes_read == three_planes  # three planes, never the file
    assert stats.bytes_read < VOLUME * 1.1 < stats.bytes_read * SHAPE[3]
    assert viewer.figure._suptitle.get_text() == str(path4d)  # nibabel's title: the file
    assert not img.in_memory
    v2 = img.orthoview(coords=(0, 0, 0), t=2, title="bold", radiological=True, figure=Figure())
    assert v2.volume == 2 and v2.position.tolist() == [0.0, 0.0, 0.0]
    assert v2.figure._suptitle.get_text() == "bold"
    ax = axes_of(v2, "axial")
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # mirrored


def test_pyplot_figure(path3d):
    import matplotlib.pyplot as plt

    img = vx.load(path3d)
    viewer = img.orthoview()
    fig = viewer.figure
    assert fig.canvas.manager is not None and plt.fignum_exists(fig.number)
    assert fig.canvas.manager.get_window_title() == str(path3d)
    viewer.show()  # Agg: returns at once
    viewer.close()
    assert not plt.fignum_exists(fig.number)
    before = viewer.position
    click(viewer, "axial", 1.0, 1.0)  # disconnected
    np.testing.assert_array_equal(viewer.position, before)


def test_viewer_survives_without_a_reference(path3d):
    """Callbacks hold the viewer, so ``img.orthoview(); plt.show()`` stays interactive."""
    import gc

    fig = Figure()
    vx.load(path3d).orthoview(figure=fig)
    gc.collect()
    fig.canvas.draw()
    ax = fig.axes[2]
    x, y = ax.transData.transform((3.0, 4.0))
    MouseEvent("button_press_event", fig.canvas, x, y, button=1)._process()
    vline, hline = ax.lines[:2]
    assert vline.get_xdata()[0] == pytest.approx(3.0)
    assert hline.get_ydata()[0] == pytest.approx(4.0)


def test_bad_input(path4d):
    img = vx.load(path4d)
    with pytest.raises(vx.InputError, match="3 volumes"):
        OrthoViewer(img, t=5, figure=Figure())
    with pytest.raises(vx.InputError, match="three world coordinates"):
        OrthoViewer(img, coords=(1, 2), figure=Figure())
    with pytest.raises(vx.InputError, match="cannot plot"):
        OrthoViewer(np.zeros((4, 4, 4)), figure=Figure())
    v = OrthoViewer(img, figure=Figure())
    with pytest.raises(vx.InputError, match="finite"):
        v.set_position(np.nan, 0, 0)
    assert "OrthoViewer" in repr(v) and "bold.nii" in repr(v)


def test_without_matplotlib(path3d, monkeypatch):
    import sys

    img = vx.load(path3d)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(vx.MissingDependencyError, match=r"voxray\[plot\]"):
        img.orthoview()
    with pytest.raises(ImportError):
        OrthoViewer(img)


def test_scroll_moves_through_the_cut(path4d):
    img = vx.load(path4d)
    vol, calls = counting(img)
    v = OrthoViewer(vol, figure=Figure())
    x, y, z = v.position
    calls.clear()
    fig = v.figure
    fig.canvas.draw()
    px, py = axes_of(v, "axial").transAxes.transform((0.5, 0.5))
    MouseEvent("scroll_event", fig.canvas, px, py, step=2)._process()
    assert v.position.tolist() == [x, y, z + 5.0]
    assert len(calls) == 1 and isinstance(calls[0][2], int)  # the axial plane only
    assert_shows(v, img)


def test_one_volume_4d(tmp_path):
    path = tmp_path / "one.nii"
    nib.save(nib.Nifti1Image(np.ones((6, 7, 8, 1), np.float32), np.eye(4)), path)
    v = OrthoViewer(vx.load(path), figure=Figure())
    assert v.slider is None and v.n_volumes == 1 and v.volume == 0
    assert len(v.figure.axes) == 3 and v.figs == [v.figure]
    assert "voxel (3, 3, 4, 0)" in v.readout  # ties: the higher plane and "value 1" in v.readout
