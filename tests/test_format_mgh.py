"""FreeSurfer MGH/MGZ against nibabel: reading (lazy, by ranges, through the gzip index, by
URL, from file objects), the footer, writing (bytes identical to nibabel's), conversions,
the derived views, process clusters, bad files, and nibabel's own MGH image API tests."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import shutil

import nibabel as nib
import nibabel.tests.test_image_api as nib_image_api
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxray as vx
from voxray.formats import for_header_bytes
from voxray.formats.mgh import MGH, MGHDataTypeError, MGHImage
from voxray.formats.mgh.header import looks_like_mgh
from voxray.sources import clear_cache, open_source
from voxray.testing import NIBABEL_DATA
from voxray.testing.checks import check_slicer
from voxray.testing.strategies import basic_index, spatial_slices
from voxray.writers.values import WriteError

TEST_MGZ = NIBABEL_DATA / "test.mgz"
DTYPES = (np.uint8, np.int16, np.uint16, np.int32, np.float32)


def _affine():
    aff = np.array([[-1.5, 0.1, 0, 40], [0, 0.2, 1.8, -30], [0.05, -2.0, 0.1, 25], [0, 0, 0, 1]])
    return aff


def _values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return rng.normal(100, 30, shape).astype(dtype)
    return rng.integers(max(info.min, -30000), min(info.max, 30000), shape).astype(dtype)


def write_mgh(path, arr, *, footer=True, tags=b"", tr=2000.0, te=30.0, ti=0.0, flip=0.3):
    """An MGH/MGZ file as nibabel writes it, then without its footer or with tags after it."""
    img = nib.MGHImage(arr, _affine())
    img.header["tr"], img.header["te"], img.header["ti"] = tr, te, ti
    img.header["flip_angle"], img.header["fov"] = flip, 256.0
    buf = io.BytesIO()
    img.to_file_map({"image": nib.FileHolder(fileobj=buf)})
    data = buf.getvalue()
    if not footer:
        data = data[: 284 + arr.nbytes]
    data += tags
    path = str(path)
    if path.endswith(".mgz") or path.endswith(".gz"):
        data = gzip.compress(data, 1)
    with open(path, "wb") as f:
        f.write(data)
    return path


#: FreeSurfer tags: (int32 tag, int64 length, bytes), as after a recon-all volume's footer.
TAGS = (
    np.array([3], ">i4").tobytes()
    + np.array([24], ">i8").tobytes()
    + b"xform talairach.xfm\x00\x00\x00\x00\x00"
)


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _gunzip(path, n: int = -1) -> bytes:
    with gzip.open(path) as f:
        return f.read(n)


def assert_same_as_nibabel(v, n):
    assert isinstance(v, nib.MGHImage) and isinstance(v, MGHImage)
    assert v.shape == n.shape
    assert v.get_data_dtype() == n.get_data_dtype()
    assert v.header.binaryblock == n.header.binaryblock  # footer included
    np.testing.assert_array_equal(v.affine, n.affine)
    got, ref = np.asanyarray(v.dataobj), np.asanyarray(n.dataobj)
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(v.get_fdata(), n.get_fdata())
    for field in ("tr", "flip_angle", "te", "ti", "fov"):
        assert v.header[field] == n.header[field]
    assert v.header.get_zooms() == n.header.get_zooms()


# -- reading ------------------------------------------------------------------------------


def test_nibabel_test_mgz():
    v, n = vx.load(TEST_MGZ), nib.load(TEST_MGZ)
    assert type(v) is MGHImage and not v.in_memory
    assert_same_as_nibabel(v, n)
    assert float(v.header["tr"]) == 2.0 and float(v.header["fov"]) == 3.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 6, 7), (4, 5, 6, 3)])
@pytest.mark.parametrize("suffix", [".mgh", ".mgz"])
@pytest.mark.parametrize("tail", ["footer", "no-footer", "tags"])
def test_generated_files_match_nibabel(tmp_path, dtype, shape, suffix, tail):
    arr = _values(shape, dtype)
    p = write_mgh(
        tmp_path / f"x{suffix}",
        arr,
        footer=tail != "no-footer",
        tags=TAGS if tail == "tags" else b"",
    )
    v, n = vx.load(p), nib.load(p)
    assert_same_as_nibabel(v, n)
    if tail == "no-footer":
        assert float(v.header["tr"]) == 0.0
    else:
        assert float(v.header["tr"]) == 2000.0 and float(v.header["te"]) == 30.0


def test_suffixless_files_open_by_their_first_bytes(tmp_path):
    arr = _values((4, 5, 6, 2), np.int16)
    plain = write_mgh(tmp_path / "a.mgh", arr)
    gz = write_mgh(tmp_path / "b.mgz", arr)
    shutil.copy(plain, tmp_path / "plain")
    shutil.copy(gz, tmp_path / "zipped")
    for name in ("plain", "zipped"):
        v = vx.load(tmp_path / name)
        assert_same_as_nibabel(v, nib.load(plain))


def test_sniffing_claims_mgh_and_not_nifti(corpus):
    raw = _gunzip(TEST_MGZ, 1024)
    assert looks_like_mgh(raw) and MGH.sniff(raw)
    assert for_header_bytes(raw) is MGH
    for e in corpus.values():
        if not os.path.isfile(e.path):
            continue
        with open(e.path, "rb") as f:
            head = f.read(1024)
        if head[:2] == b"\x1f\x8b":
            head = _gunzip(e.path, 1024)
        assert not MGH.sniff(head), e.name
    assert not looks_like_mgh(b"\x00\x00\x00\x01" + b"\x00" * 40)  # zero dims


def test_load_reads_only_the_header_and_footer(tmp_path):
    arr = _values((32, 32, 16, 8), np.int16)
    p = write_mgh(tmp_path / "x.mgh", arr)
    img = vx.load(p)
    s = open_source(img.dataobj.reader.source).stats
    assert s.bytes_read <= 284 + 20 + 4  # the magic sniff, the header, the footer
    assert img.dataobj.reader.layout.offset == 284
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., 5], arr[..., 5])
    assert s.bytes_read == arr[..., 5].nbytes


def test_one_volume_of_an_indexed_mgz_inflates_one_spacing_plus_the_volume(tmp_path, fresh_cache):
    arr = _values((64, 64, 32, 12), np.int16)  # 256 KiB volumes, 3 MiB
    p = write_mgh(tmp_path / "x.mgz", arr)
    vx.load(p)  # the footer read indexes the whole stream (as nibabel's load inflates it)
    from voxray.sources import flush_index_writes

    flush_index_writes()
    clear_cache()  # a fresh process: only the stored index is shared
    img = vx.load(p)
    src = open_source(img.dataobj.reader.source)
    assert src.index.complete
    s = src.stats
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., 7], arr[..., 7])
    idx = src.index
    spacing = int(np.diff(np.asarray(idx.out)).max(initial=idx.spacing))
    assert s.bytes_inflated <= spacing + arr[..., 7].nbytes
    assert s.bytes_read < os.path.getsize(p) / 2


def test_written_mgz_opens_without_a_pass(tmp_path, monkeypatch):
    arr = _values((64, 64, 40, 12), np.int16)
    out = tmp_path / "out.mgz"
    vx.save(vx.load(write_mgh(tmp_path / "src.mgh", arr)), out)
    monkeypatch.setenv("VOXRAY_CACHE_DIR", str(tmp_path / "empty-cache"))
    clear_cache()
    img = vx.load(out)
    s = open_source(img.dataobj.reader.source).stats
    assert s.bytes_inflated <= 4 * 2**20 + 284 + 20  # the footer's member, not the stream
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., -1], arr[..., -1])
    assert s.bytes_inflated <= 4 * 2**20 + arr[..., -1].nbytes
    assert not (tmp_path / "empty-cache").exists()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slices_match_nibabel(mgh_pair, data):
    for p in mgh_pair:
        v, n = _loaded(p)
        key = data.draw(basic_index(v.shape), label="key")
        # nibabel's whole-array read is the values oracle (nibabel's proxy gets some
        # out-of-range negative stops wrong: [..., :-5] of 4 frames gives 3 of them)
        ref = np.asanyarray(n.dataobj)[key]
        if np.ndim(ref) == 0:  # a 0-d memmap keeps '>i2'; nibabel's proxy gives the scalar
            ref = n.dataobj[key]  # (np.int16), as voxray does
        got = v.dataobj[key]
        assert np.asarray(got).dtype == np.asarray(ref).dtype
        np.testing.assert_array_equal(got, ref)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slicer_keeps_world_positions(mgh_pair, data):
    v, n = _loaded(mgh_pair[1])
    key = data.draw(spatial_slices(v.shape), label="key")
    try:
        v.slicer[key]
    except IndexError:
        return
    check_slicer(v, np.asanyarray(n.dataobj), key)


_CACHE: dict = {}


def _loaded(p):
    if p not in _CACHE:
        _CACHE[p] = (vx.load(p), nib.load(p))
    return _CACHE[p]


@pytest.fixture(scope="module")
def mgh_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("mgh")
    arr = _values((6, 5, 7, 4), np.int16, seed=3)
    return write_mgh(d / "h.mgh", arr), write_mgh(d / "z.mgz", arr, tags=TAGS)


def test_derived_views_are_lazy_and_match_nibabel(mgh_pair):
    for p in mgh_pair:
        v, n = vx.load(p), nib.load(p)
        x = v.to_dask()
        np.testing.assert_array_equal(x.compute(), np.asanyarray(n.dataobj))
        graph = pickle.dumps(dict(v.to_dask(chunks={3: 1}).__dask_graph__()))
        assert len(graph) < 20_000  # plain values (path, offsets, dtype), no data or handles
        assert nib.imageclasses.spatial_axes_first(v)  # nibabel.processing takes it
        c, nc = vx.as_closest_canonical(v), nib.as_closest_canonical(n)
        assert isinstance(c, MGHImage) and not c.in_memory
        np.testing.assert_array_equal(c.affine, nc.affine)
        np.testing.assert_array_equal(np.asanyarray(c.dataobj), np.asanyarray(nc.dataobj))
        s = v.slicer[1:5, ::2, 3:]
        np.testing.assert_array_equal(s.affine, n.slicer[1:5, ::2, 3:].affine)
        np.testing.assert_array_equal(
            np.asanyarray(s.dataobj), np.asanyarray(n.dataobj)[1:5, ::2, 3:]
        )
        assert not v.in_memory


def test_to_xarray_has_voxel_dims_world_coordinates_and_time(mgh_pair):
    v = vx.load(mgh_pair[1])
    da = v.to_xarray()
    assert da.dims == ("i", "j", "k", "t") and da.name == "z"
    ijk = np.array([2, 3, 4, 1.0])
    xyz = v.affine @ ijk
    point = da.isel(i=2, j=3, k=4)
    np.testing.assert_allclose([float(point[c]) for c in "xyz"], xyz[:3], atol=1e-9)
    np.testing.assert_allclose(da["t"].values, np.arange(4) * 2.0)  # TR 2000 ms
    assert da["t"].attrs["units"] == "s"
    np.testing.assert_array_equal(da.values, np.asanyarray(nib.load(mgh_pair[1]).dataobj))


def test_file_objects_and_bytes(mgh_pair):
    n = nib.load(mgh_pair[0])
    raw = _read(mgh_pair[0])
    v = MGHImage.from_bytes(raw)
    assert_same_as_nibabel(v, n)
    assert v.to_bytes() == n.to_bytes() == raw
    fm = {"image": nib.FileHolder(fileobj=io.BytesIO(raw))}
    assert_same_as_nibabel(MGHImage.from_file_map(fm), n)
    assert_same_as_nibabel(pickle.loads(pickle.dumps(vx.load(mgh_pair[1]))), nib.load(mgh_pair[1]))


def test_remote_mgh_and_mgz_read_one_frame_by_ranges(tmp_path):
    from voxray.testing.httpserver import RangeServer

    # 256 KiB frames, 16 MiB: voxray's .mgz holds 4 gzip members of 4 MiB
    arr = np.random.default_rng(0).integers(0, 64, (64, 64, 32, 64)).astype(np.int16)
    write_mgh(tmp_path / "x.mgh", arr)
    vx.save(vx.load(tmp_path / "x.mgh"), tmp_path / "x.mgz")
    with RangeServer(tmp_path) as server:
        for name in ("x.mgh", "x.mgz"):
            before = server.bytes_sent
            img = vx.load(server.url(name))
            assert img.header.binaryblock == nib.load(tmp_path / name).header.binaryblock
            opened = server.bytes_sent - before
            assert opened <= 4 * 64 * 1024 + 2**16  # header, footer (and the trailer index)
            np.testing.assert_array_equal(img.dataobj[..., 60], arr[..., 60])
            sent = server.bytes_sent - before
            # .mgh: the frame's byte range; .mgz: the one member that holds it
            limit = (
                2 * arr[..., 60].nbytes
                if name == "x.mgh"
                else os.path.getsize(tmp_path / name) / 2
            )
            assert sent < limit, (name, sent)


@pytest.mark.slow
def test_process_cluster(tmp_path):
    from dask.distributed import Client, LocalCluster

    arr = _values((16, 16, 8, 6), np.int16)
    paths = [write_mgh(tmp_path / "x.mgh", arr), write_mgh(tmp_path / "x.mgz", arr)]
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for p in paths:
            x = vx.load(p, chunks={3: 1}).to_dask()
            pickle.dumps(x.__dask_graph__())
            mean = client.compute(x.mean(axis=3)).result()
            np.testing.assert_allclose(mean, arr.mean(axis=3))
            # writing with a client: dask tasks write regions / compress members
            out = str(tmp_path / ("out" + p[-4:]))
            vx.save(vx.load(p, chunks={3: 1}), out)
            np.testing.assert_array_equal(np.asanyarray(nib.load(out).dataobj), arr)


# -- writing ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 6, 7), (4, 5, 6, 3)])
def test_in_memory_save_gives_nibabels_bytes(tmp_path, dtype, shape):
    arr = _values(shape, dtype, seed=1)
    v, n = MGHImage(arr, _affine()), nib.MGHImage(arr, _affine())
    for img in (v, n):
        img.header["tr"], img.header["te"] = 1500.0, 25.0
    vx.save(v, tmp_path / "v.mgh")
    nib.save(n, tmp_path / "n.mgh")
    assert (tmp_path / "v.mgh").read_bytes() == (tmp_path / "n.mgh").read_bytes()
    vx.save(v, tmp_path / "v.mgz")
    nib.save(n, tmp_path / "n.mgz")
    assert _gunzip(tmp_path / "v.mgz") == _gunzip(tmp_path / "n.mgz")
    assert_same_as_nibabel(vx.load(tmp_path / "v.mgz"), nib.load(tmp_path / "n.mgz"))
    assert v.to_bytes() == n.to_bytes()


@pytest.mark.parametrize("suffix", [".mgh", ".mgz"])
def test_lazy_image_is_saved_out_of_core(tmp_path, monkeypatch, suffix):
    arr = _values((64, 64, 20, 10), np.float32)
    src = write_mgh(tmp_path / f"src{suffix}", arr, tags=TAGS)
    img = vx.load(src)

    def whole_read(*args, **kwargs):
        raise AssertionError("the writer read the whole array at once")

    monkeypatch.setattr(vx.ArrayProxy, "__array__", whole_read)
    img.to_filename(tmp_path / f"out{suffix}")
    assert img.get_filename() == str(tmp_path / f"out{suffix}")  # as nibabel's to_filename
    nib.save(img, tmp_path / f"nib{suffix}")  # nibabel's save takes voxray's path
    vx.save(img, tmp_path / "conv.nii.gz")
    nib.save(img, tmp_path / "nibconv.nii.gz")  # nibabel's conversion takes voxray's path
    monkeypatch.undo()
    for name in ("conv.nii.gz", "nibconv.nii.gz"):
        conv = nib.load(tmp_path / name)
        assert type(conv) is nib.Nifti1Image
        np.testing.assert_array_equal(np.asanyarray(conv.dataobj), arr)
        np.testing.assert_allclose(conv.affine, img.affine, atol=1e-5)
    ref = nib.load(src)
    for name in (f"out{suffix}", f"nib{suffix}"):
        back = nib.load(tmp_path / name)
        assert back.header.binaryblock == ref.header.binaryblock
        np.testing.assert_array_equal(np.asanyarray(back.dataobj), arr)
    # the bytes are nibabel's bytes (tags are not written, as nibabel writes none)
    nib.save(ref, tmp_path / f"ref{suffix}")
    read = _gunzip if suffix == ".mgz" else _read
    assert read(tmp_path / f"out{suffix}") == read(tmp_path / f"ref{suffix}")
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # atomic


def test_refuses_to_overwrite_its_source(tmp_path):
    p = write_mgh(tmp_path / "x.mgz", _values((4, 5, 6), np.int16))
    img = vx.load(p)
    with pytest.raises(vx.VoxrayError, match="refusing to overwrite"):
        vx.save(img, p)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), np.asanyarray(nib.load(p).dataobj))


def test_dtypes_mgh_cannot_store_are_refused(tmp_path):
    with pytest.raises(MGHDataTypeError, match="MGH"):
        MGHImage(np.zeros((2, 3, 4), np.float64), np.eye(4))
    with pytest.raises(nib.freesurfer.mghformat.MGHError):  # also nibabel's error
        MGHImage(np.zeros((2, 3, 4), np.int8), np.eye(4))
    img = vx.load(write_mgh(tmp_path / "x.mgh", _values((4, 5, 6), np.int16)))
    with pytest.raises(vx.VoxrayError, match="MGH"):
        img.set_data_dtype(np.float64)
    with pytest.raises(WriteError, match=r"x2\.mgz"):
        vx.save(img, tmp_path / "x2.mgz", dtype=np.complex64)
    vx.save(img, tmp_path / "x3.mgz", dtype=np.int32)  # a type MGH keeps: converted
    back = nib.load(tmp_path / "x3.mgz")
    assert back.get_data_dtype() == np.dtype(">i4")
    np.testing.assert_array_equal(back.get_fdata(), img.get_fdata())
    five = vx.Image(np.zeros((2, 2, 2, 2, 2), np.float32), np.eye(4))
    with pytest.raises(WriteError, match="3-D and 4-D"):
        vx.save(five, tmp_path / "five.mgz")


# -- conversions --------------------------------------------------------------------------


def test_mgz_to_nifti_and_back_like_nibabel(tmp_path):
    arr = _values((6, 7, 8, 3), np.int16)
    p = write_mgh(tmp_path / "x.mgz", arr)
    v, n = vx.load(p), nib.load(p)
    vx.save(v, tmp_path / "v.nii.gz")
    nib.save(nib.Nifti1Image(np.asanyarray(n.dataobj), n.affine, n.header), tmp_path / "n.nii.gz")
    vn, nn = nib.load(tmp_path / "v.nii.gz"), nib.load(tmp_path / "n.nii.gz")
    assert vn.get_data_dtype() == nn.get_data_dtype()
    np.testing.assert_allclose(vn.affine, nn.affine, atol=1e-6)
    np.testing.assert_allclose(vn.affine, n.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(vn.dataobj), np.asanyarray(nn.dataobj))
    assert vn.header.get_zooms() == nn.header.get_zooms()
    # and NIfTI to MGZ: nibabel's conversion (a new MGH header: float32)
    vx.save(vx.load(tmp_path / "v.nii.gz"), tmp_path / "back.mgz")
    nib.save(nn, tmp_path / "nback.mgz")
    vb, nb = vx.load(tmp_path / "back.mgz"), nib.load(tmp_path / "nback.mgz")
    assert type(vb) is MGHImage
    assert vb.get_data_dtype() == nb.get_data_dtype()
    np.testing.assert_allclose(vb.affine, nb.affine, atol=1e-6)
    np.testing.assert_allclose(vb.affine, n.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asanyarray(vb.dataobj), np.asanyarray(nb.dataobj))
    assert _gunzip(tmp_path / "back.mgz") == _gunzip(tmp_path / "nback.mgz")


def test_mgz_to_nifti_zarr_and_back(tmp_path):
    arr = _values((6, 7, 8, 3), np.float32)
    p = write_mgh(tmp_path / "x.mgz", arr)
    v = vx.load(p)
    vx.to_zarr(v, str(tmp_path / "x.nii.zarr"))
    z = vx.load(str(tmp_path / "x.nii.zarr"))
    np.testing.assert_allclose(z.affine, v.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(z.dataobj), arr)
    vx.save(z, tmp_path / "back.mgz")
    b = nib.load(tmp_path / "back.mgz")
    np.testing.assert_allclose(b.affine, v.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asanyarray(b.dataobj), arr)
    assert b.get_data_dtype() == np.dtype(">f4")


def test_cli_info_and_convert(tmp_path, capsys):
    import json

    from voxray.cli import main

    arr = _values((6, 7, 8, 3), np.int16)
    p = write_mgh(tmp_path / "x.mgz", arr)
    n = nib.load(p)
    assert main(["info", "--json", p]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nibabel_class"] == "MGHImage" and info["shape"] == [6, 7, 8, 3]
    assert info["dtype_on_disk"] == ">i2"
    np.testing.assert_allclose(info["affine"], n.affine, atol=1e-6)
    assert main(["info", p]) == 0
    assert "MGH" in capsys.readouterr().out
    for dst in ("x.nii.gz", "x.nii.zarr", "back.mgh"):
        src = str(tmp_path / "x.nii.gz") if dst == "back.mgh" else p
        assert main(["convert", src, str(tmp_path / dst)]) == 0
        out = vx.load(tmp_path / dst)
        np.testing.assert_array_equal(np.asanyarray(out.dataobj), arr)
        np.testing.assert_allclose(out.affine, n.affine, atol=1e-4)


# -- bad files ----------------------------------------------------------------------------


def test_truncated_files(tmp_path):
    arr = _values((8, 8, 8, 4), np.int16)
    raw = _read(write_mgh(tmp_path / "ok.mgh", arr))
    cut = raw[: 284 + arr.nbytes // 2]
    (tmp_path / "cut.mgh").write_bytes(cut)
    (tmp_path / "cut.mgz").write_bytes(gzip.compress(cut))
    (tmp_path / "tiny.mgh").write_bytes(raw[:50])
    for name in ("cut.mgh", "cut.mgz"):
        with pytest.raises(vx.TruncatedFileError, match=re.escape(name)):
            vx.load(tmp_path / name)
    with pytest.raises(vx.NotAnImageError, match=r"tiny\.mgh"):
        vx.load(tmp_path / "tiny.mgh")
    # a gzip stream cut short: its bytes are corrupt, not merely short
    (tmp_path / "broken.mgz").write_bytes(gzip.compress(raw)[:-200])
    with pytest.raises(vx.VoxrayError, match=r"broken\.mgz"):
        vx.load(tmp_path / "broken.mgz")


def test_missing_empty_and_directory(tmp_path):
    with pytest.raises(vx.ImageNotFoundError, match="missing"):
        vx.load(tmp_path / "missing.mgz")
    (tmp_path / "empty.mgh").write_bytes(b"")
    with pytest.raises(vx.NotAnImageError, match="0 bytes"):
        vx.load(tmp_path / "empty.mgh")
    (tmp_path / "dir.mgz").mkdir()
    with pytest.raises(vx.NotAnImageError, match="directory"):
        vx.load(tmp_path / "dir.mgz")


def _patched(raw: bytes, offset: int, value, dtype=">i4") -> bytes:
    b = bytearray(raw)
    v = np.array(value, dtype).tobytes()
    b[offset : offset + len(v)] = v
    return bytes(b)


def test_corrupted_headers(tmp_path):
    raw = _read(write_mgh(tmp_path / "ok.mgh", _values((4, 5, 6), np.int16)))
    cases = {
        "version.mgh": (_patched(raw, 0, 2), vx.NotAnImageError, "version"),
        "dims.mgh": (_patched(raw, 4, [4, 0, 6, 1]), vx.InvalidHeaderError, "dimensions"),
        "negative.mgh": (_patched(raw, 4, [4, -5, 6, 1]), vx.InvalidHeaderError, "dimensions"),
        "type.mgh": (_patched(raw, 20, 7), vx.UnsupportedDataTypeError, "type code 7"),
        # lying dims: 2**31 voxels claimed; refused before anything is allocated
        "lying.mgh": (_patched(raw, 4, [2048, 2048, 512, 1]), vx.TruncatedFileError, "holds"),
    }
    for name, (data, err, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(err, match=match):
            vx.load(tmp_path / name)
        (tmp_path / (name[:-4] + ".mgz")).write_bytes(gzip.compress(data))
        with pytest.raises(err):
            vx.load(tmp_path / (name[:-4] + ".mgz"))
    with pytest.raises(vx.VoxrayError):
        MGHImage.from_bytes(_patched(raw, 20, 7))
    (tmp_path / "gz.mgh").write_bytes(gzip.compress(raw))  # gzip named .mgh: read as gzip
    assert_same_as_nibabel(vx.load(tmp_path / "gz.mgh"), nib.load(tmp_path / "ok.mgh"))


def test_good_ras_flag_zero_gets_nibabels_default_affine(tmp_path):
    raw = _read(write_mgh(tmp_path / "ok.mgh", _values((4, 5, 6, 2), np.uint8)))
    for suffix in (".mgh", ".mgz"):
        data = _patched(raw, 28, 0, ">i2")
        p = tmp_path / f"noras{suffix}"
        p.write_bytes(gzip.compress(data) if suffix == ".mgz" else data)
        v, n = vx.load(p), nib.load(p)
        assert_same_as_nibabel(v, n)
        assert int(v.header["goodRASFlag"]) == 1  # as nibabel: the default affine set


def test_shapes_mgh_cannot_hold_are_voxray_errors():
    with pytest.raises(vx.InvalidHeaderError, match="4 dimensional"):
        MGHImage(np.zeros((2, 2, 2, 2, 2), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="4,4"):  # still a ValueError, as nibabel's
        MGHImage(np.zeros((2, 2, 2), np.float32), np.eye(3))


# -- nibabel's own MGH image API tests ---------------------------------------------------


class TestVoxrayMGHAPI(nib_image_api.TestMGHAPI):
    """nibabel's MGH image validators (data interface, affine, header shape, dtypes, file
    maps, to/from bytes and streams) over ``vx.MGHImage`` array and proxy images."""

    klass = image_maker = MGHImage

    def validate_from_url(self, imaker, params):
        # nibabel's validate_from_url with a handler that answers every request (as in
        # tests/test_nibabel_api.py): voxray's from_url reads by ranges (a HEAD, then GETs)
        # where nibabel downloads the file in one request.
        server = self.httpserver
        img = imaker()
        img_bytes = img.to_bytes()
        server.clear_all_handlers()
        server.expect_request("/img").respond_with_data(img_bytes)
        rt_img = img.__class__.from_url(server.url_for("/img"))
        assert rt_img.to_bytes() == img_bytes
        assert self._header_eq(img.header, rt_img.header)
        assert np.array_equal(img.get_fdata(), rt_img.get_fdata())
