"""Images as DataArrays: world coordinates from the affine, selection in mm, the backend."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nibabel.affines import apply_affine
from nibabel.orientations import aff2axcodes

import voxray as vx
from voxray.sources import open_source
from voxray.testing import write_nifti
from voxray.testing.strategies import spatial_slices
from voxray.xarray import AffineIndex, AffineMismatchError, AxisIndex

SHAPE = (7, 6, 5, 3)


@st.composite
def affines(draw, kind=None):
    """Axis-aligned (permuted, flipped), oblique and sheared affines."""
    kind = kind or draw(st.sampled_from(["diagonal", "permuted", "oblique", "sheared"]))
    zooms = np.array([draw(st.sampled_from([0.5, 1.0, 2.0, 2.5, 3.3])) for _ in range(3)])
    signs = np.array([draw(st.sampled_from([-1, 1])) for _ in range(3)])
    A = np.diag(zooms * signs)
    if kind in ("permuted", "oblique", "sheared"):
        perm = draw(st.permutations(range(3)))
        A = A[:, perm]
    if kind == "oblique":
        a, b = draw(st.floats(0.05, 1.2)), draw(st.floats(-0.8, 0.8))
        ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
        rot = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]]) @ np.array(
            [[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]]
        )
        A = rot @ A
    if kind == "sheared":
        A = A + np.triu(np.full((3, 3), draw(st.floats(0.1, 0.9))), 1)
    assume(abs(np.linalg.det(A)) > 1e-3 * np.prod(zooms))  # a voxel grid needs an inverse
    aff = np.eye(4)
    aff[:3, :3] = A
    aff[:3, 3] = [draw(st.floats(-100, 100)) for _ in range(3)]
    return aff


def _image(affine, shape=SHAPE, seed=0):
    data = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return vx.Image(data, affine), data


def _coords_values(da):
    """World coordinates of every voxel of da (materialised, for checking)."""
    x, y, z = (
        np.broadcast_to(da[n].values, _spatial(da))
        if da[n].ndim
        else np.full(_spatial(da), float(da[n]))
        for n in "xyz"
    )
    return np.stack([x, y, z], -1)


def _spatial(da):
    return tuple(da.sizes[d] for d in "ijk" if d in da.dims)


@settings(max_examples=150, deadline=None)
@given(affine=affines(), data=st.data())
def test_coordinates_follow_the_affine_through_slicing(affine, data):
    img, _ = _image(affine)
    da = img.to_xarray()
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE[:3]], indexing="ij"), -1)
    np.testing.assert_allclose(_xyz(da), apply_affine(affine, ijk), atol=1e-9)
    key = data.draw(spatial_slices(SHAPE))[:3]
    assume(all(len(range(n)[s]) for s, n in zip(key, SHAPE)))
    sub_img = img.slicer[key]
    sub = da.isel(dict(zip(("i", "j", "k"), key)))
    np.testing.assert_allclose(sub.vx.affine, sub_img.affine, atol=1e-9)
    kinds = {type(i) for i in sub.xindexes.values() if not isinstance(i, xr.indexes.PandasIndex)}
    assert kinds <= {AxisIndex, AffineIndex} and kinds  # still voxray's own index
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in sub_img.shape[:3]], indexing="ij"), -1)
    np.testing.assert_allclose(_xyz(sub), apply_affine(sub_img.affine, ijk), atol=1e-9)


def _xyz(da):
    out = []
    for n in "xyz":
        c = da[n]
        full = c.transpose(*[d for d in "ijk" if d in c.dims]).values
        if c.ndim < 3:  # 1-D coordinate of an axis-aligned image: broadcast over the others
            full = (
                c.broadcast_like(da.isel(t=0) if "t" in da.dims else da)
                .transpose("i", "j", "k")
                .values
            )
        out.append(full)
    return np.stack(out, -1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(affine=affines(), data=st.data())
def test_sel_by_mm_returns_the_voxel_nibabel_maps_to(affine, data):
    img, arr = _image(affine)
    da = img.to_xarray()
    voxel = np.array([data.draw(st.integers(0, n - 1)) for n in SHAPE[:3]])
    jitter = np.array([data.draw(st.floats(-0.45, 0.45)) for _ in range(3)])
    xyz = apply_affine(affine, voxel + jitter)
    expected = np.round(apply_affine(np.linalg.inv(affine), xyz)).astype(int)
    assume(np.all(np.abs(apply_affine(np.linalg.inv(affine), xyz) % 1 - 0.5) > 1e-6))
    assume(np.all((expected >= 0) & (expected < SHAPE[:3])))
    got = da.sel(x=xyz[0], y=xyz[1], z=xyz[2], method="nearest")
    np.testing.assert_array_equal(got.values, arr[tuple(expected)])
    # Points outside the image raise KeyError instead of wrapping around.
    far = apply_affine(affine, np.array(SHAPE[:3]) + 3)
    with pytest.raises(KeyError, match="outside"):
        da.sel(x=far[0], y=far[1], z=far[2], method="nearest")


def test_sel_slices_lists_and_exact_labels_axis_aligned():
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [-6, -9, 0]
    img, arr = _image(affine)
    da = img.to_xarray()
    assert isinstance(da.xindexes["x"], AxisIndex)
    sub = da.sel(x=slice(-2, 3))  # centres at -6, -4, -2, 0, 2, 4, 6
    np.testing.assert_array_equal(sub.x.values, [-2, 0, 2])
    np.testing.assert_array_equal(da.sel(x=slice(3, -2)).x.values, [-2, 0, 2])
    np.testing.assert_array_equal(da.sel(x=slice(None, -5)).x.values, [-6])
    assert da.sel(x=slice(100, 200)).sizes["i"] == 0
    np.testing.assert_array_equal(da.sel(x=2.0).values, arr[4])
    with pytest.raises(KeyError, match="not a voxel centre"):
        da.sel(x=2.5)
    np.testing.assert_array_equal(da.sel(x=2.9, method="nearest").values, arr[4])
    np.testing.assert_array_equal(da.sel(x=[-6, 6], y=0).values, arr[[0, 6], 3])
    np.testing.assert_array_equal(
        da.sel(x=np.array([0.4, 3.1]), method="nearest").values, arr[[3, 5]]
    )
    with pytest.raises(KeyError, match="outside"):
        da.sel(x=-7.5, method="nearest")
    with pytest.raises(KeyError):
        da.sel(x=2.9, method="nearest", tolerance=0.5)
    # flipped axis: labels decrease with i, slices still select the interval
    flipped = da.isel(i=slice(None, None, -1))
    np.testing.assert_array_equal(flipped.sel(x=slice(-2, 3)).x.values, [2, 0, -2])


def test_oblique_points_lists_and_boxes():
    affine = np.array(
        [[1.8, -0.6, 0.1, 10], [0.5, 2.1, -0.2, -20], [0.0, 0.3, 2.5, 5], [0, 0, 0, 1]]
    )
    img, arr = _image(affine)
    da = img.to_xarray()
    assert isinstance(da.xindexes["x"], AffineIndex)
    vox = np.array([[1, 2, 3], [6, 0, 4], [3, 5, 0]])
    xyz = apply_affine(affine, vox)
    got = da.sel(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], method="nearest")
    assert got.dims == ("points", "t")
    np.testing.assert_array_equal(got.values, arr[vox[:, 0], vox[:, 1], vox[:, 2]])
    pts = xr.DataArray(xyz, dims=("roi", "xyz"))
    got = da.sel(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], method="nearest")
    assert got.dims == ("roi", "t")
    with pytest.raises(ValueError, match="oblique"):
        da.sel(x=xyz[0, 0], method="nearest")
    with pytest.raises(ValueError, match="nearest"):
        da.sel(x=xyz[0, 0], y=xyz[0, 1], z=xyz[0, 2])
    box = da.sel(x=slice(10, 15), y=slice(-20, -10))
    inside = apply_affine(affine, np.argwhere(np.ones(SHAPE[:3])))
    mask = (
        (inside[:, 0] >= 10) & (inside[:, 0] <= 15) & (inside[:, 1] >= -20) & (inside[:, 1] <= -10)
    )
    ijk = np.argwhere(np.ones(SHAPE[:3]))[mask]
    for a, d in enumerate("ijk"):  # the box covers every voxel whose centre is inside
        s = box[d] if d in box.coords else None
        assert box.sizes[d] >= ijk[:, a].max() - ijk[:, a].min() + 1
        del s
    np.testing.assert_allclose(box.vx.affine[:3, :3], affine[:3, :3])


def test_integer_isel_drops_an_axis_and_keeps_world_positions():
    affine = np.array(
        [[1.8, -0.6, 0.1, 10], [0.5, 2.1, -0.2, -20], [0.0, 0.3, 2.5, 5], [0, 0, 0, 1]]
    )
    img, arr = _image(affine)
    da = img.to_xarray()
    plane = da.isel(k=2, t=1)
    assert plane.dims == ("i", "j")
    assert isinstance(plane.xindexes["x"], AffineIndex)
    np.testing.assert_allclose(plane.x.values[3, 4], apply_affine(affine, [3, 4, 2])[0])
    np.testing.assert_allclose(plane.vx.affine, img.slicer[:, :, 2:3].affine)
    aligned = vx.Image(arr, np.diag([2, 2, 2, 1])).to_xarray().isel(k=3)
    assert float(aligned.z) == 6.0
    np.testing.assert_allclose(
        aligned.vx.affine,
        np.diag([2, 2, 2, 1]) @ np.eye(4)
        + [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 6], [0, 0, 0, 0]],
    )


def test_equal_affines_combine_and_different_ones_refuse():
    for affine in (
        np.diag([2.0, 2.0, 2.0, 1.0]),
        np.array([[1.8, -0.6, 0.1, 10], [0.5, 2.1, -0.2, -20], [0, 0.3, 2.5, 5], [0, 0, 0, 1]]),
    ):
        a = vx.Image(np.ones(SHAPE, np.float32), affine).to_xarray()
        b = vx.Image(np.full(SHAPE, 2, np.float32), affine).to_xarray()
        np.testing.assert_array_equal((a + b).values, 3)
        stacked = xr.concat([a, b], dim="subject")
        assert stacked.sizes["subject"] == 2
        assert type(stacked.xindexes["x"]) is type(a.xindexes["x"])
        shifted = affine.copy()
        shifted[0, 3] += 1.0
        c = vx.Image(np.ones(SHAPE, np.float32), shifted).to_xarray()
        with pytest.raises(AffineMismatchError, match="different voxel grids"):
            a + c
        with pytest.raises(AffineMismatchError):
            xr.concat([a, c], dim="subject")


def _nifti(
    tmp_path, name="bold.nii.gz", units=("mm", "msec"), tr=2000.0, toffset=500.0, affine=None
):
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    h.set_data_shape(SHAPE)
    h.set_xyzt_units(*units)
    aff = np.diag([2.0, 2.5, 3.0, 1.0]) if affine is None else affine
    h.set_sform(aff, code=4)
    h.set_qform(aff, code=1)
    arr = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
    h.set_zooms((*np.sqrt((aff[:3, :3] ** 2).sum(0)), tr))
    h["toffset"] = toffset
    h["descrip"] = b"a test image"
    h.set_intent("t test", (12,))
    h.set_slope_inter(0.5, 10)
    h.set_dim_info(freq=0, phase=1, slice=2)
    return write_nifti(tmp_path / name, arr, h), arr


@pytest.mark.parametrize(("unit", "scale"), [("sec", 1.0), ("msec", 1e-3), ("usec", 1e-6)])
def test_time_in_seconds_attrs_and_encoding(tmp_path, unit, scale):
    p, arr = _nifti(tmp_path, units=("mm", unit))
    da = vx.open_dataarray(p)
    np.testing.assert_allclose(da.t.values, (500.0 + 2000.0 * np.arange(3)) * scale)
    assert da.t.attrs["units"] == "s" and da.x.attrs["units"] == "mm"
    assert da.name == "bold"
    assert da.attrs["description"] == "a test image"
    assert da.attrs["intent"] == "t test" and da.attrs["intent_params"] == [12.0]
    assert da.attrs["sform_code"] == "mni" and da.attrs["qform_code"] == "scanner"
    assert (da.attrs["freq_dim"], da.attrs["phase_dim"], da.attrs["slice_dim"]) == ("i", "j", "k")
    enc = da.encoding
    assert enc["dtype"] == np.int16 and enc["scale_factor"] == 0.5 and enc["add_offset"] == 10
    assert enc["source"].endswith("bold.nii.gz")
    assert enc["preferred_chunks"] == dict(zip("ijkt", SHAPE))
    np.testing.assert_array_equal(da.values, arr * 0.5 + 10)


def test_backend_engine_chunks_and_lazy_indexing(tmp_path):
    p, arr = _nifti(tmp_path, name="plain.nii")
    chunked = xr.open_dataarray(p, engine="voxray", chunks={})
    assert chunked.chunks is not None
    lazy = xr.open_dataarray(p, engine="voxray", chunks=None)
    assert lazy.chunks is None
    src = open_source(vx.load(p).dataobj.reader.source)
    src.stats.reset()
    vol = lazy.isel(t=1).values
    np.testing.assert_array_equal(vol, arr[..., 1] * 0.5 + 10)
    assert src.stats.bytes_returned == arr[..., 1].nbytes  # only that volume was read
    ds = xr.open_dataset(p, engine="voxray")
    assert list(ds.data_vars) == ["plain"]
    np.testing.assert_array_equal(ds["plain"].values, arr * 0.5 + 10)


def test_guess_can_open_uses_magic_as_well_as_suffix(tmp_path):
    from voxray.xarray.backend import VoxrayBackendEntrypoint

    p, _ = _nifti(tmp_path, name="plain.nii")
    bare = tmp_path / "no_suffix"
    bare.write_bytes(p.read_bytes())
    gz, _ = _nifti(tmp_path, name="zipped.nii.gz")
    bare_gz = tmp_path / "zipped_no_suffix"
    bare_gz.write_bytes(gz.read_bytes())
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    engine = VoxrayBackendEntrypoint()
    assert engine.guess_can_open(str(p)) and engine.guess_can_open(str(bare))
    assert engine.guess_can_open(str(bare_gz))
    assert not engine.guess_can_open(str(other))
    assert "voxray" in xr.backends.list_engines()


def test_accessor(tmp_path):
    affine = np.array(
        [[-1.8, -0.6, 0.1, 10], [0.5, 2.1, -0.2, -20], [0.0, 0.3, 2.5, 5], [0, 0, 0, 1]]
    )
    p, arr = _nifti(tmp_path, affine=affine)
    da = vx.open_dataarray(p)
    ref = nib.load(p)
    np.testing.assert_allclose(da.vx.affine, ref.affine, atol=1e-6)
    assert da.vx.axcodes == aff2axcodes(ref.affine)
    np.testing.assert_allclose(da.vx.zooms, (*ref.header.get_zooms()[:3], 2.0), rtol=1e-6)
    ijk = np.array([[1, 2, 3], [0, 0, 0]])
    np.testing.assert_allclose(da.vx.world_to_voxel(da.vx.voxel_to_world(ijk)), ijk, atol=1e-9)
    hdr = da.vx.header
    assert hdr.get_intent()[0] == "t test" and len(hdr.extensions) == 0
    np.testing.assert_allclose(hdr.get_best_affine(), ref.affine, atol=1e-5)
    img = da.isel(i=slice(1, None, 2)).vx.to_image()
    np.testing.assert_allclose(img.affine, vx.load(p).slicer[1::2].affine, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(img.dataobj), arr[1::2] * 0.5 + 10)
    assert not img.in_memory
    da.isel(t=slice(1, None)).vx.to_nifti(tmp_path / "out.nii")
    back = nib.load(tmp_path / "out.nii")
    np.testing.assert_allclose(back.affine, ref.affine, atol=1e-5)
    np.testing.assert_array_equal(back.dataobj.get_unscaled(), arr[..., 1:])
    store = da.vx.to_zarr(tmp_path / "out.nii.zarr")
    np.testing.assert_allclose(vx.open_dataarray(store).vx.affine, ref.affine, atol=1e-5)


@pytest.mark.parametrize("codes", ["RAS", "LPI", "SAR", "PIL"])
def test_reorient_is_lazy_and_keeps_world_positions(tmp_path, codes):
    affine = np.array([[0, -2.0, 0.1, 30], [0.2, 0, 2.5, -20], [3.0, 0.0, 0, 5], [0, 0, 0, 1]])
    p, _ = _nifti(tmp_path, affine=affine)
    da = vx.open_dataarray(p)
    src = open_source(vx.load(p).dataobj.reader.source)
    src.stats.reset()
    out = da.vx.reorient(codes)
    assert src.stats.requests == 0  # nothing read
    assert out.vx.axcodes == tuple(codes)
    assert out.dims[:3] == ("i", "j", "k")
    # Every voxel keeps its world position and value.
    for ijk in ([0, 0, 0], [2, 1, 3], [4, 3, 1]):
        xyz = da.vx.voxel_to_world(ijk)
        new = np.round(out.vx.world_to_voxel(xyz)).astype(int)
        np.testing.assert_array_equal(
            out.isel(i=new[0], j=new[1], k=new[2]).values,
            da.isel(i=ijk[0], j=ijk[1], k=ijk[2]).values,
        )
    if codes == "RAS":
        can = vx.as_closest_canonical(da)
        ref = nib.as_closest_canonical(nib.load(p))
        np.testing.assert_allclose(can.vx.affine, ref.affine, atol=1e-6)
        np.testing.assert_array_equal(can.values, ref.get_fdata())
        assert can.attrs["slice_dim"] in "ijk"


def test_memory_opening_and_slicing_a_600mb_image(tmp_path):
    """No coordinate array of the image's size is ever allocated (oblique: the worst case)."""
    import tracemalloc

    shape = (256, 256, 160, 30)  # 629 MB of int16; a 3-D float64 coordinate is 84 MB
    affine = np.array(
        [[1.8, -0.6, 0.1, 10], [0.5, 2.1, -0.2, -20], [0.0, 0.3, 2.5, 5], [0, 0, 0, 1]]
    )
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    h.set_data_shape(shape)
    h.set_sform(affine, code=1)
    p = tmp_path / "big.nii"
    with open(p, "wb") as f:
        h.write_to(f)
        f.truncate(352 + 2 * int(np.prod(shape)))  # sparse: no disk used
    tracemalloc.start()
    da = vx.open_dataarray(p)
    sub = da.isel(i=slice(10, 200, 2), j=slice(None, None, -1), t=slice(0, 5))
    repr(sub)
    point = sub.sel(x=50.0, y=60.0, z=100.0, method="nearest")
    box = da.sel(x=slice(0, 50), y=slice(0, 50))
    repr(box)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 2**20, peak
    assert point.dims == ("t",)


@pytest.mark.slow
def test_mean_over_time_on_a_process_cluster(corpus):
    from dask.distributed import Client, LocalCluster

    p = corpus["scaled-int16.nii.gz"].path
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        got = vx.open_dataarray(p, chunks={"t": 1}).mean("t").compute()
    np.testing.assert_allclose(got.values, nib.load(p).get_fdata().mean(-1))
    np.testing.assert_allclose(got.vx.affine, nib.load(p).affine)


@pytest.mark.parametrize("stem", ["x", "t", "i"])
def test_a_file_named_like_a_coordinate_opens(tmp_path, stem):
    """``x.nii`` would name the data variable like the coordinate ``x``: it is "image"."""
    from voxray.testing import write_nifti

    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    h.set_data_shape((3, 4, 5, 2))
    path = write_nifti(tmp_path / f"{stem}.nii", np.ones((3, 4, 5, 2), np.int16), h)
    da = vx.open_dataarray(path)
    assert da.name == "image" and {"x", "y", "z"} <= set(da.coords)
    assert int(da.sum()) == 120
