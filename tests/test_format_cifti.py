"""CIFTI-2 as a voxray format: nibabel is the oracle.

Every CIFTI-2 type nibabel's own tests build (``nibabel.cifti2.tests.test_new_cifti2``)
is saved with nibabel and loaded with voxray: same class family, shape, dtype,
values, XML header, NIfTI header and axes; the data is a voxray proxy and only
the bytes a selection needs are read (a row and a column of a sparse 2 GB dense
connectome cost exactly their bytes). Writing gives nibabel's bytes, stays out of
core, keeps the extension. nibabel's own Cifti2Image API tests run on voxray's class.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil

import nibabel as nib
import nibabel.cifti2.tests.test_cifti2 as nib_cifti2
import nibabel.cifti2.tests.test_new_cifti2 as nib_new
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel import cifti2 as ci
from nibabel.cifti2 import cifti2_axes as axes

import voxray as vx
from voxray.errors import InvalidHeaderError, NotAnImageError, TruncatedFileError, VoxrayError
from voxray.formats.cifti import CIFTI, Cifti2Image, NoAffineError, is_cifti_header
from voxray.proxy import ArrayProxy
from voxray.sources import open_source
from voxray.testing import NIBABEL_DATA
from voxray.testing.strategies import basic_index
from voxray.writers.values import WriteError

ROW_MAJOR = NIBABEL_DATA / "row_major.dconn.nii"


def _stats(img):
    return open_source(img.dataobj.reader.source).stats


# -- the CIFTI-2 types nibabel's tests build ---------------------------------------------

# suffix: (index maps, shape, intent)
TYPES = {
    "dtseries": ((nib_new.create_series_map, (0,)), (nib_new.create_geometry_map, (1,))),
    "dscalar": ((nib_new.create_scalar_map, (0,)), (nib_new.create_geometry_map, (1,))),
    "dlabel": ((nib_new.create_label_map, (0,)), (nib_new.create_geometry_map, (1,))),
    "dconn": ((nib_new.create_geometry_map, (0, 1)),),
    "ptseries": ((nib_new.create_series_map, (0,)), (nib_new.create_parcel_map, (1,))),
    "pscalar": ((nib_new.create_scalar_map, (0,)), (nib_new.create_parcel_map, (1,))),
    "pdconn": ((nib_new.create_geometry_map, (0,)), (nib_new.create_parcel_map, (1,))),
    "dpconn": ((nib_new.create_parcel_map, (0,)), (nib_new.create_geometry_map, (1,))),
    "plabel": ((nib_new.create_label_map, (0,)), (nib_new.create_parcel_map, (1,))),
    "pconn": ((nib_new.create_parcel_map, (0, 1)),),
    "pconnseries": ((nib_new.create_parcel_map, (0, 1)), (nib_new.create_series_map, (2,))),
    "pconnscalar": ((nib_new.create_parcel_map, (0, 1)), (nib_new.create_scalar_map, (2,))),
}
INTENTS = {
    "dtseries": "NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES",
    "dscalar": "NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS",
    "dlabel": "NIFTI_INTENT_CONNECTIVITY_DENSE_LABELS",
    "dconn": "NIFTI_INTENT_CONNECTIVITY_DENSE",
    "ptseries": "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SERIES",
    "pscalar": "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SCALAR",
    "pdconn": "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_DENSE",
    "dpconn": "NIFTI_INTENT_CONNECTIVITY_DENSE_PARCELLATED",
    "pconn": "NIFTI_INTENT_CONNECTIVITY_PARCELLATED",
    "pconnseries": "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_PARCELLATED_SERIES",
    "pconnscalar": "NIFTI_INTENT_CONNECTIVITY_PARCELLATED_PARCELLATED_SCALAR",
    # plabel: no intent, so nibabel writes "unknown CIFTI"
}


def cifti_header(kind: str) -> ci.Cifti2Header:
    matrix = ci.Cifti2Matrix()
    matrix.extend(make(dims) for make, dims in TYPES[kind])
    return ci.Cifti2Header(matrix)


def nib_image(kind: str, dtype=np.float32, seed: int = 0, klass=ci.Cifti2Image):
    hdr = cifti_header(kind)
    shape = hdr.matrix.get_data_shape()
    data = (np.random.default_rng(seed).standard_normal(shape) * 100).astype(dtype)
    img = klass(data, hdr)
    if kind in INTENTS:
        img.nifti_header.set_intent(INTENTS[kind])
    return img


def saved(tmp_path, kind: str, dtype=np.float32, **kw):
    path = tmp_path / f"test.{kind}.nii"
    img = nib_image(kind, dtype)
    for k, v in kw.items():
        getattr(img, k)(*v)
    ci.save(img, path)
    return path


def assert_same(vimg, nimg):
    """voxray's image equals nibabel's: class, shape, dtype, values, headers, axes."""
    assert type(vimg) is Cifti2Image
    assert isinstance(vimg, ci.Cifti2Image) and isinstance(vimg, vx.Image)
    assert vimg.shape == nimg.shape
    assert vimg.get_data_dtype() == nimg.get_data_dtype()
    got, want = np.asanyarray(vimg.dataobj), np.asanyarray(nimg.dataobj)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(vimg.get_fdata(), nimg.get_fdata())
    assert vimg.header.to_xml() == nimg.header.to_xml()
    assert vimg.nifti_header.binaryblock == nimg.nifti_header.binaryblock
    assert [
        (e.get_code(), e.get_content() if e.get_code() != 32 else None)
        for e in vimg.nifti_header.extensions
    ] == [
        (e.get_code(), e.get_content() if e.get_code() != 32 else None)
        for e in nimg.nifti_header.extensions
    ]
    for i in range(len(nimg.shape)):
        assert vimg.header.get_axis(i) == nimg.header.get_axis(i)


def assert_axis_sliced(got, ax, key: slice) -> None:
    """``got`` is CIFTI axis ``ax`` sliced by ``key``. nibabel's own ``SeriesAxis[a:b:s]``
    miscounts (``(b - a) // s`` points: ``[2:9:3]`` of 13 has 2, numpy has 3), so a series
    is checked against its times, indexed by numpy."""
    if isinstance(ax, axes.SeriesAxis):
        assert isinstance(got, axes.SeriesAxis) and got.unit == ax.unit
        np.testing.assert_allclose(got.time, ax.time[key])
    else:
        assert got == ax[key]


# -- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_every_cifti_type_matches_nibabel(tmp_path, kind):
    path = saved(tmp_path, kind)
    vimg, nimg = vx.load(path), nib.load(path)
    assert type(nimg) is ci.Cifti2Image
    assert isinstance(vimg.dataobj, ArrayProxy) and not vimg.in_memory
    assert vimg.provenance.format == "cifti"
    assert_same(vimg, nimg)
    # the class's own loaders, and nibabel's file-map route, give the same image
    assert_same(Cifti2Image.from_filename(path), nimg)
    assert_same(Cifti2Image.load(str(path)), nimg)
    assert_same(Cifti2Image.from_file_map(Cifti2Image.filespec_to_file_map(str(path))), nimg)


def test_nibabel_data_file_matches(tmp_path):
    vimg, nimg = vx.load(ROW_MAJOR), nib.load(ROW_MAJOR)
    assert "Cifti2Image" in repr(vimg) and "lazy" in repr(vimg)
    assert_same(vimg, nimg)
    assert vimg.get_filename() == str(ROW_MAJOR)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float64, ">f4"])
def test_dtypes_and_scaling_match(tmp_path, dtype):
    img = nib_image("dscalar", np.float32)
    img.set_data_dtype(dtype)  # ints: nibabel chooses a slope and intercept
    ci.save(img, tmp_path / "s.dscalar.nii")
    vimg, nimg = vx.load(tmp_path / "s.dscalar.nii"), nib.load(tmp_path / "s.dscalar.nii")
    assert_same(vimg, nimg)
    if np.dtype(dtype).kind in "iu":
        assert vimg.dataobj.slope != 1.0


def test_cifti_intent_wins_whatever_the_name(tmp_path):
    """nibabel tries Cifti2Image before Nifti2Image: a .nii with a CIFTI intent is CIFTI."""
    plain = tmp_path / "copy.nii"
    shutil.copy(ROW_MAJOR, plain)
    assert type(nib.load(plain)) is ci.Cifti2Image
    assert_same(vx.load(plain), nib.load(plain))
    # an unknown suffix: recognised by its first bytes (nibabel cannot open it)
    odd = tmp_path / "copy.dat"
    shutil.copy(ROW_MAJOR, odd)
    assert type(vx.load(odd)) is Cifti2Image
    assert CIFTI.sniff(ROW_MAJOR.read_bytes()[:1024])
    # an explicit class is obeyed, as nibabel's own loader is
    n2 = vx.Nifti2Image.from_filename(plain)
    assert type(n2) is vx.Nifti2Image and n2.shape == nib.Nifti2Image.from_filename(plain).shape


def test_gzipped_cifti_is_nifti2_as_in_nibabel(tmp_path):
    gz = tmp_path / "x.dconn.nii.gz"
    gz.write_bytes(gzip.compress(ROW_MAJOR.read_bytes()))
    nimg, vimg = nib.load(gz), vx.load(gz)
    assert type(nimg) is nib.Nifti2Image and type(vimg) is vx.Nifti2Image
    np.testing.assert_array_equal(np.asanyarray(vimg.dataobj), np.asanyarray(nimg.dataobj))


def test_gzip_bytes_in_a_cifti_name_are_read_through_the_seek_index(tmp_path):
    # nibabel cannot read this (its CIFTI opener takes no compression); voxray detects
    # gzip by its magic and reads the same values as nibabel reads from the plain file.
    path = tmp_path / "z.dconn.nii"
    path.write_bytes(gzip.compress(ROW_MAJOR.read_bytes()))
    vimg = vx.load(path)
    assert vimg.dataobj.reader.source.compression == "gzip"
    assert_same(vimg, nib.load(ROW_MAJOR))


def test_cifti_suffix_on_a_plain_nifti_file_is_nifti(tmp_path):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for klass, vklass in ((nib.Nifti2Image, vx.Nifti2Image), (nib.Nifti1Image, vx.Nifti1Image)):
        path = tmp_path / f"plain{klass.__name__}.dscalar.nii"
        nib.save(klass(arr, np.eye(4)), path)
        assert type(nib.load(path)) is klass
        img = vx.load(path)
        assert type(img) is vklass
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), arr)
        with pytest.raises(VoxrayError, match="plain"):
            Cifti2Image.from_filename(path)


def test_file_objects_and_bytes(tmp_path):
    raw = ROW_MAJOR.read_bytes()
    img = Cifti2Image.from_bytes(raw)
    assert_same(img, nib.load(ROW_MAJOR))
    assert img.to_bytes() == nib.load(ROW_MAJOR).to_bytes()
    fm = Cifti2Image.make_file_map({"image": io.BytesIO(raw)})
    assert_same(Cifti2Image.from_file_map(fm), nib.load(ROW_MAJOR))


def test_remote_url_reads_by_ranges(tmp_path):
    from voxray.testing.httpserver import RangeServer

    path = saved(tmp_path, "dtseries")
    with RangeServer(tmp_path) as server:
        url = server.url(path.name)
        img = vx.load(url)
        assert_same(img, nib.load(path))
        assert_same(Cifti2Image.from_url(url), nib.load(path))
        # a plain .nii name: the NIfTI format reads the header by ranges and hands it over
        shutil.copy(path, tmp_path / "plain.nii")
        assert_same(vx.load(server.url("plain.nii")), nib.load(path))


# -- hypothesis slices ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_shapes(tmp_path_factory):
    """A dense connectome of an awkward shape (scaled int16) and a 3-D pconnseries."""
    d = tmp_path_factory.mktemp("cifti-slices")
    models = axes.BrainModelAxis.from_surface(np.arange(37), 40, "CortexLeft")
    cols = axes.BrainModelAxis.from_surface(np.arange(23), 30, "CortexRight")
    data = np.random.default_rng(1).standard_normal((37, 23)).astype(np.float32)
    img = ci.Cifti2Image(data, (models, cols))
    img.set_data_dtype(np.int16)
    ci.save(img, d / "odd.dconn.nii")
    ci.save(nib_image("pconnseries", np.float64), d / "p.pconnseries.nii")
    return [d / "odd.dconn.nii", d / "p.pconnseries.nii"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slices_match_nibabel(odd_shapes, data):
    path = data.draw(st.sampled_from(odd_shapes))
    vimg, nimg = vx.load(path), nib.load(path)
    key = data.draw(basic_index(nimg.shape))
    # nibabel's whole array, indexed by numpy (nibabel's own proxy miscounts some negative
    # stops of a reshaped proxy: dataobj[:, :-5] of a 4-long axis has 3 elements there)
    got, want = vimg.dataobj[key], np.asanyarray(nimg.dataobj)[key]
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slicer_slices_data_and_axes(odd_shapes, data):
    path = data.draw(st.sampled_from(odd_shapes))
    vimg, nimg = vx.load(path), nib.load(path)
    step = st.none() | st.integers(1, 3)
    key = tuple(slice(data.draw(st.integers(0, n - 1)), None, data.draw(step)) for n in nimg.shape)
    sub = vimg.slicer[key]
    assert type(sub) is Cifti2Image and not sub.in_memory
    np.testing.assert_array_equal(np.asanyarray(sub.dataobj), np.asanyarray(nimg.dataobj)[key])
    for i, k in enumerate(key):
        assert_axis_sliced(sub.header.get_axis(i), nimg.header.get_axis(i), k)
    assert sub.shape == sub.header.matrix.get_data_shape()


def test_slicer_reverses_series_and_refuses_what_drops_an_axis(tmp_path):
    vimg = vx.load(saved(tmp_path, "dtseries"))
    sub = vimg.slicer[::-2, 1:4]
    series = vimg.header.get_axis(0)
    np.testing.assert_allclose(sub.header.get_axis(0).time, series.time[::-2])
    np.testing.assert_array_equal(
        np.asanyarray(sub.dataobj), np.asanyarray(vimg.dataobj)[::-2, 1:4]
    )
    for bad in ((0, slice(None)), (None, slice(None)), (slice(5, 5),)):
        with pytest.raises(IndexError):
            vimg.slicer[bad]
    with pytest.raises(ValueError):
        vimg.slicer[::0]


# -- xarray --------------------------------------------------------------------------------


def test_to_xarray_dtseries_dims_and_coords(tmp_path):
    path = saved(tmp_path, "dtseries")
    nimg = nib.load(path)
    da = vx.load(path).to_xarray()
    assert da.dims == ("time", "grayordinate")
    assert da.name == "test"
    assert type(da.data).__module__.startswith("dask")
    np.testing.assert_array_equal(da.values, np.asanyarray(nimg.dataobj))
    series = nimg.header.get_axis(0)
    # 18.2 and 10.5 ms steps (series_exponent -3), in seconds
    np.testing.assert_allclose(da["time"].values, 18.2e-3 + 10.5e-3 * np.arange(13))
    assert da["time"].attrs["units"] == "s"
    np.testing.assert_allclose(da["time"].values, series.time)
    bm = nimg.header.get_axis(1)
    np.testing.assert_array_equal(da["structure"].values, bm.name)
    np.testing.assert_array_equal(da["vertex"].values, bm.vertex)
    for c, letter in enumerate("ijk"):
        np.testing.assert_array_equal(da[f"voxel_{letter}"].values, bm.voxel[:, c])
    vox = bm.volume_mask
    xyz = nib.affines.apply_affine(bm.affine, bm.voxel[vox])
    for c, letter in enumerate("xyz"):
        np.testing.assert_allclose(da[letter].values[vox], xyz[:, c])
        assert np.isnan(da[letter].values[~vox]).all()
    assert da.attrs["intent"] == "ConnDenseSeries"
    assert da.attrs["volume_shape"] == list(bm.volume_shape)
    # xarray selection on the CIFTI coordinates
    left = da.where(da["structure"] == "CIFTI_STRUCTURE_CORTEX_LEFT", drop=True)
    assert left.sizes["grayordinate"] == 5


@pytest.mark.parametrize(
    ("kind", "dims"),
    [
        ("dconn", ("grayordinate_row", "grayordinate_col")),
        ("dscalar", ("scalar", "grayordinate")),
        ("dlabel", ("label", "grayordinate")),
        ("ptseries", ("time", "parcel")),
        ("pconn", ("parcel_row", "parcel_col")),
        ("pconnscalar", ("parcel_row", "parcel_col", "scalar")),
    ],
)
def test_to_xarray_dims_follow_the_axes(tmp_path, kind, dims):
    path = saved(tmp_path, kind)
    nimg = nib.load(path)
    da = vx.load(path).to_xarray()
    assert da.dims == dims
    np.testing.assert_array_equal(da.values, np.asanyarray(nimg.dataobj))
    for i, dim in enumerate(dims):
        ax = nimg.header.get_axis(i)
        if isinstance(ax, axes.ParcelsAxis | axes.ScalarAxis):
            np.testing.assert_array_equal(da[dim].values, ax.name)
        if isinstance(ax, axes.BrainModelAxis):
            suffix = dim.removeprefix("grayordinate")
            np.testing.assert_array_equal(da["structure" + suffix].values, ax.name)
    if kind == "dlabel":
        ax = nimg.header.get_axis(0)
        tables = da.attrs["label_tables"]
        assert [sorted(t) for t in tables] == [sorted(t) for t in ax.label]
        assert tables[0][1][0] == ax.label[0][1][0]


# -- the 2 GB dense connectome: one row, one column, exactly their bytes ------------------


def test_sparse_2gb_dconn_row_and_column_read_only_their_bytes(tmp_path):
    n = 23_200  # 23,200^2 float32 = 2.15 GB (> 2**31 bytes: offsets past 32 bits)
    models = axes.BrainModelAxis.from_surface(np.arange(n), n, "CortexLeft")
    hdr = ci.Cifti2Header.from_axes((models, models))
    # nibabel's own header and extension bytes, over a tiny stand-in array
    tiny = ci.Cifti2Image(np.zeros((1, 1), np.float32), hdr)
    nhdr = tiny.nifti_header
    nhdr.extensions.append(ci.Cifti2Extension.from_bytes(hdr.to_xml()))
    nhdr.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE")
    nhdr.set_data_shape((1, 1, 1, 1, n, n))
    nhdr.set_data_dtype(np.float32)
    nhdr["pixdim"][:4] = 1
    path = tmp_path / "big.dconn.nii"
    with open(path, "wb") as f:
        nhdr.write_to(f)
    offset = int(nhdr.get_data_offset())
    os.truncate(path, offset + n * n * 4)
    assert os.path.getsize(path) > 2 * 2**30
    rng = np.random.default_rng(2)
    r, c = 12_345, 20_001
    row = rng.standard_normal(n).astype(np.float32)
    col = rng.standard_normal(n).astype(np.float32)
    fd = os.open(path, os.O_WRONLY)
    try:  # Fortran order: column c is contiguous, row r is one value per column
        os.pwrite(fd, col.tobytes(), offset + c * n * 4)
        for j in range(n):
            os.pwrite(fd, row[j : j + 1].tobytes(), offset + (j * n + r) * 4)
    finally:
        os.close(fd)

    img = vx.load(path)
    assert img.shape == (n, n)
    s = _stats(img)
    header_bytes = s.bytes_read
    assert header_bytes <= offset + 2048  # the magic, the sniffs, the header and extension
    got_row = img.dataobj[r, :]
    assert s.bytes_read - header_bytes == n * 4  # one row of bytes, nothing else
    before = s.bytes_read
    got_col = img.dataobj[:, c]
    assert s.bytes_read - before == n * 4
    ref = nib.load(path)
    want_row, want_col = ref.dataobj[r, :], ref.dataobj[:, c]
    np.testing.assert_array_equal(got_row, want_row)
    np.testing.assert_array_equal(got_col, want_col)
    expect_col = col.copy()
    expect_col[r] = row[c]  # the row was written last: (r, c) holds the row's value
    np.testing.assert_array_equal(got_row, row)
    np.testing.assert_array_equal(got_col, expect_col)
    # through the lazy slicer and dask: still one row
    before = s.bytes_read
    np.testing.assert_array_equal(np.asanyarray(img.slicer[r : r + 1].dataobj)[0], want_row)
    assert s.bytes_read - before == n * 4
    before = s.bytes_read
    np.testing.assert_array_equal(img.to_dask()[r].compute(), want_row)
    assert s.bytes_read - before == n * 4


# -- writing -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_in_memory_images_write_nibabel_bytes(tmp_path, kind):
    nimg = nib_image(kind)
    vimg = nib_image(kind, klass=Cifti2Image)
    ci.save(nimg, tmp_path / "nib.nii")
    vx.save(vimg, tmp_path / "vx.nii")
    assert (tmp_path / "vx.nii").read_bytes() == (tmp_path / "nib.nii").read_bytes()
    assert vimg.to_bytes() == nimg.to_bytes()
    back = vx.load(tmp_path / "vx.nii")
    assert_same(back, nib.load(tmp_path / "nib.nii"))


@pytest.mark.parametrize("kind", ["dtseries", "dconn", "pconnseries", "plabel"])
def test_lazy_images_write_nibabel_bytes_by_every_route(tmp_path, kind):
    src = saved(tmp_path, kind)
    ref = tmp_path / "ref.nii"
    nib.load(src).to_filename(ref)
    want = ref.read_bytes()
    outs = {
        "vx.save": lambda img, p: vx.save(img, p),
        "to_filename": lambda img, p: img.to_filename(p),
        "nibabel.save": lambda img, p: nib.save(img, p),
        "to_file_map": lambda img, p: img.to_file_map(Cifti2Image.filespec_to_file_map(str(p))),
    }
    for name, write in outs.items():
        img = vx.load(src)
        out = tmp_path / f"{name}.{kind}.nii"
        write(img, out)
        assert out.read_bytes() == want, name
        assert not img.in_memory
    assert_same(vx.load(out), nib.load(src))
    assert vx.load(out).get_filename() == str(out)


def test_writing_streams_without_reading_twice_or_caching(tmp_path):
    src = saved(tmp_path, "dconn", np.float64)
    img = vx.load(src)
    s = _stats(img)
    before = s.bytes_read
    vx.save(img, tmp_path / "copy.dconn.nii")
    assert s.bytes_read - before == img.dataobj.reader.layout.nbytes  # each byte once
    assert img._data_cache is None and img._fdata_cache is None


def test_written_images_keep_the_extension_and_other_extensions(tmp_path):
    img = nib_image("dscalar")
    img.nifti_header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"hello"))
    ci.save(img, tmp_path / "with-comment.dscalar.nii")
    vimg = vx.load(tmp_path / "with-comment.dscalar.nii")
    vx.save(vimg, tmp_path / "out.dscalar.nii")
    back = nib.load(tmp_path / "out.dscalar.nii")
    codes = [e.get_code() for e in back.nifti_header.extensions]
    assert codes == [6, 32]
    assert back.header.to_xml() == vimg.header.to_xml()
    assert_same(vx.load(tmp_path / "out.dscalar.nii"), back)


def test_sliced_and_dask_images_write(tmp_path):
    import dask.array as dsa

    src = saved(tmp_path, "dtseries")
    img = vx.load(src)
    sub = img.slicer[2:9:3, ::2]
    vx.save(sub, tmp_path / "sub.dtseries.nii")
    back = nib.load(tmp_path / "sub.dtseries.nii")
    np.testing.assert_array_equal(
        np.asanyarray(back.dataobj), np.asanyarray(img.dataobj)[2:9:3, ::2]
    )
    assert_axis_sliced(back.header.get_axis(0), img.header.get_axis(0), slice(2, 9, 3))
    assert_axis_sliced(back.header.get_axis(1), img.header.get_axis(1), slice(None, None, 2))
    lazy = Cifti2Image(dsa.from_array(np.asanyarray(img.dataobj), chunks=3), img.header)
    assert not lazy.in_memory
    vx.save(lazy, tmp_path / "dask.dtseries.nii")
    np.testing.assert_array_equal(
        np.asanyarray(nib.load(tmp_path / "dask.dtseries.nii").dataobj), np.asanyarray(img.dataobj)
    )


def test_gzip_and_other_destinations(tmp_path):
    img = vx.load(ROW_MAJOR)
    vx.save(img, tmp_path / "x.nii.gz")  # voxray writes it; nibabel and voxray read a Nifti2Image
    back = nib.load(tmp_path / "x.nii.gz")
    assert type(back) is nib.Nifti2Image
    assert [e.get_code() for e in back.header.extensions] == [32]
    np.testing.assert_array_equal(
        np.asanyarray(back.dataobj)[0, 0, 0, 0], np.asanyarray(img.dataobj)
    )
    with pytest.raises(NotAnImageError, match="one NIfTI-2 file"):
        vx.save(img, tmp_path / "x.hdr")
    with pytest.raises(VoxrayError, match="no affine"):
        vx.to_zarr(img, tmp_path / "x.nii.zarr")
    # a NIfTI image saved under a CIFTI name is NIfTI, as nibabel.save writes it
    nifti = vx.Image(np.zeros((2, 3, 4), np.float32), np.eye(4))
    vx.save(nifti, tmp_path / "n.dscalar.nii")
    assert type(nib.load(tmp_path / "n.dscalar.nii")) is nib.Nifti1Image


def test_write_refuses_a_shape_that_does_not_match_and_its_own_source(tmp_path):
    hdr = cifti_header("dscalar")
    with pytest.warns(UserWarning, match="does not match"):
        bad = Cifti2Image(np.zeros((3, 10), np.float32), hdr)
    with pytest.raises(WriteError, match="does not match"):
        vx.save(bad, tmp_path / "bad.dscalar.nii")
    src = saved(tmp_path, "dscalar")
    with pytest.raises(VoxrayError, match="refusing to overwrite"):
        vx.save(vx.load(src), src)


# -- graphs, pickles, clusters -------------------------------------------------------------


def test_image_and_graph_pickle_small(tmp_path):
    img = vx.load(saved(tmp_path, "dconn"))
    again = pickle.loads(pickle.dumps(img.slicer[1:5]))
    np.testing.assert_array_equal(np.asanyarray(again.dataobj), np.asanyarray(img.dataobj)[1:5])
    assert again.header.get_axis(0) == img.header.get_axis(0)[1:5]
    assert len(pickle.dumps(img.to_dask().__dask_graph__())) < 10_000


@pytest.mark.slow
def test_process_cluster_computes_row_means(tmp_path):
    from dask.distributed import Client, LocalCluster

    models = axes.BrainModelAxis.from_surface(np.arange(300), 300, "CortexLeft")
    data = np.random.default_rng(3).standard_normal((300, 300)).astype(np.float32)
    ci.save(ci.Cifti2Image(data, (models, models)), tmp_path / "c.dconn.nii")
    img = vx.load(tmp_path / "c.dconn.nii", chunks=(300, 50))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        x = img.to_xarray()
        got = client.compute(x.mean("grayordinate_col").data).result()
        np.testing.assert_allclose(got, data.mean(axis=1), rtol=1e-4, atol=1e-6)
        pids = client.run(lambda: __import__("os").getpid())
        assert len(set(pids.values())) == 2


# -- errors --------------------------------------------------------------------------------


def test_truncated_files_name_the_file(tmp_path):
    raw = ROW_MAJOR.read_bytes()
    nimg = nib.load(ROW_MAJOR)
    offset = int(nimg.nifti_header.get_data_offset())
    for cut, name in ((len(raw) - 7, "data"), (offset - 100, "ext"), (300, "hdr")):
        path = tmp_path / f"cut-{name}.dconn.nii"
        path.write_bytes(raw[:cut])
        with pytest.raises(VoxrayError, match="cut-") as e:
            vx.load(path)
        if name != "hdr":
            assert isinstance(e.value, TruncatedFileError)


def test_broken_xml_names_the_file(tmp_path):
    raw = bytearray(ROW_MAJOR.read_bytes())
    start = raw.index(b"<CIFTI")
    raw[start + 1 : start + 6] = b"#!@$%"
    path = tmp_path / "broken.dconn.nii"
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidHeaderError, match=r"broken\.dconn\.nii.*XML"):
        vx.load(path)


def test_corrupted_header_names_the_file(tmp_path):
    raw = bytearray(ROW_MAJOR.read_bytes())
    raw[16:24] = np.int64(-5).tobytes()  # dim[0]
    path = tmp_path / "corrupt.dconn.nii"
    path.write_bytes(bytes(raw))
    with pytest.raises(VoxrayError, match=r"corrupt\.dconn\.nii"):
        vx.load(path)


def test_cifti_intent_without_extension(tmp_path):
    hdr = nib.Nifti2Header()
    hdr.set_data_shape((1, 1, 1, 1, 2, 3))
    hdr.set_data_dtype(np.float32)
    hdr.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE")
    path = tmp_path / "noext.dconn.nii"
    nib.save(nib.Nifti2Image(np.zeros((1, 1, 1, 1, 2, 3), np.float32), np.eye(4), hdr), path)
    assert is_cifti_header(path.read_bytes()[:540])
    with pytest.raises(InvalidHeaderError, match=r"noext\.dconn\.nii.*no CIFTI-2 extension"):
        vx.load(path)


def test_no_affine_and_no_reorientation(tmp_path):
    img = vx.load(ROW_MAJOR)
    assert not hasattr(img, "affine")  # as nibabel's Cifti2Image
    with pytest.raises(NoAffineError, match=r"row_major\.dconn\.nii"):
        img.affine
    with pytest.raises(VoxrayError):
        img.as_reoriented([[0, 1], [1, 1], [2, 1]])
    with pytest.raises(VoxrayError):
        Cifti2Image.from_image(vx.Image(np.zeros((2, 2, 2)), np.eye(4)))
    assert type(Cifti2Image.from_image(nib.load(ROW_MAJOR))) is Cifti2Image
    assert type(img.to_nibabel()) is ci.Cifti2Image


# -- nibabel's own Cifti2Image API tests ---------------------------------------------------


class TestVoxrayCifti2ImageAPI(nib_cifti2.TestCifti2ImageAPI):
    """nibabel's data-interface, serialisation and dtype-override checks on voxray's class."""

    image_maker = Cifti2Image

    def validate_from_url(self, imaker, params):
        # nibabel's validate_from_url with two changes: ``expect_request`` (a handler that
        # answers every request) instead of ``expect_oneshot_request``, since voxray reads
        # by byte ranges (a HEAD, then GETs); and the source cache is cleared first: every
        # example is served at the same URL, without an ETag, and some examples have the
        # same size (int32 and float32), so a cached source would look unchanged.
        from voxray.sources import clear_cache

        server = self.httpserver
        img = imaker()
        img_bytes = img.to_bytes()
        server.clear_all_handlers()
        server.expect_request("/img").respond_with_data(img_bytes)
        url = server.url_for("/img")
        clear_cache()
        rt_img = img.__class__.from_url(url)
        assert rt_img.to_bytes() == img_bytes
        assert self._header_eq(img.header, rt_img.header)
        assert np.array_equal(img.get_fdata(), rt_img.get_fdata())
