"""Pictures that are right and reads that are bounded.

Correctness is checked on rendered pixels: images with a bright marker at a known world
position, stored in several voxel orders (RAS, LAS, LPI, PIL, oblique), are drawn in
both conventions, and the marker is found in each panel's pixels: on the expected side,
at the expected world coordinates. For a canonical image the panels are exactly the
arrays of nibabel's walkthrough (``show_slices``). Reads are counted in bytes (sources'
counters, the HTTP server's bytes sent), never timed.
"""

from __future__ import annotations

import math

import matplotlib
import nibabel as nib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

import voxray as vx
from voxray.plotting import as_volume, ortho_planes, timecourse
from voxray.plotting.series import carpet
from voxray.sources import open_source
from voxray.testing import NIBABEL_DATA
from voxray.testing.httpserver import RangeServer

MARKER = np.array([30.0, 20.0, 10.0])  # right, anterior, superior of the origin (mm)
EXPECT = {"sagittal": (1, 2), "coronal": (0, 2), "axial": (0, 1)}  # world axes (h, v)


def rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    r = np.eye(4)
    a, b = [x for x in range(3) if x != axis]
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


def canonical(shape=(48, 56, 40), zooms=(2.0, 2.0, 2.0)) -> np.ndarray:
    """A RAS+ affine with the world origin near the centre of the field of view."""
    aff = np.diag([*zooms, 1.0])
    aff[:3, 3] = -(np.array(shape) - 1) / 2 * np.array(zooms) + np.array([1.0, -3.0, 2.0])
    return aff


def marker_image(affine, shape, radius=3.5, t=None) -> nib.Nifti1Image:
    """Faint texture, and 1000 in the voxels whose centres are within ``radius`` of MARKER."""
    ijk = np.indices(shape[:3]).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    dist = np.linalg.norm(xyz - MARKER, axis=1).reshape(shape[:3])
    data = (np.indices(shape[:3]).sum(axis=0) % 7).astype(np.float32)
    data[dist <= radius] = 1000
    if t is not None:
        data = np.repeat(data[..., None], t, axis=-1) + np.arange(t, dtype=np.float32)
    return nib.Nifti1Image(data, affine)


def reordered(img: nib.Nifti1Image, axcodes) -> nib.Nifti1Image:
    """The same image (every voxel at the same world position) stored in ``axcodes`` order."""
    ornt = ornt_transform(axcodes2ornt(nib.aff2axcodes(img.affine)), axcodes2ornt(axcodes))
    data = apply_orientation(np.asanyarray(img.dataobj), ornt)
    aff = img.affine @ inv_ornt_aff(ornt, img.shape)
    out = nib.Nifti1Image(data, aff)
    assert nib.aff2axcodes(out.affine) == tuple(axcodes)
    return out


def orientations():
    base = canonical()
    ras = marker_image(base, (48, 56, 40))
    cases = {codes: reordered(ras, codes) for codes in ("RAS", "LAS", "LPI", "PIL")}
    oblique = rotation(2, 25) @ rotation(0, 15) @ base
    cases["oblique"] = marker_image(oblique, (48, 56, 40))
    return cases


ORIENTATIONS = orientations()


