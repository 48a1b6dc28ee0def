"""Pictures from xarray: ``da.vx.plot_ortho()`` and friends show what the image calls
show, for DataArrays that were reoriented, sliced or had a volume selected (each placed
by its own affine), and reading through a DataArray of a voxray file reads planes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import nibabel as nib
import numpy as np
import pytest
from matplotlib.figure import Figure

import voxray as vx
from voxray.plotting import as_volume, ortho_planes
from voxray.plotting.planes import field_of_view, plane
from voxray.plotting.viewer import OrthoViewer
from voxray.sources import local_spec, open_source

#: PIL voxel order (i -> posterior, j -> inferior, k -> left): reorientation permutes
#: and flips every axis. k planes (the sagittal ones) are contiguous in the file.
SHAPE = (96, 64, 80, 3)
AFFINE = np.array([[0, 0, -2.0, 80.0], [-2.0, 0, 0, 90.0], [0, -2.5, 0, 70.0], [0, 0, 0, 1]])
VOLUME = int(np.prod(SHAPE[:3])) * 4
#: A world point inside every derived DataArray below.
POINT = (-10.0, 20.0, 5.0)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    rng = np.random.default_rng(11)
    data = rng.random(SHAPE, dtype=np.float32)
    data[20:24, 10:14, 30:33] = 4.0
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_zooms((2.0, 2.5, 2.0, 1.5))
    img.header.set_xyzt_units("mm", "sec")
    out = tmp_path_factory.mktemp("plot_xarray") / "bold.nii"
    nib.save(img, out)
    return out


def panels(fig):
    out = {}
    for ax in fig.axes:
        if ax.images:
            arr = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
            out[ax.get_label()] = (arr, tuple(ax.images[0].get_extent()), ax.texts[0].get_text())
    return out


def assert_same_panels(fig_a, fig_b):
    a, b = panels(fig_a), panels(fig_b)
    assert list(a) == list(b) == ["sagittal", "coronal", "axial"]
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0], err_msg=name)
        np.testing.assert_allclose(a[name][1], b[name][1], atol=1e-9, err_msg=name)
        assert a[name][2] == b[name][2]


def derived(path):
    """(label, DataArray, the image it should look like, t for the image)."""
    img = vx.load(path)
    da = vx.open_dataarray(path)
    canonical = vx.as_closest_canonical(img)
    return [
        ("plain", da, img, 1),
        ("reoriented", da.vx.reorient(), img, 1),
        ("reoriented LPI", da.vx.reorient("LPI"), img, 1),
        ("sliced", da.isel(i=slice(10, 40)), img.slicer[10:40], 1),
        ("stepped", da.isel(j=slice(None, None, -2)), img.slicer[:, ::-2], 1),
        ("volume", da.isel(t=2), img, 2),
        (
            "reoriented then sliced",
            da.vx.reorient().isel(j=slice(5, 50)),
            canonical.slicer[:, 5:50],
            0,
        ),
    ]


@pytest.mark.parametrize("case", range(7))
def test_plot_ortho_equals_the_image(path, case):
    label, da, img, t = derived(path)[case]
    kw = {} if "volume" in label else {"t": t}
    assert_same_panels(da.vx.plot_ortho(POINT, **kw), vx.plot_ortho(img, POINT, t=t))
    # Default coords: the centre of the DataArray's own field of view.
    assert_same_panels(da.vx.plot_ortho(**kw), vx.plot_ortho(img, t=t))
    for got, want in zip(field_of_view(as_volume(da)), field_of_view(as_volume(img))):
        np.testing.assert_allclose(got, want, atol=1e-9)  # the same world box


def test_orientation_comes_from_the_affine(path):
    """Reorienting changes the array order, not the picture."""
    da = vx.open_dataarray(path)
    assert_same_panels(da.vx.reorient().vx.plot_ortho(POINT, t=1), da.vx.plot_ortho(POINT, t=1))
    assert_same_panels(
        da.vx.reorient("LPI").vx.plot_ortho(POINT, t=1, radiological=True),
        da.vx.plot_ortho(POINT, t=1, radiological=True),
    )


def test_a_slice_is_placed_in_world_coordinates(path):
    """A sliced DataArray's panels are the full image's panels cropped to its extent."""
    img = vx.load(path)
    da = vx.open_dataarray(path)
    sub = da.isel(i=slice(10, 40), k=slice(25, 70))  # y (posterior) and x (left) ranges
    full = {p.name: p for p in ortho_planes(as_volume(img), POINT, 0)}
    part = {p.name: p for p in ortho_planes(as_volume(sub), POINT, 0)}
    for name in ("sagittal", "coronal", "axial"):
        f, s = full[name], part[name]
        crop = []
        for axis, (f0, s0) in enumerate(((f.extent[0], s.extent[0]), (f.extent[2], s.extent[2]))):
            step = (f.extent[2 * axis + 1] - f0) / f.data.shape[axis]
            start = (s0 - f0) / step
            assert start == pytest.approx(round(start), abs=1e-9)
            crop.append(slice(round(start), round(start) + s.data.shape[axis]))
        np.testing.assert_array_equal(s.data, f.data[tuple(crop)], err_msg=name)
    # The world ranges are those of the voxels kept.
    y = np.asarray(sub["y"])
    x = np.asarray(sub["x"])
    axial = part["axial"]
    assert axial.extent[2] == pytest.approx(y.min() - 1.0)
    assert axial.extent[3] == pytest.approx(y.max() + 1.0)
    assert axial.extent[0] == pytest.approx(x.min() - 1.0)
    assert axial.extent[1] == pytest.approx(x.max() + 1.0)


def test_mosaic_equals_the_image(path):
    img = vx.load(path)
    da = vx.open_dataarray(path)
    for axis in "xz":
        a, b = da.vx.plot_mosaic(axis=axis, n=5, t=2), vx.plot_mosaic(img, axis=axis, n=5, t=2)
        assert len(a.axes) == len(b.axes) == 5
        for ax_a, ax_b in zip(a.axes, b.axes):
            np.testing.assert_array_equal(ax_a.images[0].get_array(), ax_b.images[0].get_array())
            assert ax_a.images[0].get_extent() == ax_b.images[0].get_extent()


def test_timecourse_and_carpet_equal_the_image(path):
    img = vx.load(path)
    da = vx.open_dataarray(path)
    for kw in ({}, {"radius": 5.0}):
        a = da.vx.plot_timecourse(POINT, **kw).axes[0]
        b = vx.plot_timecourse(img, POINT, **kw).axes[0]
        np.testing.assert_allclose(a.lines[0].get_xydata(), b.lines[0].get_xydata())
        assert a.get_xlabel() == b.get_xlabel() == "time (s)"
    np.testing.assert_allclose(a.lines[0].get_xdata(), [0.0, 1.5, 3.0])
    two = da.vx.plot_timecourse([POINT, (0, 0, 0)]).axes[0]
    assert len(two.lines) == 2
    a = da.vx.plot_carpet(rows=100).axes[0].images[0]
    b = vx.plot_carpet(img, rows=100).axes[0].images[0]
    np.testing.assert_allclose(a.get_array(), b.get_array(), atol=1e-12)
    assert a.get_extent() == b.get_extent()


def test_reading_through_a_dataarray_reads_planes(path):
    img = vx.load(path)
    da = vx.open_dataarray(path)
    stats = open_source(local_spec(str(path))).stats
    assert open_source(img.dataobj.reader.source) is open_source(local_spec(str(path)))

    def cost(call):
        stats.reset()
        call()
        return stats.bytes_read

    vol = as_volume(img)
    three_planes = cost(lambda: [plane(vol, axis, POINT, 1) for axis in range(3)])
    # PIL: the coronal (i) and axial (j) planes each span their volume at the local
    # reader's granularity; the sagittal (k) plane is one contiguous run...
    assert three_planes <= 2 * VOLUME + SHAPE[0] * SHAPE[1] * 4 < SHAPE[3] * VOLUME
    # ...so an orthogonal view reads the volume once instead, through either door.
    assert cost(lambda: vx.plot_ortho(img, POINT, t=1)) == VOLUME < three_planes
    assert cost(lambda: da.vx.plot_ortho(POINT, t=1)) == VOLUME
    mosaic = cost(lambda: vx.plot_mosaic(img, axis="x", n=6, t=1))  # k planes: contiguous
    assert cost(lambda: da.vx.plot_mosaic(axis="x", n=6, t=1)) == mosaic
    assert 6 * SHAPE[0] * SHAPE[1] * 4 <= mosaic < VOLUME / 4
    series = cost(lambda: da.vx.plot_timecourse(POINT))
    assert series == cost(lambda: vx.plot_timecourse(img, POINT))
    assert series < VOLUME / 4
    carpet = cost(lambda: da.vx.plot_carpet(rows=50))
    assert VOLUME * SHAPE[3] <= carpet <= VOLUME * SHAPE[3] + 4096  # the data once


@pytest.mark.xfail(
    strict=True,
    reason="dask 2026.7 fuses only the getitem next to voxray's read task into it: a "
    "second selection (isel after reorient/isel) reads the whole chunk (see the report)",
)
@pytest.mark.parametrize("case", [1, 3])
def test_reading_a_derived_dataarray_reads_planes(path, case):
    label, da, _img, t = derived(path)[case]
    stats = open_source(local_spec(str(path))).stats
    kw = {} if "volume" in label else {"t": t}
    stats.reset()
    da.vx.plot_ortho(POINT, **kw)
    assert stats.bytes_read < 1.1 * VOLUME, label


def test_orthoview_of_a_dataarray(path):
    da = vx.open_dataarray(path)
    stats = open_source(local_spec(str(path))).stats
    viewer = da.vx.orthoview(figure=Figure(), t=1)
    assert isinstance(viewer, OrthoViewer)
    assert viewer.figure._suptitle.get_text() == str(path)
    img = vx.load(path)
    fig = viewer.figure
    fig.canvas.draw()
    ax = viewer.axes[0]  # sagittal: y, z; x is kept
    from matplotlib.backend_bases import MouseEvent

    stats.reset()
    x_px, y_px = ax.transData.transform((POINT[1], POINT[2]))
    MouseEvent("button_press_event", fig.canvas, x_px, y_px, button=1)._process()
    clicked = stats.bytes_read
    assert viewer.position[1:] == pytest.approx(POINT[1:], abs=1.25)
    # The coronal (voxel axis i) and axial (j) planes only, as read alone.
    i, j = viewer.voxel[:2]
    stats.reset()
    img.dataobj[i, :, :, 1]
    img.dataobj[:, j, :, 1]
    assert clicked == stats.bytes_read
    for arr, p in zip(
        [ax.images[0].get_array() for ax in viewer.axes],
        ortho_planes(as_volume(img), viewer.position, 1),
    ):
        np.testing.assert_array_equal(np.ma.filled(arr.astype(float), np.nan), p.data.T)
    viewer.set_volume(2)
    assert viewer.volume == 2


def test_not_a_voxel_dataarray(path):
    da = vx.open_dataarray(path)
    with pytest.raises(vx.InputError, match="dims"):
        da.expand_dims("echo").vx.plot_ortho()
    with pytest.raises(vx.InputError, match="4-D"):
        da.isel(t=0).vx.plot_carpet()


def test_repr_html_entry_points(tmp_path):
    from voxray.plotting.html import dataarray_html, image_html

    data = np.arange(8 * 9 * 10, dtype=np.int16).reshape(8, 9, 10)
    path = tmp_path / "small.nii"
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    img = vx.load(path)
    out = img._repr_html_()
    assert out == image_html(img) and "small.nii" in out and "<img" in out
    da = vx.open_dataarray(path)
    out = da.vx._repr_html_()
    assert out == dataarray_html(da) and "small.nii" in out and "<img" in out
