"""AFNI BRIK/HEAD against nibabel: every file nibabel ships (broken ones too), generated
4-D scaled datasets (plain, gzipped, big-endian), lazy reads counted in bytes and inflated
bytes, hypothesis slices, derived views, conversion, URLs, file maps, a process cluster,
bad files, and nibabel's own AFNI image tests run on voxray's class."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import nibabel.tests.test_brikhead as nib_brikhead
import nibabel.tests.test_image_api as nib_image_api
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel import brikhead
from nibabel.tests.test_fileslice import slicer_samples

import voxray as vx
from voxray.errors import UnsupportedFormatError
from voxray.formats.afni import AFNI, AFNIImage
from voxray.formats.afni.header import file_names
from voxray.formats.afni.reader import AFNIArrayProxy
from voxray.sources import clear_cache, flush_index_writes, open_source
from voxray.testing import NIBABEL_DATA
from voxray.testing.checks import check_slicer
from voxray.testing.strategies import basic_index, spatial_slices

SHIPPED = (
    "example4d+orig.HEAD",
    "example4d+orig.BRIK.gz",
    "scaled+tlrc.HEAD",
    "scaled+tlrc.BRIK",
)
BROKEN = ("bad_attribute+orig.HEAD", "bad_datatype+orig.HEAD")
_CODES = {np.dtype(np.uint8): 0, np.dtype(np.int16): 1, np.dtype(np.float32): 3}


def _attr(kind: str, name: str, values) -> str:
    if kind == "string":
        text = f"'{values}~"
        return f"type = string-attribute\nname = {name}\ncount = {len(values) + 1}\n{text}\n"
    values = list(values)
    body = " ".join(repr(float(v)) if kind == "float" else str(int(v)) for v in values)
    return f"type = {kind}-attribute\nname = {name}\ncount = {len(values)}\n {body}\n"


def write_afni(
    stem, arr, *, factors=None, order="LSB_FIRST", gz=False, tr=2.0, space="ORIG", head=True
):
    """An AFNI dataset written as AFNI lays it out: ``stem.HEAD`` text and the BRIK
    (``stem.BRIK`` or ``stem.BRIK.gz``) in Fortran order; returns the HEAD path."""
    stem = str(stem)
    nx, ny, nz, nt = arr.shape
    dtype = arr.dtype
    aff = [-2.0, 0, 0, 30.0, 0, -2.5, 0, 40.0, 0, 0, 3.0, -20.0]  # RAI (DICOM) order
    attrs = [
        _attr("string", "TYPESTRING", "3DIM_HEAD_ANAT"),
        _attr("integer", "DATASET_RANK", [3, nt, 0, 0, 0, 0, 0, 0]),
        _attr("integer", "DATASET_DIMENSIONS", [nx, ny, nz, 0, 0]),
        _attr("integer", "BRICK_TYPES", [_CODES[dtype.newbyteorder("=")]] * nt),
        _attr("string", "BYTEORDER_STRING", order),
        _attr("float", "DELTA", [-2.0, -2.5, 3.0]),
        _attr("float", "ORIGIN", [30.0, 40.0, -20.0]),
        _attr("float", "IJK_TO_DICOM_REAL", aff),
        _attr("string", "BRICK_LABS", "~".join(f"vol{i}" for i in range(nt))),
        _attr("string", "TEMPLATE_SPACE", space),
        _attr("integer", "TAXIS_NUMS", [nt, 0, 77002]),
        _attr("float", "TAXIS_FLOATS", [0.0, tr, 0.0, 0.0, 0.0]),
    ]
    if factors is not None:
        attrs.append(_attr("float", "BRICK_FLOAT_FACS", factors))
    if head:
        with open(stem + ".HEAD", "w") as f:
            f.write("\n" + "\n".join(attrs))
    data = np.asarray(arr, dtype.newbyteorder("<" if order == "LSB_FIRST" else ">"))
    raw = data.tobytes(order="F")
    if gz:
        with open(stem + ".BRIK.gz", "wb") as f:
            f.write(gzip.compress(raw, 1))
    else:
        with open(stem + ".BRIK", "wb") as f:
            f.write(raw)
    return stem + ".HEAD"


def _values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 30, shape).astype(dtype)
    hi = 250 if np.dtype(dtype) == np.uint8 else 3000
    return rng.integers(0, hi, shape).astype(dtype)


def assert_same_as_nibabel(img, ref) -> None:
    assert isinstance(img, AFNIImage) and isinstance(img, brikhead.AFNIImage)
    assert isinstance(img.dataobj, vx.ArrayProxy) and not img.in_memory
    assert img.shape == ref.shape
    assert img.get_data_dtype() == ref.get_data_dtype()
    assert img.dataobj.dtype == ref.dataobj.dtype
    np.testing.assert_array_equal(img.affine, ref.affine)
    assert img.header.info == ref.header.info
    assert img.header.get_zooms() == ref.header.get_zooms()
    assert img.header.get_volume_labels() == ref.header.get_volume_labels()
    assert img.header.get_space() == ref.header.get_space()
    np.testing.assert_array_equal(img.dataobj.scaling, ref.dataobj.scaling)
    got, want = np.asanyarray(img.dataobj), np.asanyarray(ref.dataobj)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(img.get_fdata(), ref.get_fdata())
    np.testing.assert_array_equal(img.dataobj.get_unscaled(), ref.dataobj.get_unscaled())


# -- files nibabel ships -------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_file_matches_nibabel(name):
    p = NIBABEL_DATA / name
    img = vx.load(p)
    assert_same_as_nibabel(img, nib.load(p))
    assert type(img).format is AFNI
    assert img.nibabel_class is brikhead.AFNIImage
    assert img.get_filename() == nib.load(p).get_filename()


def test_brik_name_finds_the_gzipped_brik_as_nibabel_afni_load_does():
    p = NIBABEL_DATA / "example4d+orig.BRIK"  # only the .BRIK.gz exists
    assert_same_as_nibabel(vx.load(p), brikhead.load(str(p)))


@pytest.mark.parametrize("name", BROKEN)
def test_broken_shipped_headers_raise_voxray_errors_where_nibabel_raises(name):
    p = NIBABEL_DATA / name
    with pytest.raises(Exception) as nib_err:
        nib.load(p)
    assert not isinstance(nib_err.value, vx.VoxrayError)
    with pytest.raises(vx.InvalidHeaderError) as err:
        vx.load(p)
    assert name in str(err.value)
    if name == "bad_datatype+orig.HEAD":
        assert isinstance(err.value, vx.UnsupportedDataTypeError)


def test_file_names():
    assert file_names("a/x+orig.head") == ("a/x+orig.head", ["a/x+orig.brik", "a/x+orig.brik.gz"])
    assert file_names("x+orig.BRIK") == ("x+orig.HEAD", ["x+orig.BRIK", "x+orig.BRIK.gz"])
    assert file_names("https://h/x+orig.HEAD?sig=1")[1][0] == "https://h/x+orig.BRIK"
    with pytest.raises(vx.NotAnImageError):
        file_names("x.nii")


# -- generated datasets --------------------------------------------------------------------


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    d = tmp_path_factory.mktemp("afni")
    out = {}
    arr = _values((7, 6, 5, 4), np.int16, seed=1)
    factors = [0.5, 0.0, 2.25, 1e-3]  # 0: that volume is unscaled
    out["scaled-gz"] = write_afni(d / "sgz+orig", arr, factors=factors, gz=True)
    out["scaled-be"] = write_afni(d / "sbe+tlrc", arr, factors=factors, order="MSB_FIRST")
    out["plain-u8"] = write_afni(d / "u8+orig", _values((5, 4, 3, 2), np.uint8), space="TLRC")
    out["float32"] = write_afni(d / "f32+orig", _values((4, 5, 6, 3), np.float32), gz=True)
    out["zero-facs"] = write_afni(d / "z+orig", arr, factors=[0, 0, 0, 0])
    return out


@pytest.mark.parametrize("kind", ["scaled-gz", "scaled-be", "plain-u8", "float32", "zero-facs"])
def test_generated_datasets_match_nibabel(datasets, kind):
    p = datasets[kind]
    brik = p.replace(".HEAD", ".BRIK.gz" if kind in ("scaled-gz", "float32") else ".BRIK")
    for name in (p, brik):
        assert_same_as_nibabel(vx.load(name), brikhead.load(name))
    if kind == "zero-facs":
        assert vx.load(p).dataobj.scaling is None


_CACHE: dict = {}


def _loaded(p):
    if p not in _CACHE:
        _CACHE[p] = (vx.load(p), nib.load(p))
    return _CACHE[p]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), kind=st.sampled_from(["scaled-gz", "scaled-be", "plain-u8"]))
def test_hypothesis_slices_match_nibabel(datasets, data, kind):
    v, n = _loaded(datasets[kind])
    key = data.draw(basic_index(v.shape), label="key")
    ref = np.asanyarray(n.dataobj)[key]
    got = v.dataobj[key]
    assert np.asarray(got).dtype == np.asarray(ref).dtype
    # nibabel's whole-array read is the oracle: nibabel's own proxy fails on some
    # out-of-range negative stops ([..., :-5] of 4 volumes: a broadcasting error)
    np.testing.assert_array_equal(got, ref)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slicer_keeps_world_positions(datasets, data):
    v, n = _loaded(datasets["scaled-gz"])
    key = data.draw(spatial_slices(v.shape), label="key")
    try:
        v.slicer[key]
    except IndexError:
        return
    check_slicer(v, np.asanyarray(n.dataobj), key)


def test_derived_views_are_lazy_and_match_nibabel(datasets):
    p = datasets["scaled-gz"]
    v, n = vx.load(p), nib.load(p)
    x = v.to_dask()
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x.compute(), np.asanyarray(n.dataobj))
    c, nc = vx.as_closest_canonical(v), nib.as_closest_canonical(n)
    assert isinstance(c, AFNIImage) and not c.in_memory
    np.testing.assert_array_equal(c.affine, nc.affine)
    np.testing.assert_array_equal(np.asanyarray(c.dataobj), np.asanyarray(nc.dataobj))
    s = v.slicer[1:5, ::2, 3:, 1:]
    np.testing.assert_array_equal(s.affine, n.slicer[1:5, ::2, 3:, 1:].affine)
    np.testing.assert_array_equal(
        np.asanyarray(s.dataobj), np.asanyarray(n.dataobj)[1:5, ::2, 3:, 1:]
    )
    assert not v.in_memory and v.header.get_data_shape() == n.header.get_data_shape()


def test_to_xarray_has_voxel_dims_world_coordinates_and_time(datasets):
    p = datasets["scaled-gz"]
    v = vx.load(p)
    da = v.to_xarray()
    assert da.dims == ("i", "j", "k", "t")
    ijk = np.array([2, 3, 4, 1.0])
    xyz = v.affine @ ijk
    point = da.isel(i=2, j=3, k=4)
    np.testing.assert_allclose([float(point[c]) for c in "xyz"], xyz[:3], atol=1e-9)
    np.testing.assert_allclose(da["t"].values, np.arange(4) * 2.0)  # TR 2 s
    assert da["t"].attrs["units"] == "s"
    np.testing.assert_array_equal(da.values, np.asanyarray(nib.load(p).dataobj))
    assert isinstance(v.header, brikhead.AFNIHeader)  # the image's header is untouched


def test_pickles_as_plain_values(datasets):
    img = vx.load(datasets["scaled-be"])
    back = pickle.loads(pickle.dumps(img))
    assert isinstance(back.dataobj, AFNIArrayProxy)
    np.testing.assert_array_equal(back.dataobj.scaling, img.dataobj.scaling)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.asanyarray(img.dataobj))
    assert len(pickle.dumps(img.to_dask().__dask_graph__())) < 20_000


# -- laziness, counted -----------------------------------------------------------------------


def test_load_reads_only_the_head_and_a_volume_reads_only_its_bytes(tmp_path, fresh_cache):
    arr = _values((32, 32, 16, 10), np.int16)
    p = write_afni(tmp_path / "big+orig", arr, factors=[1.5] * 10)
    img = vx.load(p)
    s = open_source(img.dataobj.reader.source).stats
    assert s.bytes_read <= 16  # the BRIK's magic bytes, nothing else
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., 6], arr[..., 6] * 1.5)
    assert s.bytes_read == arr[..., 6].nbytes
    s.reset()
    np.testing.assert_array_equal(img.dataobj[3, 4, 5, :], arr[3, 4, 5, :] * 1.5)
    assert s.bytes_read <= 9 * arr[..., 0].nbytes + 2  # the span of the ten voxels at most


def test_one_volume_of_an_indexed_brik_gz_inflates_one_spacing_plus_the_volume(
    tmp_path, fresh_cache
):
    arr = _values((64, 64, 32, 12), np.int16)  # 256 KiB volumes, 3 MiB
    p = write_afni(tmp_path / "bold+orig", arr, factors=[0.25] * 12, gz=True)
    img = vx.load(p)
    src = open_source(img.dataobj.reader.source)
    assert src.stats.bytes_inflated < 64 * 1024  # loading inflates nothing of the data
    np.asanyarray(img.dataobj)  # the first full read builds the index
    flush_index_writes()
    clear_cache()  # a fresh process: only the stored index is shared
    img = vx.load(p)
    src = open_source(img.dataobj.reader.source)
    s = src.stats
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., 7], arr[..., 7] * 0.25)
    idx = src.index
    spacing = int(np.diff(np.asarray(idx.out)).max(initial=idx.spacing))
    assert s.bytes_inflated <= spacing + arr[..., 7].nbytes
    assert s.bytes_read < os.path.getsize(p.replace(".HEAD", ".BRIK.gz")) / 2


def test_remote_dataset_reads_one_volume_by_ranges(tmp_path):
    from voxray.testing.httpserver import RangeServer

    arr = _values((32, 32, 16, 8), np.int16)
    write_afni(tmp_path / "r+orig", arr, factors=[2.0] * 8)
    with RangeServer(tmp_path) as server:
        for name in ("r+orig.HEAD", "r+orig.BRIK"):
            before = server.bytes_sent
            img = vx.load(server.url(name))
            assert isinstance(img, AFNIImage)
            assert img.header.info == nib.load(tmp_path / "r+orig.HEAD").header.info
            np.testing.assert_array_equal(img.dataobj[..., 5], arr[..., 5] * 2.0)
            sent = server.bytes_sent - before
            assert sent < 2 * arr[..., 5].nbytes + 64 * 1024, sent


def test_remote_brik_gz(tmp_path):
    from voxray.testing.httpserver import RangeServer

    arr = _values((8, 8, 4, 3), np.int16)
    write_afni(tmp_path / "g+orig", arr, factors=[1.0, 2.0, 0.0], gz=True)
    with RangeServer(tmp_path) as server:
        img = vx.load(server.url("g+orig.HEAD"))
        assert_same_as_nibabel(img, nib.load(tmp_path / "g+orig.HEAD"))


def test_file_maps_with_file_objects(datasets):
    import io

    p = datasets["scaled-be"]
    head = Path(p).read_bytes()
    brik = Path(p.replace(".HEAD", ".BRIK")).read_bytes()
    fm = {
        "header": nib.FileHolder(fileobj=io.BytesIO(head)),
        "image": nib.FileHolder(fileobj=io.BytesIO(brik)),
    }
    img = AFNIImage.from_file_map(fm)  # nibabel's needs a text HEAD: BytesIO fails there
    assert_same_as_nibabel(img, brikhead.load(p))
    assert AFNIImage.from_filename(p).shape == img.shape


@pytest.mark.slow
def test_process_cluster(datasets):
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for kind in ("scaled-gz", "scaled-be"):
            p = datasets[kind]
            x = vx.load(p, chunks={3: 1}).to_dask()
            pickle.dumps(x.__dask_graph__())
            mean = client.compute(x.mean(axis=3)).result()
            np.testing.assert_allclose(mean, nib.load(p).get_fdata().mean(axis=3), rtol=1e-12)


# -- conversion and writing ------------------------------------------------------------------


def test_conversion_to_nifti_and_zarr_keeps_affine_and_values(datasets, tmp_path):
    for kind in ("scaled-gz", "plain-u8"):
        p = datasets[kind]
        img, ref = vx.load(p), nib.load(p)
        # as nibabel converts: the stored dtype, with one slope for all volumes
        vx.save(img, tmp_path / f"{kind}.nii.gz")
        out = nib.load(tmp_path / f"{kind}.nii.gz")
        np.testing.assert_allclose(out.affine, ref.affine, atol=1e-5)
        assert out.get_data_dtype() == ref.get_data_dtype()
        slope = out.header.get_slope_inter()[0] or 1.0
        np.testing.assert_allclose(out.get_fdata(), ref.get_fdata(), rtol=0, atol=slope)
        if kind == "plain-u8":
            np.testing.assert_array_equal(np.asanyarray(out.dataobj), np.asanyarray(ref.dataobj))
        # the values' dtype keeps per-volume factors exactly
        vx.save(img, tmp_path / f"{kind}-f8.nii", dtype=np.float64)
        exact = nib.load(tmp_path / f"{kind}-f8.nii")
        np.testing.assert_array_equal(exact.get_fdata(), ref.get_fdata())
        vx.to_zarr(img, tmp_path / f"{kind}.nii.zarr")
        z = vx.load(tmp_path / f"{kind}.nii.zarr")
        np.testing.assert_allclose(z.affine, ref.affine, atol=1e-5)
        np.testing.assert_allclose(np.asanyarray(z.dataobj), ref.get_fdata(), rtol=0, atol=slope)


def test_nibabels_nifti_conversion_takes_the_lazy_image(datasets):
    p = datasets["scaled-gz"]
    ni = nib.Nifti1Image.from_image(vx.load(p))
    np.testing.assert_array_equal(ni.get_fdata(), nib.load(p).get_fdata())


def test_writing_afni_is_refused(datasets, tmp_path):
    img = vx.load(datasets["scaled-gz"])
    for name in ("y+orig.HEAD", "y+orig.BRIK", "y+orig.BRIK.gz"):
        with pytest.raises(UnsupportedFormatError, match="cannot write afni"):
            vx.save(img, tmp_path / name)
        with pytest.raises(UnsupportedFormatError):
            img.to_filename(tmp_path / name)
        assert not (tmp_path / name).exists()
    assert not AFNI.writes


def test_cli_info_and_convert(datasets, tmp_path, capsys):
    import json

    from voxray.cli import main

    p = datasets["scaled-gz"]
    assert main(["info", "--json", p]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["nibabel_class"] == "AFNIImage" and tuple(d["shape"]) == (7, 6, 5, 4)
    assert main(["info", p]) == 0
    assert "AFNI" in capsys.readouterr().out
    for out in ("c.nii.gz", "c.nii.zarr"):
        assert main(["convert", "-q", p, str(tmp_path / out)]) == 0
        got = vx.load(tmp_path / out)
        want = nib.load(p).get_fdata()
        step = float(np.ptp(want)) / 2**15  # int16 with one slope for all volumes
        np.testing.assert_allclose(np.asanyarray(got.dataobj), want, rtol=0, atol=step)
        np.testing.assert_allclose(got.affine, nib.load(p).affine, atol=1e-5)


# -- bad files -------------------------------------------------------------------------------


def test_truncated_and_missing_files(tmp_path):
    arr = _values((8, 8, 4, 3), np.int16)
    p = write_afni(tmp_path / "t+orig", arr, factors=[1.0, 2.0, 3.0])
    brik = p.replace(".HEAD", ".BRIK")
    data = Path(brik).read_bytes()
    with open(brik, "wb") as f:
        f.write(data[:-10])
    with pytest.raises(vx.TruncatedFileError, match=r"t\+orig\.BRIK"):
        vx.load(p)
    gzp = write_afni(tmp_path / "tg+orig", arr, gz=True)
    gzb = gzp.replace(".HEAD", ".BRIK.gz")
    blob = Path(gzb).read_bytes()
    with open(gzb, "wb") as f:
        f.write(blob[: len(blob) // 2])
    img = vx.load(gzp)  # the end of a gzip stream is found when it is read
    with pytest.raises(vx.VoxrayError):
        np.asanyarray(img.dataobj)
    os.remove(brik)
    with pytest.raises(vx.ImageNotFoundError, match="BRIK is missing"):
        vx.load(p)
    write_afni(tmp_path / "h+orig", arr, head=False)
    with pytest.raises(vx.ImageNotFoundError, match="HEAD"):
        vx.load(tmp_path / "h+orig.BRIK")
    with pytest.raises(vx.ImageNotFoundError):
        vx.load(tmp_path / "nothing+orig.HEAD")


def test_corrupted_headers(tmp_path):
    arr = _values((4, 4, 4, 2), np.int16)
    p = write_afni(tmp_path / "c+orig", arr)
    text = Path(p).read_text()
    cases = {
        "binary": b"\x00\xff\xfe" * 100,
        "cut": text[: len(text) // 2].encode(),
        "no-dims": text.replace("DATASET_DIMENSIONS", "DATASET_DIMENSIONZ").encode(),
        "bad-type": text.replace(
            "BRICK_TYPES\ncount = 2\n 1 1", "BRICK_TYPES\ncount = 2\n 7 7"
        ).encode(),
        "bad-number": text.replace(" -2.0 -2.5 3.0", " -2.0 x 3.0").encode(),
        "negative": text.replace(" 4 4 4 0 0", " 4 -4 4 0 0").encode(),
        "short-affine": text.replace("count = 12", "count = 11")
        .replace(" 30.0 0", " 0", 1)
        .encode(),
        "empty": b"",
    }
    for name, blob in cases.items():
        shutil.copy(p.replace(".HEAD", ".BRIK"), tmp_path / f"{name}+orig.BRIK")
        (tmp_path / f"{name}+orig.HEAD").write_bytes(blob)
        with pytest.raises(vx.VoxrayError) as err:
            vx.load(tmp_path / f"{name}+orig.HEAD")
        assert f"{name}+orig.HEAD" in str(err.value), name
    with pytest.raises(vx.UnsupportedDataTypeError):
        vx.load(tmp_path / "bad-type+orig.HEAD")


# -- nibabel's own AFNI tests, on voxray's class ---------------------------------------------


class TestVoxrayAFNIAPI(nib_image_api.TestAFNIAPI):
    loader = AFNIImage.load
    klass = image_maker = AFNIImage


class TestVoxrayAFNIImage(nib_brikhead.TestAFNIImage):
    module = SimpleNamespace(load=vx.load)

    def test_array_proxy_slicing(self):
        # nibabel's test as it is, on every 16th of its 16,125 + 9,470 slices (all of
        # them take minutes; the hypothesis tests above draw further ones)
        for tp in self.test_files:
            img = self.module.load(tp["fname"])
            arr = img.get_fdata()
            prox = img.dataobj
            assert prox.is_proxy
            for sliceobj in list(slicer_samples(img.shape))[::16]:
                np.testing.assert_array_equal(arr[sliceobj], prox[sliceobj])


class TestVoxrayAFNIBadFiles(nib_brikhead.TestBadFiles):
    module = SimpleNamespace(load=vx.load)