def render(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255


def marker_pixels(fig, rgb, ax) -> np.ndarray:
    """Display coordinates (x right, y up) of the marker's pixels inside ``ax``."""
    height = rgb.shape[0]
    box = ax.get_window_extent()
    # viridis' top colour (the marker) is yellow; text and letters are white.
    hit = (rgb[..., 0] > 0.85) & (rgb[..., 1] > 0.8) & (rgb[..., 2] < 0.35)
    rows, cols = np.nonzero(hit)
    x, y = cols + 0.5, height - rows - 0.5
    inside = (x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)
    return np.stack([x[inside], y[inside]], axis=1)


@pytest.mark.parametrize("radiological", [False, True], ids=["neurological", "radiological"])
@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_marker_lands_where_it_is(tmp_path, name, radiological):
    path = tmp_path / f"{name}.nii"
    nib.save(ORIENTATIONS[name], path)
    fig = vx.plot_ortho(
        vx.load(path),
        coords=MARKER,
        radiological=radiological,
        cmap="viridis",
        vmin=0,
        vmax=1000,
        figsize=(12, 4),
    )
    fig.set_dpi(100)
    rgb = render(fig)
    assert [ax.get_label() for ax in fig.axes] == ["sagittal", "coronal", "axial"]
    for ax in fig.axes:
        px = marker_pixels(fig, rgb, ax)
        assert len(px) > 20, f"{ax.get_label()}: the marker is not in the picture"
        h, v = EXPECT[ax.get_label()]
        # Pixels -> world mm through the panel's own transform: the marker's coordinates.
        world = ax.transData.inverted().transform(px.mean(axis=0))
        np.testing.assert_allclose(world, MARKER[[h, v]], atol=2.5)
        # Mirroring is a property of the axes, not of the data: x decreases to the right.
        mirrored = ax.get_xlim()[0] > ax.get_xlim()[1]
        assert mirrored == (radiological and ax.get_label() != "sagittal")
        assert ax.get_ylim()[0] < ax.get_ylim()[1]  # superior / anterior up


def test_marker_side_in_pixels():
    """The marker (right, anterior, superior) on the screen's right in neurological axial and
    coronal panels and on the left in radiological ones; right (anterior) in the sagittal
    panel; up (superior / anterior) everywhere: read from pixels alone."""
    img = ORIENTATIONS["LPI"]
    for radiological in (False, True):
        fig = vx.plot_ortho(
            img, coords=MARKER, radiological=radiological, cmap="viridis", vmin=0, vmax=1000
        )
        rgb = render(fig)
        for ax in fig.axes:
            px = marker_pixels(fig, rgb, ax).mean(axis=0)
            # The panel's voxel area (its extent), not the axes box, is the frame of reference.
            ext = ax.images[0].get_extent()
            (ax0, ay0), (ax1, ay1) = ax.transData.transform([(ext[0], ext[2]), (ext[1], ext[3])])
            frac_x = (px[0] - min(ax0, ax1)) / abs(ax1 - ax0)
            frac_y = (px[1] - min(ay0, ay1)) / abs(ay1 - ay0)
            right = ax.get_label() == "sagittal" or not radiological
            assert (frac_x > 0.5) == right, (ax.get_label(), radiological, frac_x)
            assert frac_y > 0.5, (ax.get_label(), frac_y)


def test_letters_follow_the_convention():
    img = ORIENTATIONS["RAS"]
    for radiological, (left, right) in ((False, ("L", "R")), (True, ("R", "L"))):
        fig = vx.plot_ortho(img, coords=MARKER, radiological=radiological)
        for ax in fig.axes:
            texts = {t.get_text(): t.get_position() for t in ax.texts}
            if ax.get_label() == "sagittal":
                assert texts["P"][0] < texts["A"][0] and texts["I"][1] < texts["S"][1]
            else:
                assert texts[left][0] < texts[right][0]
            if ax.get_label() == "axial":
                assert texts["P"][1] < texts["A"][1]
        labels = [ax.texts[0].get_text() for ax in fig.axes]
        assert labels == ["x=30", "y=20", "z=10"]


def test_canonical_panels_are_the_walkthroughs_slices(tmp_path):
    """nibabel's "Nibabel images" walkthrough: ``show_slices([data[i], data[:, j], data[..., k]])``
    with ``imshow(slice.T, cmap="gray", origin="lower")`` on a canonical image."""
    path = tmp_path / "ras.nii.gz"
    nib.save(ORIENTATIONS["RAS"], path)
    ref = nib.load(path)
    data = ref.get_fdata()
    i, j, k = 20, 33, 11
    xyz = ref.affine[:3, :3] @ (i, j, k) + ref.affine[:3, 3]
    fig = vx.plot_ortho(vx.load(path), coords=xyz)
    for ax, expected in zip(fig.axes, (data[i, :, :], data[:, j, :], data[:, :, k])):
        shown = ax.images[0].get_array()
        np.testing.assert_array_equal(np.asarray(shown), expected.T)
        assert ax.images[0].origin == "lower"


@pytest.mark.parametrize("name", ["LAS", "LPI", "PIL"])
def test_reordered_panels_equal_the_canonical_ones(name):
    """Flips and transposes only: the same voxels as the canonical image's panels."""
    ras = ortho_planes(as_volume(ORIENTATIONS["RAS"]), MARKER)
    other = ortho_planes(as_volume(ORIENTATIONS[name]), MARKER)
    for a, b in zip(ras, other):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_allclose(a.extent, b.extent)


def test_oblique_planes_sample_the_nearest_voxel():
    img = ORIENTATIONS["oblique"]
    vol = as_volume(img)
    data = np.asanyarray(img.dataobj)
    inv = np.linalg.inv(img.affine)
    for p in ortho_planes(vol, MARKER):
        h, v = p.hv
        nh, nv = p.data.shape
        step = (p.extent[1] - p.extent[0]) / nh
        hs = p.extent[0] + step * (np.arange(nh) + 0.5)
        vs = p.extent[2] + step * (np.arange(nv) + 0.5)
        rng = np.random.default_rng(0)
        for a, b in zip(rng.integers(0, nh, 200), rng.integers(0, nv, 200)):
            xyz = MARKER.copy()
            xyz[h], xyz[v] = hs[a], vs[b]
            ijk = np.floor(inv[:3, :3] @ xyz + inv[:3, 3] + 0.5).astype(int)
            if np.all((ijk >= 0) & (ijk < data.shape)):
                assert p.data[a, b] == data[tuple(ijk)]
            else:
                assert np.isnan(p.data[a, b])


def test_nan_is_transparent(tmp_path):
    arr = np.arange(8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10)
    arr[:4] = np.nan
    fig = vx.plot_ortho(nib.Nifti1Image(arr, np.eye(4)), coords=(5, 4, 5))
    im = fig.axes[2].images[0]
    assert np.ma.getmaskarray(im.get_array()).any()
    assert im.get_cmap().get_bad()[3] == 0
    lo, hi = im.get_clim()
    finite = arr[np.isfinite(arr)]
    assert finite.min() <= lo < hi <= finite.max()


# -- bounded, counted reads --------------------------------------------------------------

SHAPE4 = (64, 72, 48, 6)


@pytest.fixture(scope="module")
def bold(tmp_path_factory):
    """A 4-D int16 image (64 x 72 x 48, 6 volumes) as .nii, .nii.gz and its array."""
    d = tmp_path_factory.mktemp("bold")
    rng = np.random.default_rng(1)
    base = np.indices(SHAPE4[:3]).sum(axis=0).astype(np.int16)
    arr = np.stack([base + rng.integers(0, 50, SHAPE4[:3]) for _ in range(SHAPE4[3])], -1)
    arr = arr.astype(np.int16)
    img = nib.Nifti1Image(arr, canonical(SHAPE4[:3]))
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((2, 2, 2, 1.5))
    for name in ("bold.nii", "bold.nii.gz"):
        nib.save(img, d / name)
    return d, arr


def runs_bound(shape, itemsize, key, granule) -> int:
    """Bytes of the granule-aligned blocks holding the selection's bytes (F order): the
    most a read of ``key`` may cost with reads at ``granule`` granularity."""
    idx = np.indices(shape, sparse=True)
    sel = np.zeros(shape, bool)
    sel[key] = True
    flat = np.flatnonzero(sel.ravel(order="F")) * itemsize
    del idx
    blocks = np.unique(np.r_[flat // granule, (flat + itemsize - 1) // granule])
    return len(blocks) * granule


def ortho_keys(img, coords, t):
    vol = as_volume(img)
    ijk = np.floor(np.linalg.solve(vol.affine[:3, :3], coords - vol.affine[:3, 3]) + 0.5)
    i, j, k = (int(x) for x in ijk)
    every = slice(None)
    return [(i, every, every, t), (every, j, every, t), (every, every, k, t)]


def test_ortho_of_one_volume_reads_its_planes_nii(bold):
    d, arr = bold
    img = vx.load(d / "bold.nii")
    src = open_source(img.dataobj.reader.source)
    src.stats.reset()
    coords = np.array([4.0, -10.0, 6.0])
    fig = vx.plot_ortho(img, coords=coords, t=4)
    planes = [ax.images[0].get_array() for ax in fig.axes]
    keys = ortho_keys(img, coords, 4)
    for shown, key in zip(planes, keys):
        np.testing.assert_array_equal(np.asarray(shown).T, arr[key])
    bound = sum(runs_bound(arr.shape, 2, k, src.request_cost) for k in keys)
    assert 0 < src.stats.bytes_read <= bound
    # Volume 4's bytes only (the sagittal and coronal planes of a Fortran-ordered volume
    # touch every 32 KiB granule of it; the axial plane is one contiguous run).
    assert src.stats.bytes_read <= 2 * arr[..., 0].nbytes + 2**15 < arr.nbytes / 2


def test_axial_mosaic_reads_n_planes_exactly(bold):
    d, arr = bold
    img = vx.load(d / "bold.nii")
    src = open_source(img.dataobj.reader.source)
    src.stats.reset()
    fig = vx.plot_mosaic(img, axis="z", n=7, t=2)
    assert len(fig.axes) == 7
    plane = arr.shape[0] * arr.shape[1] * 2
    assert src.stats.bytes_read == 7 * plane
    assert src.stats.requests == 7
    # The planes shown are the image's, at the labelled world positions.
    for ax in fig.axes:
        z = float(ax.texts[0].get_text().split("=")[1])
        k = round((z - img.affine[2, 3]) / img.affine[2, 2])
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()).T, arr[:, :, k, 2])


def test_ortho_of_indexed_gzip_inflates_about_one_volume(bold, fresh_cache):
    d, arr = bold
    path = d / "bold.nii.gz"
    first = vx.load(path)
    np.asarray(first.dataobj[..., -1])  # builds the index (a first full pass)
    from voxray.sources import clear_cache

    clear_cache()  # a new process: the index comes from the cache
    img = vx.load(path)
    src = open_source(img.dataobj.reader.source)
    src.stats.reset()
    vx.plot_ortho(img, t=3)
    volume = arr[..., 0].nbytes
    spacing = src.index.spacing * 8  # uncompressed bytes per seek point, generously
    assert src.index.complete
    assert 0 < src.stats.bytes_inflated <= 3 * (volume + spacing)
    assert src.stats.bytes_inflated < arr.nbytes / 2


def test_ortho_over_http_reads_ranges_of_its_planes(bold):
    d, arr = bold
    with RangeServer(d) as server:
        img = vx.load(server.url("bold.nii"))
        server.reset_counts()
        fig = vx.plot_ortho(img, t=5)
        sent = server.bytes_sent
    keys = ortho_keys(
        img,
        as_volume(img).affine[:3, :3] @ ((np.array(SHAPE4[:3]) - 1) / 2)
        + as_volume(img).affine[:3, 3],
        5,
    )
    for shown, key in zip((ax.images[0].get_array() for ax in fig.axes), keys):
        np.testing.assert_array_equal(np.asarray(shown).T, arr[key])
    src = open_source(img.dataobj.reader.source)
    bound = sum(runs_bound(arr.shape, 2, k, src.request_cost) for k in keys)
    assert 0 < sent <= bound + 3 * src.request_cost
    assert sent < arr.nbytes / 2


@pytest.mark.slow
def test_ortho_of_zarr_reads_the_chunks_of_its_planes(bold, tmp_path):
    d, arr = bold
    store = tmp_path / "bold.nii.zarr"
    vx.to_zarr(vx.load(d / "bold.nii"), store, chunks=(1, 16, 32, 32), shards=False, levels=1)
    chunk_files = {p: p.stat().st_size for p in store.rglob("*") if p.is_file()}
    with RangeServer(tmp_path) as server:
        img = vx.load(server.url("bold.nii.zarr"))
        server.reset_counts()
        fig = vx.plot_ortho(img, t=1)
        sent = server.bytes_sent
    centre = (np.array(SHAPE4[:3]) - 1) / 2
    keys = ortho_keys(img, img.affine[:3, :3] @ centre + img.affine[:3, 3], 1)
    for shown, key in zip((ax.images[0].get_array() for ax in fig.axes), keys):
        np.testing.assert_array_equal(np.asarray(shown).T, arr[key])
    # Chunks are (t, z, y, x) = (1, 16, 32, 32); each plane reads the chunks of volume 1
    # that hold its index (a chunk shared by two planes is fetched by each).
    i, j, k = (int(x) for x in np.floor(centre + 0.5))
    grid = [(ci, cj, ck) for ci in range(2) for cj in range(3) for ck in range(3)]
    per_plane = [
        [c for c in grid if c[0] == i // 32],
        [c for c in grid if c[1] == j // 32],
        [c for c in grid if c[2] == k // 16],
    ]
    data = [p for p in chunk_files if p.relative_to(store).parts[:2] == ("0", "c")]
    by_index = {tuple(int(x) for x in p.relative_to(store / "0" / "c").parts): p for p in data}
    need = sum(chunk_files[by_index[(1, ck, cj, ci)]] for p in per_plane for ci, cj, ck in p)
    metadata = sum(s for p, s in chunk_files.items() if p.name == "zarr.json")
    assert 0 < sent <= need + metadata
    assert sent < sum(chunk_files[p] for p in data) / 3


def test_carpet_reads_the_data_once(bold):
    d, arr = bold
    img = vx.load(d / "bold.nii")
    src = open_source(img.dataobj.reader.source)
    src.stats.reset()
    plane = arr.shape[0] * arr.shape[1] * arr.shape[3] * 2  # one k plane, every volume
    values, times, per_row = carpet(img, rows=500, max_memory=2 * 5 * plane)  # 10 slabs
    assert src.stats.bytes_read == arr.nbytes
    assert values.shape == (math.ceil(arr[..., 0].size / per_row), arr.shape[3])
    np.testing.assert_allclose(times, 1.5 * np.arange(6))


@pytest.mark.slow
def test_carpet_equals_nilearns_cleaned_signals():
    """Full resolution (one voxel per row): nilearn's detrended, z-scored masked data."""
    from nilearn.masking import apply_mask
    from nilearn.signal import clean

    img = vx.load(NIBABEL_DATA / "functional.nii")
    data = np.asanyarray(img.dataobj)
    mask = np.zeros(img.shape[:3], bool)
    mask[3:14, 4:18, :] = True
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), img.affine)
    ours, _, per_row = carpet(img, mask=mask_img, rows=10**6, max_memory=2**16)
    assert per_row == 1
    ref = clean(
        apply_mask(nib.Nifti1Image(data, img.affine), mask_img).astype(np.float64),
        detrend=True,
        standardize="zscore_sample",
    ).T  # voxels x time, nilearn's voxel order (C order over i, j, k)
    order = np.argsort(np.ravel_multi_index(np.nonzero(mask), mask.shape))
    # ours: k slab by slab, i fastest; map both to the voxels' C-order positions
    ijk = np.stack(np.nonzero(mask.transpose(2, 1, 0)), 1)[:, ::-1]
    ours_c = ours[np.argsort(np.ravel_multi_index(ijk.T, mask.shape))]
    np.testing.assert_allclose(ours_c, ref[order], atol=1e-8)


def test_carpet_binned_rows_are_means_of_full_rows():
    img = vx.load(NIBABEL_DATA / "functional.nii")
    full, _, _ = carpet(img, rows=10**6)
    binned, _, per_row = carpet(img, rows=97)
    assert per_row > 1 and len(binned) <= 97
    n = len(full) // per_row * per_row
    np.testing.assert_allclose(
        binned[: n // per_row], full[:n].reshape(-1, per_row, full.shape[1]).mean(axis=1)
    )


def test_timecourse_equals_nilearns_sphere_masker():
    from nilearn.maskers import NiftiSpheresMasker

    img = vx.load(NIBABEL_DATA / "functional.nii")
    seed = img.affine[:3, :3] @ (8, 10, 1) + img.affine[:3, 3]
    for radius in (None, 4.0, 9.0):
        times, ours = timecourse(img, seed, radius=radius)
        ref = (
            NiftiSpheresMasker([tuple(seed)], radius=radius, standardize=None)
            .fit_transform(nib.load(NIBABEL_DATA / "functional.nii"))
            .ravel()
        )
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
    tr = float(img.header.get_zooms()[3])
    np.testing.assert_allclose(times, tr * np.arange(img.shape[3]))


def test_timecourse_reads_the_spheres_box(bold):
    d, arr = bold
    img = vx.load(d / "bold.nii")
    src = open_source(img.dataobj.reader.source)
    src.stats.reset()
    fig = vx.plot_timecourse(img, (0.0, 0.0, 0.0), radius=5)
    assert fig.axes[0].get_xlabel() == "time (s)"
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), 1.5 * np.arange(6))
    # A 5 mm sphere at 2 mm voxels: a box of 7 planes' rows per volume, at most.
    box_span = 7 * arr.shape[0] * arr.shape[1] * 2
    assert src.stats.bytes_read <= 6 * (box_span + 2**15)
    assert src.stats.requests == 6


def test_bad_calls_raise_voxray_errors(tmp_path):
    img = ORIENTATIONS["RAS"]
    with pytest.raises(vx.InputError, match="3-D"):
        vx.plot_ortho(img, t=3)
    with pytest.raises(vx.InputError, match="coords"):
        vx.plot_ortho(img, coords=(1, 2))
    with pytest.raises(vx.InputError, match="4-D"):
        vx.plot_carpet(img)
    with pytest.raises(vx.InputError, match="axis"):
        vx.plot_mosaic(img, axis="w")
    with pytest.raises(vx.InputError, match="outside"):
        timecourse(marker_image(canonical(), (48, 56, 40), t=3), (500, 0, 0))
    with pytest.raises(vx.InputError, match="cannot plot"):
        vx.plot_ortho(np.zeros((3, 3, 3)))
    with pytest.raises(vx.InputError, match="no affine"):
        vx.plot_ortho(vx.load(NIBABEL_DATA / "row_major.dconn.nii"))


def test_outside_coords_show_an_empty_plane():
    img = ORIENTATIONS["RAS"]
    planes = ortho_planes(as_volume(img), (500.0, 0.0, 0.0))
    assert not planes[0].inside and np.isnan(planes[0].data).all()
    assert planes[1].inside and planes[2].inside


def test_without_matplotlib_the_error_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(vx.MissingDependencyError, match=r"voxray\[plot\]"):
        vx.plot_ortho(ORIENTATIONS["RAS"])
    assert issubclass(vx.MissingDependencyError, ImportError)


def test_import_voxray_imports_no_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, voxray, voxray.plotting; "
        "print(any(m.split('.')[0] in ('matplotlib', 'dask', 'xarray') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_figures_draw_into_a_given_figure_and_keep_pyplot_out():
    from matplotlib.figure import Figure

    fig = Figure()
    out = vx.plot_ortho(ORIENTATIONS["RAS"], figure=fig, title="t1", colorbar=True)
    assert out is fig and len(fig.axes) == 4  # three panels and the colour bar
    assert fig._suptitle.get_text() == "t1"
    assert matplotlib.get_backend()  # no pyplot figure was opened
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []
