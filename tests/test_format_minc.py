"""MINC1 (netCDF) and MINC2 (HDF5): every MINC file nibabel ships and generated ones, read
lazily by voxray and checked against nibabel as the oracle.

Generated files are written here (never committed): MINC2 with h5py in the layout of
nibabel's ``minc2_4d.mnc`` (HDF5 chunks, gzip filter, per-slice ``image-min`` /
``image-max``), MINC1 with nibabel's own netCDF writer (per-slice scaling, a record
dimension, big files gzipped as ``.mnc.gz``).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import nibabel as nib
import nibabel.tests.test_image_api as nib_image_api
import nibabel.tests.test_minc1 as nib_minc1
import nibabel.tests.test_minc2 as nib_minc2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel.externals.netcdf import netcdf_file
from nibabel.fileholders import FileHolder

import voxray as vx
from voxray.errors import InvalidHeaderError, NotAnImageError, TruncatedFileError, VoxrayError
from voxray.formats.minc import (
    MINC,
    Minc1Image,
    Minc2Image,
    MincReadError,
    MincWriteError,
    aligned_chunks,
)
from voxray.formats.minc.netcdf import NeedMoreBytes, NetcdfError, parse_header
from voxray.sources import open_source
from voxray.testing import NIBABEL_DATA
from voxray.testing import strategies as vst

SHIPPED = sorted(NIBABEL_DATA.glob("*.mnc"))


def _quiet_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minc2_baddim.mnc: nibabel warns on its spacing
        return nib.load(path)


def _vx_load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vx.load(path, **kw)


# -- generated files ----------------------------------------------------------------------

_DIMS = ("time", "zspace", "yspace", "xspace")


def _scales(shape, nscales, rng):
    """Per-slice image-min / image-max over the first ``nscales`` axes."""
    lo = rng.uniform(-50, 0, shape[:nscales])
    hi = lo + rng.uniform(1, 100, shape[:nscales])
    return lo, hi


def write_minc2(
    path,
    arr,
    *,
    chunks=None,
    compression="gzip",
    nscales=None,
    valid_range=None,
    seed=0,
    steps=(2.0, 3.0, 4.0),
    starts=(-20.0, 10.0, -5.0),
):
    """A MINC2 file laid out as nibabel's ``minc2_4d.mnc`` (h5py; dims slowest first)."""
    rng = np.random.default_rng(seed)
    dims = _DIMS[-arr.ndim :]
    nscales = (arr.ndim - 2) if nscales is None else nscales
    with h5py.File(path, "w") as f:
        root = f.create_group("minc-2.0")
        root.attrs["minc_version"] = np.bytes_(b"2.1.20")
        dgroup = root.create_group("dimensions")
        cosines = {"xspace": [1.0, 0, 0], "yspace": [0, 1.0, 0], "zspace": [0, 0, 1.0]}
        for name, n in zip(dims, arr.shape):
            if name == "time":
                d = dgroup.create_dataset(name, data=np.arange(n, dtype="<f8"))
                d.attrs["start"] = 0.0
                d.attrs["step"] = 1.5
            else:
                d = dgroup.create_dataset(name, data=np.int32(0))
                i = "xyz".index(name[0])
                d.attrs["start"] = starts[i]
                d.attrs["step"] = steps[i]
                d.attrs["direction_cosines"] = np.array(cosines[name])
            d.attrs["length"] = np.uint32(n)
            d.attrs["spacing"] = np.bytes_(b"regular__")
            d.attrs["dimorder"] = np.bytes_(name.encode())
        image = root.create_group("image").create_group("0")
        kw = {} if chunks is None else {"chunks": chunks, "compression": compression}
        ds = image.create_dataset("image", data=arr, **kw)
        ds.attrs["dimorder"] = np.bytes_(",".join(dims).encode())
        if valid_range is not None:
            ds.attrs["valid_range"] = np.asarray(valid_range, "<f8")
        lo, hi = _scales(arr.shape, nscales, rng)
        for name, val in (("image-min", lo), ("image-max", hi)):
            v = image.create_dataset(name, data=np.asarray(val, "<f8"))
            v.attrs["dimorder"] = np.bytes_(",".join(dims[:nscales]).encode())
        root.create_group("info")
    return str(path)


_SIGN = {"u": b"unsigned", "i": b"signed__"}
_CODE = {1: "b", 2: "h", 4: "i"}


def write_minc1(path, arr, *, nscales=None, record=False, seed=0, extra_record=False):
    """A MINC1 (netCDF classic) file: nibabel's own netCDF writer, or for ``record`` (the
    first dimension unlimited; nibabel's writer misplaces records) :func:`write_netcdf`.

    ``extra_record`` adds a second record variable, so the image's records interleave
    with another's.
    """
    rng = np.random.default_rng(seed)
    dims = _DIMS[-arr.ndim :]
    nscales = (arr.ndim - 2) if nscales is None else nscales
    kind = arr.dtype.kind
    typecode = "f" if kind == "f" and arr.dtype.itemsize == 4 else "d" if kind == "f" else None
    if typecode is None:
        typecode = _CODE[arr.dtype.itemsize]
    image_attrs = {}
    if kind in "ui":
        info = np.iinfo(arr.dtype)
        image_attrs = {
            "signtype": _SIGN[kind],
            "valid_range": np.array([info.min, info.max], ">f8"),
        }
    if kind == "f":
        stored = arr.astype(f">{typecode}")
    else:  # netCDF has signed types only: unsigned values are stored in their bits
        stored = arr.astype(arr.dtype.newbyteorder(">")).view(f">{typecode}")
    lo, hi = _scales(arr.shape, nscales, rng)
    variables = []
    for name in dims:
        attrs = {"spacing": b"regular__"}
        if name != "time":
            i = "xyz".index(name[0])
            attrs.update(
                step=[2.0, 3.0, 4.0][i],
                start=[-20.0, 10.0, -5.0][i],
                direction_cosines=np.eye(3)[i],
            )
        variables.append((name, (), "i", attrs, np.zeros((), ">i4")))
    variables.append(("image", dims, typecode, image_attrs, stored))
    variables.append(("image-min", dims[:nscales], "d", {}, np.asarray(lo, ">f8")))
    variables.append(("image-max", dims[:nscales], "d", {}, np.asarray(hi, ">f8")))
    if extra_record:
        variables.append(("other", dims[:1], "h", {}, np.arange(arr.shape[0], dtype=">i2")))
    lengths = [
        (name, None if (record and i == 0) else n)
        for i, (name, n) in enumerate(zip(dims, arr.shape))
    ]
    if record:
        return write_netcdf(path, lengths, variables, arr.shape[0])
    f = netcdf_file(str(path), "w")
    for name, n in lengths:
        f.createDimension(name, n)
    for name, vdims, code, attrs, values in variables:
        v = f.createVariable(name, code, vdims)
        for k, a in attrs.items():
            setattr(v, k, a)
        if values.ndim == 0:
            v.data[...] = values
        else:
            v[:] = values
    f.close()
    return str(path)


_NC_TYPES = {"b": 1, "c": 2, "h": 3, "i": 4, "f": 5, "d": 6}


def write_netcdf(path, dims, variables, numrecs=0):
    """A netCDF classic file written byte by byte from the specification (records too).

    ``dims`` is ``[(name, length or None)]``; ``variables`` ``[(name, dim names, typecode,
    attributes, big-endian values)]``.
    """
    import struct

    def name(s):
        b = s.encode()
        return struct.pack(">i", len(b)) + b + bytes(-len(b) % 4)

    def attr(k, v):
        if isinstance(v, bytes):
            code, raw, n = 2, v, len(v)
        else:
            a = np.atleast_1d(np.asarray(v, ">f8"))
            code, raw, n = 6, a.tobytes(), a.size
        return name(k) + struct.pack(">ii", code, n) + raw + bytes(-len(raw) % 4)

    def att_list(attrs):
        if not attrs:
            return bytes(8)
        return struct.pack(">ii", 12, len(attrs)) + b"".join(attr(k, v) for k, v in attrs.items())

    ids = {n: i for i, (n, _) in enumerate(dims)}
    length = dict(dims)
    is_rec = [bool(vd) and length[vd[0]] is None for _, vd, *_ in variables]
    sizes = [v[4][0].nbytes if rec else v[4].nbytes for v, rec in zip(variables, is_rec)]
    n_rec = sum(is_rec)
    vsizes = [n if (rec and n_rec == 1) else n + (-n % 4) for n, rec in zip(sizes, is_rec)]

    def header(begins):
        out = b"CDF\x01" + struct.pack(">i", numrecs)
        out += struct.pack(">ii", 10, len(dims)) + b"".join(
            name(n) + struct.pack(">i", length or 0) for n, length in dims
        )
        out += bytes(8)  # no global attributes
        out += struct.pack(">ii", 11, len(variables))
        for (vname, vdims, code, attrs, _), vsize, begin in zip(variables, vsizes, begins):
            out += name(vname) + struct.pack(">i", len(vdims))
            out += b"".join(struct.pack(">i", ids[d]) for d in vdims)
            out += att_list(attrs) + struct.pack(">iIi", _NC_TYPES[code], vsize, begin)
        return out

    size = len(header([0] * len(variables)))
    begins, pos = [0] * len(variables), size
    for i, rec in enumerate(is_rec):
        if not rec:
            begins[i], pos = pos, pos + vsizes[i]
    recsize = sum(v for v, rec in zip(vsizes, is_rec) if rec)
    for i, rec in enumerate(is_rec):
        if rec:
            begins[i], pos = pos, pos + vsizes[i]
    blob = bytearray(header(begins))
    for (_, _, _, _, values), rec, begin, vsize in zip(variables, is_rec, begins, vsizes):
        records = range(numrecs) if rec else [None]
        for r in records:
            raw = (values if r is None else values[r]).tobytes()
            at = begin + (0 if r is None else r * recsize)
            blob[len(blob) :] = bytes(max(0, at + vsize - len(blob)))
            blob[at : at + len(raw)] = raw
    Path(path).write_bytes(bytes(blob))
    return str(path)


def _assign(var, values, record: bool) -> None:
    """Set a variable's values with nibabel's netCDF writer (records grow by slicing)."""
    if record:
        var[: values.shape[0]] = values
    elif values.ndim == 0:
        var.data[...] = values
    else:
        var[:] = values


def _values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.normal(0, 100, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """name -> path of generated MINC files (a few hundred kB each)."""
    d = tmp_path_factory.mktemp("minc")
    out = {}
    out["m2-4d-chunked.mnc"] = write_minc2(
        d / "m2-4d-chunked.mnc", _values((6, 12, 20, 24), np.int16), chunks=(1, 4, 10, 24)
    )
    out["m2-3d-uint8.mnc"] = write_minc2(
        d / "m2-3d-uint8.mnc", _values((10, 14, 16), np.uint8), chunks=(3, 14, 8)
    )
    out["m2-3d-float.mnc"] = write_minc2(d / "m2-3d-float.mnc", _values((9, 10, 11), "<f4"))
    out["m2-3d-scalar-scale.mnc"] = write_minc2(
        d / "m2-3d-scalar-scale.mnc", _values((9, 10, 11), np.int16), nscales=0
    )
    out["m2-4d-2scales.mnc"] = write_minc2(
        d / "m2-4d-2scales.mnc", _values((3, 5, 6, 7), np.uint16), chunks=(1, 2, 6, 7)
    )
    out["m1-4d-int16.mnc"] = write_minc1(d / "m1-4d-int16.mnc", _values((5, 8, 9, 10), np.int16))
    out["m1-3d-uint8.mnc"] = write_minc1(d / "m1-3d-uint8.mnc", _values((7, 8, 9), np.uint8))
    out["m1-3d-float.mnc"] = write_minc1(d / "m1-3d-float.mnc", _values((7, 8, 9), ">f4"))
    out["m1-3d-int32-scalar.mnc"] = write_minc1(
        d / "m1-3d-int32-scalar.mnc", _values((6, 7, 8), np.int32), nscales=0
    )
    out["m1-record.mnc"] = write_minc1(
        d / "m1-record.mnc", _values((4, 6, 7, 5), np.int16), record=True
    )
    out["m1-record-float.mnc"] = write_minc1(
        d / "m1-record-float.mnc", _values((3, 4, 5, 6), ">f4"), record=True
    )
    out["m1-record-interleaved.mnc"] = write_minc1(
        d / "m1-record-interleaved.mnc",
        _values((4, 6, 7, 5), np.uint8),
        record=True,
        extra_record=True,
    )
    gz = d / "m1-4d-int16.mnc.gz"
    with open(out["m1-4d-int16.mnc"], "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    out["m1-4d-int16.mnc.gz"] = str(gz)
    return out


def _all_files(generated):
    return [str(p) for p in SHIPPED] + list(generated.values())


# -- the oracle: every file, every property -----------------------------------------------


def _check_against_nibabel(path):
    ref = _quiet_load(path)
    img = _vx_load(path)
    assert isinstance(img, type(ref)), (type(img), type(ref))
    assert type(img).__name__ == type(ref).__name__
    assert isinstance(img, vx.Image) and not img.in_memory
    assert isinstance(img.dataobj, vx.ArrayProxy)
    assert img.shape == ref.shape
    assert img.get_data_dtype() == ref.get_data_dtype()
    assert img.header == ref.header
    assert img.header.get_zooms() == ref.header.get_zooms()
    np.testing.assert_array_equal(img.affine, ref.affine)
    want = np.asanyarray(ref.dataobj)
    got = np.asanyarray(img.dataobj)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    fdata = img.get_fdata()
    assert fdata.dtype == np.float64
    np.testing.assert_array_equal(fdata, ref.get_fdata())
    assert img.get_fdata(dtype=np.float32).dtype == np.float32
    x = img.to_dask()
    assert x.dtype == want.dtype
    np.testing.assert_array_equal(x.compute(), want)
    return img, ref


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_minc_file_matches_nibabel(path):
    _check_against_nibabel(path)


GENERATED = (
    "m2-4d-chunked.mnc",
    "m2-3d-uint8.mnc",
    "m2-3d-float.mnc",
    "m2-3d-scalar-scale.mnc",
    "m2-4d-2scales.mnc",
    "m1-4d-int16.mnc",
    "m1-3d-uint8.mnc",
    "m1-3d-float.mnc",
    "m1-3d-int32-scalar.mnc",
    "m1-record.mnc",
    "m1-record-float.mnc",
    "m1-record-interleaved.mnc",
    "m1-4d-int16.mnc.gz",
)


@pytest.mark.parametrize("name", GENERATED)
def test_generated_files_match_nibabel(generated, name):
    img, _ = _check_against_nibabel(generated[name])
    assert type(img) is (Minc2Image if name.startswith("m2") else Minc1Image)


def test_scaling_is_per_slice(generated):
    """The generated files scale each (time, z) slice differently: values are not one
    affine map of the stored ones (what a whole-image slope would give)."""
    path = generated["m2-4d-chunked.mnc"]
    raw = h5py.File(path)["minc-2.0/image/0/image"][()].astype(float)
    got = np.asarray(vx.load(path).dataobj)
    slope = np.polyfit(raw.ravel(), got.ravel(), 1)
    assert not np.allclose(np.polyval(slope, raw), got)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_basic_slices_match_nibabel(generated, data):
    path = data.draw(st.sampled_from(_all_files(generated)), label="file")
    ref = _quiet_load(path)
    img = _vx_load(path)
    key = data.draw(vst.basic_index(img.shape), label="key")
    want = np.asanyarray(ref.dataobj)[key]
    got = img.dataobj[key]
    assert np.shape(got) == np.shape(want)
    if np.ndim(want) == 0:  # a 0-d slice of nibabel's array keeps '>f4'; a scalar is native
        assert np.asarray(got).dtype == np.asarray(want).dtype.newbyteorder("=")
    else:
        assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)
    # and nibabel's own proxy for the same key (MINC's get_scaled_data path), except for
    # one voxel of a MINC1 float file: nibabel's netCDF reader swaps a 0-d '>f4' result's
    # bytes twice (m1-3d-float.mnc [0, 0, 0]: 8.855286e-24 where its whole array holds
    # 12.573022; voxray gives 12.573022)
    plain = not any(
        k is None or k is Ellipsis for k in (key if isinstance(key, tuple) else (key,))
    )
    nibabel_swaps = np.ndim(want) == 0 and isinstance(ref, nib.Minc1Image)
    if plain and not nibabel_swaps:
        np.testing.assert_array_equal(got, ref.dataobj[key])


# -- laziness and I/O ---------------------------------------------------------------------


def _stats(img):
    return open_source(img.dataobj.reader.source).stats


def test_minc1_opening_reads_the_header_and_small_variables_only(tmp_path):
    arr = _values((20, 64, 64), np.int16)
    path = write_minc1(tmp_path / "big.mnc", arr)
    from voxray.sources import clear_cache

    clear_cache()
    img = vx.load(path)
    stats = _stats(img)
    assert stats.bytes_returned < 64 * 1024 + 1024  # header prefix + image-min/max
    assert stats.bytes_returned < arr.nbytes / 2
    img.dataobj[0]  # the process's first read opens the file's proxy (the header again)
    stats.reset()
    plane = img.dataobj[7]
    assert stats.bytes_returned == arr[7].nbytes  # one z-plane, nothing else
    ref = nib.load(path)
    np.testing.assert_array_equal(plane, ref.dataobj[7])


def test_minc1_gzip_reads_through_the_seek_index(generated):
    img = vx.load(generated["m1-4d-int16.mnc.gz"])
    assert img.dataobj.reader.source.compression == "gzip"
    ref = nib.load(generated["m1-4d-int16.mnc.gz"])
    np.testing.assert_array_equal(img.dataobj[2, 3], ref.dataobj[2, 3])


def test_minc2_slice_reads_only_the_chunks_it_touches(tmp_path):
    arr = _values((8, 32, 64, 64), np.int16)
    path = write_minc2(tmp_path / "c.mnc", arr, chunks=(1, 8, 64, 64), compression=None)
    with open(path, "rb") as f:
        img = Minc2Image.from_file_map({"image": FileHolder(fileobj=f)})
        stats = _stats(img)
        opened = stats.bytes_read
        assert opened < arr.nbytes / 20
        stats.reset()
        vol = img.dataobj[3, 8:16]
        assert arr[3, 8:16].nbytes <= stats.bytes_read < 2 * arr[3, 8:16].nbytes
        np.testing.assert_array_equal(vol, nib.load(path).dataobj[3, 8:16])


def test_dask_chunks_are_whole_hdf5_chunks(generated):
    path = generated["m2-4d-chunked.mnc"]
    h5chunks = h5py.File(path)["minc-2.0/image/0/image"].chunks
    img = vx.load(path)
    x = img.to_dask()
    for axis, sizes in enumerate(x.chunks):
        assert all(s % h5chunks[axis] == 0 for s in sizes[:-1]), (axis, sizes)
        assert sum(sizes) == img.shape[axis]
    # small chunks: one HDF5 chunk per dask chunk when the target is one chunk
    one = aligned_chunks(img.shape, 8, h5chunks, max_bytes=8 * int(np.prod(h5chunks)))
    assert tuple(c[0] for c in one) == h5chunks


def test_aligned_chunks_grow_to_the_target():
    shape, h5 = (40, 256, 256), (4, 32, 32)
    chunks = aligned_chunks(shape, 8, h5)  # 64 MiB of float64
    block = tuple(c[0] for c in chunks)
    assert all(b % h == 0 or b == n for b, h, n in zip(block, h5, shape))
    assert np.prod(block) * 8 <= 64 * 2**20
    assert block[1:] == (256, 256)  # fast axes whole first (contiguous rows)
    # contiguous: C-order slabs along the first axis
    assert aligned_chunks((700, 800, 900), 8) == aligned_chunks((700, 800, 900), 8, None)
    slab = tuple(c[0] for c in aligned_chunks((700, 800, 900), 8))
    assert slab[1:] == (800, 900) and slab[0] < 700
    # user chunks: dicts fill the other axes with the aligned block
    assert aligned_chunks(shape, 8, h5, {0: 4})[0] == 4


def test_user_chunks(generated):
    path = generated["m2-4d-chunked.mnc"]
    want = np.asanyarray(nib.load(path).dataobj)
    img = vx.load(path, chunks={0: 1})
    assert img.to_dask().chunks[0] == (1,) * 6
    np.testing.assert_array_equal(img.to_dask().compute(), want)
    # one dask chunk per HDF5 chunk: per-slice scaling chunk by chunk, exactly
    h5chunks = h5py.File(path)["minc-2.0/image/0/image"].chunks
    x = vx.load(path, chunks=h5chunks).to_dask()
    assert x.npartitions == np.prod([-(-n // c) for n, c in zip(x.shape, h5chunks)]) > 20
    np.testing.assert_array_equal(x.compute(), want)
    y = vx.load(generated["m1-4d-int16.mnc"], chunks=(2, 3, 4, 5)).to_dask()
    np.testing.assert_array_equal(
        y.compute(), np.asanyarray(nib.load(generated["m1-4d-int16.mnc"]).dataobj)
    )


def test_provenance(generated):
    path = generated["m1-4d-int16.mnc"]
    img = vx.load(path)
    assert img.provenance.format == "minc"
    assert os.path.abspath(path) in img.provenance.files
    stored = img.provenance.header  # as read (nibabel then updates zooms from the affine)
    assert stored.get_data_dtype() == img.get_data_dtype()
    assert stored.get_data_shape() == img.shape
    assert img.get_filename() == path


def test_graph_pickles_small(generated):
    for name in ("m2-4d-chunked.mnc", "m1-4d-int16.mnc"):
        x = vx.load(generated[name]).to_dask()
        blob = pickle.dumps(dict(x.__dask_graph__()))
        assert len(blob) < 20_000
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(x)).compute(), x.compute())


def test_images_pickle_as_plain_values(generated):
    for name in ("m2-4d-chunked.mnc", "m1-4d-int16.mnc.gz"):
        img = vx.load(generated[name])
        img.get_fdata()  # cached arrays are not pickled
        blob = pickle.dumps(img)
        assert len(blob) < 50_000
        back = pickle.loads(blob)
        assert type(back) is type(img) and not back.in_memory
        np.testing.assert_array_equal(back.get_fdata(), img.get_fdata())
        np.testing.assert_array_equal(back.affine, img.affine)


@pytest.mark.slow
def test_process_cluster(generated):
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for name in ("m2-4d-chunked.mnc", "m1-4d-int16.mnc", "m1-4d-int16.mnc.gz"):
            path = generated[name]
            x = vx.load(path, chunks={0: 1}).to_dask()
            got = client.compute(x.mean(axis=0)).result()
            want = np.asanyarray(nib.load(path).dataobj).mean(axis=0)
            np.testing.assert_allclose(got, want)


# -- image API: slicer, reorientation, xarray ---------------------------------------------


def test_slicer_and_canonical_are_lazy_and_match_nibabel(generated):
    for path in (generated["m2-3d-uint8.mnc"], generated["m1-3d-uint8.mnc"], SHIPPED[-1]):
        img, ref = _vx_load(path), _quiet_load(path)
        sl = (slice(1, None, 2), slice(None, None, 3), slice(2, 5))
        sub = img.slicer[sl]
        assert not sub.in_memory and isinstance(sub, type(img))
        want = ref.slicer[sl]
        np.testing.assert_array_equal(sub.affine, want.affine)
        np.testing.assert_array_equal(sub.get_fdata(), want.get_fdata())
        # reversed: voxray keeps world positions (nibabel #1533), values as numpy's
        rev = img.slicer[::-1]
        np.testing.assert_array_equal(rev.get_fdata(), ref.get_fdata()[::-1])
        np.testing.assert_allclose(
            rev.affine @ [0, 0, 0, 1], ref.affine @ [img.shape[0] - 1, 0, 0, 1]
        )
    for path in (generated["m2-4d-chunked.mnc"], generated["m1-4d-int16.mnc"]):
        img, ref = _vx_load(path), _quiet_load(path)
        with pytest.raises(ValueError, match="spatial axes"):
            ref.slicer
        with pytest.raises(VoxrayError, match="spatial axes"):
            img.slicer
    for path in (generated["m2-4d-chunked.mnc"], generated["m1-3d-uint8.mnc"]):
        img, ref = _vx_load(path), _quiet_load(path)
        canon = vx.as_closest_canonical(img)
        assert not canon.in_memory and isinstance(canon.dataobj, vx.ArrayProxy)
        nib_canon = nib.as_closest_canonical(ref)
        np.testing.assert_array_equal(canon.affine, nib_canon.affine)
        np.testing.assert_array_equal(canon.get_fdata(), nib_canon.get_fdata())
        assert vx.aff2axcodes(canon.affine) == ("R", "A", "S")


def test_to_xarray_has_voxel_dims_and_world_coordinates(generated):
    img = vx.load(generated["m1-3d-uint8.mnc"])
    da = img.to_xarray()
    assert da.dims == ("i", "j", "k")
    assert da.shape == img.shape
    np.testing.assert_array_equal(da.values, np.asanyarray(nib.load(img.get_filename()).dataobj))
    ijk = np.array([2, 3, 4, 1.0])
    xyz = img.affine @ ijk
    point = da.isel(i=2, j=3, k=4)
    for name, value in zip("xyz", xyz[:3]):
        assert float(point[name]) == pytest.approx(value)


# -- conversion: NIfTI and Zarr -----------------------------------------------------------


CONVERT = ["m2-4d-chunked.mnc", "m1-4d-int16.mnc", "m1-3d-float.mnc", "small.mnc"]


def _minc_path(generated, name):
    return generated.get(name) or str(NIBABEL_DATA / name)


@pytest.mark.parametrize("name", CONVERT)
def test_to_filename_nifti_keeps_affine_and_values(generated, tmp_path, name):
    """A MINC image's own ``to_filename`` with a NIfTI name writes the scaled values (the
    per-slice scaling has no NIfTI equivalent): nibabel's ``Nifti1Image(get_fdata(),
    affine)``, value for value."""
    path = _minc_path(generated, name)
    minc = nib.load(path)
    want = nib.Nifti1Image(minc.get_fdata(), minc.affine)
    for out in (tmp_path / "x.nii.gz", tmp_path / "y.nii"):
        vx.load(path).to_filename(out)
        got = nib.load(out)
        np.testing.assert_array_equal(got.affine, want.affine)
        np.testing.assert_array_equal(got.get_fdata(), want.get_fdata())
    out = tmp_path / "z.nii.gz"
    vx.save(vx.load(path), out, dtype=np.float64)
    np.testing.assert_array_equal(nib.load(out).get_fdata(), want.get_fdata())


@pytest.mark.parametrize("name", CONVERT)
def test_vx_save_nifti_is_nibabels_conversion(generated, tmp_path, name):
    """``vx.save(minc, "x.nii.gz")`` without a dtype converts as ``nib.save`` does: the
    MINC header's stored dtype, with one NIfTI slope and intercept for the whole image."""
    path = _minc_path(generated, name)
    minc = nib.load(path)
    ours, theirs = tmp_path / "vx.nii.gz", tmp_path / "nib.nii.gz"
    vx.save(vx.load(path), ours)
    nib.save(minc, theirs)
    got, ref = nib.load(ours), nib.load(theirs)
    np.testing.assert_array_equal(got.affine, minc.affine)
    assert got.get_data_dtype() == ref.get_data_dtype()
    np.testing.assert_array_equal(got.get_fdata(), ref.get_fdata())
    np.testing.assert_allclose(got.get_fdata(), minc.get_fdata(), atol=_quantum(got))


def _quantum(nifti) -> float:
    slope = nifti.dataobj.slope
    return float(abs(slope)) if np.isfinite(slope) else 0.0


def test_vx_save_as_float64_keeps_every_value(generated, tmp_path):
    """By default a conversion keeps the stored integer type with one slope, as nib.save
    does (tested above); ``dtype=np.float64`` keeps the per-slice-scaled values exactly."""
    path = generated["m2-4d-chunked.mnc"]
    minc = nib.load(path)
    vx.save(vx.load(path), tmp_path / "x.nii.gz", dtype=np.float64)
    np.testing.assert_array_equal(nib.load(tmp_path / "x.nii.gz").get_fdata(), minc.get_fdata())


def test_convert_to_zarr(generated, tmp_path):
    path = generated["m2-4d-chunked.mnc"]
    minc = nib.load(path)
    store = vx.to_zarr(vx.load(path), str(tmp_path / "x.nii.zarr"))
    back = vx.load(store)
    np.testing.assert_array_equal(back.affine, minc.affine)
    assert back.shape == minc.shape
    nifti = tmp_path / "ref.nii"
    vx.save(vx.load(path), nifti)  # the values a .nii holds, as NIfTI-Zarr stores them
    np.testing.assert_allclose(back.get_fdata(), nib.load(nifti).get_fdata())
    np.testing.assert_allclose(back.get_fdata(), minc.get_fdata(), atol=_quantum(nib.load(nifti)))


def test_cli_info_and_convert(generated, tmp_path, capsys):
    import json

    from voxray.cli import main

    for name, fmt in (("m1-4d-int16.mnc", "MINC1"), ("m2-4d-chunked.mnc", "MINC2")):
        path = generated[name]
        ref = nib.load(path)
        assert main(["info", "--json", path]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["format"] == fmt
        assert info["nibabel_class"] == type(ref).__name__
        assert info["shape"] == list(ref.shape)
        np.testing.assert_allclose(info["affine"], ref.affine)
        assert main(["info", path]) == 0
        assert fmt in capsys.readouterr().out
        nii, zarr = tmp_path / f"{name}.nii.gz", tmp_path / f"{name}.nii.zarr"
        assert main(["convert", path, str(nii)]) == 0
        assert main(["convert", path, str(zarr)]) == 0
        capsys.readouterr()
        quantum = _quantum(nib.load(nii))  # nib.save's int16 + one slope (see above)
        for out in (nii, zarr):
            back = vx.load(out)
            np.testing.assert_allclose(back.affine, ref.affine)
            np.testing.assert_allclose(back.get_fdata(), ref.get_fdata(), atol=quantum)


def test_writing_minc_is_refused(generated, tmp_path):
    img = vx.load(generated["m1-3d-uint8.mnc"])
    for target in (tmp_path / "x.mnc", tmp_path / "x.mnc.gz"):
        with pytest.raises(MincWriteError, match="NIfTI"):
            vx.save(img, target)
        assert not target.exists()
    with pytest.raises(MincWriteError, match="read-only"):
        img.to_filename(tmp_path / "y.mnc")
    with pytest.raises(VoxrayError):
        vx.save(vx.Image(np.zeros((2, 3, 4)), np.eye(4)), tmp_path / "z.mnc")


# -- sniffing, file objects, remote ---------------------------------------------------------


def test_suffixless_files_open_by_their_first_bytes(generated, tmp_path):
    for name, klass in (("m1-3d-uint8.mnc", Minc1Image), ("m2-3d-uint8.mnc", Minc2Image)):
        bare = tmp_path / name.replace(".mnc", "")
        shutil.copy(generated[name], bare)
        img = vx.load(bare)
        assert type(img) is klass
        np.testing.assert_array_equal(
            np.asarray(img.dataobj), np.asanyarray(nib.load(generated[name]).dataobj)
        )
    assert MINC.sniff(b"CDF\x01\x00") and MINC.sniff(b"\x89HDF\r\n\x1a\n")
    assert not MINC.sniff(b"\x5c\x01\x00\x00")


def test_class_methods_open_their_own_kind_only(generated):
    assert type(Minc1Image.from_filename(generated["m1-3d-uint8.mnc"])) is Minc1Image
    assert type(Minc2Image.load(generated["m2-3d-uint8.mnc"])) is Minc2Image
    with pytest.raises(NotAnImageError, match="MINC2"):
        Minc1Image.from_filename(generated["m2-3d-uint8.mnc"])
    with pytest.raises(NotAnImageError, match="MINC1"):
        Minc2Image.from_filename(generated["m1-3d-uint8.mnc"])


def test_file_objects(generated):
    for name in ("m1-4d-int16.mnc", "m2-4d-chunked.mnc"):
        path = generated[name]
        want = np.asanyarray(nib.load(path).dataobj)
        klass = Minc1Image if name.startswith("m1") else Minc2Image
        bio = io.BytesIO(Path(path).read_bytes())
        img = klass.from_file_map({"image": FileHolder(fileobj=bio)})
        np.testing.assert_array_equal(np.asarray(img.dataobj), want)
        np.testing.assert_array_equal(img.to_dask()[1:3].compute(), want[1:3])
        # the graph pickles with its BytesIO (a copy) and still reads
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(img.to_dask())).compute(), want)


def test_remote_minc_by_ranges(generated):
    from voxray.testing.httpserver import RangeServer

    d = Path(generated["m1-4d-int16.mnc"]).parent
    with RangeServer(d) as server:
        for name in ("m1-4d-int16.mnc", "m2-4d-chunked.mnc", "m1-4d-int16.mnc.gz"):
            img = vx.load(server.url(name))
            ref = nib.load(generated[name])
            assert type(img).__name__ == type(ref).__name__
            np.testing.assert_array_equal(img.affine, ref.affine)
            np.testing.assert_array_equal(img.dataobj[1, 2:5], ref.dataobj[1, 2:5])
            np.testing.assert_array_equal(img.to_dask().compute(), np.asanyarray(ref.dataobj))
        url = Minc2Image.from_url(server.url("m2-4d-chunked.mnc"))
        assert type(url) is Minc2Image and not url.in_memory
        np.testing.assert_array_equal(
            url.get_fdata(), nib.load(generated["m2-4d-chunked.mnc"]).get_fdata()
        )
        size = os.path.getsize(generated["m2-4d-chunked.mnc"])
        server.reset_counts()
        img = vx.load(server.url("m2-4d-chunked.mnc"))
        img.dataobj[0, 0]
        assert server.bytes_sent < size


# -- bad input ----------------------------------------------------------------------------


def _load_and_read(path):
    """Open and read everything (a damaged MINC2 header may open; its data then fails)."""
    return np.asarray(_vx_load(path).dataobj)


def _truncations(path, tmp_path):
    data = Path(path).read_bytes()
    for keep in (3, 100, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{keep}-{Path(path).name}"
        p.write_bytes(data[:keep])
        yield p


@pytest.mark.parametrize("name", ["tiny.mnc", "minc1_4d.mnc", "small.mnc", "minc2_4d.mnc"])
def test_truncated_files_raise_voxray_errors(tmp_path, name):
    for p in _truncations(NIBABEL_DATA / name, tmp_path):
        with pytest.raises(VoxrayError, match=p.name):  # at open, or reading the data
            _load_and_read(p)


def test_truncated_minc1_is_a_truncated_file_error(generated, tmp_path):
    data = Path(generated["m1-4d-int16.mnc"]).read_bytes()
    p = tmp_path / "cut.mnc"
    p.write_bytes(data[: len(data) - 10])
    with pytest.raises(TruncatedFileError, match="truncated"):
        vx.load(p)


def test_corrupt_headers_raise_voxray_errors(tmp_path):
    tiny = bytearray((NIBABEL_DATA / "tiny.mnc").read_bytes())
    cases = {}
    bad = bytearray(tiny)
    bad[3] = 7  # netCDF version byte
    cases["version.mnc"] = bad
    bad = bytearray(tiny)
    bad[8:12] = b"\x00\x00\x00\x63"  # the dimension list tag
    cases["dimtag.mnc"] = bad
    bad = bytearray(tiny)
    i = bad.index(b"signtype") + 8 + 8  # the attribute's name, then nc_type and count
    assert bad[i : i + 8] == b"unsigned"
    bad[i : i + 8] = b"nosigned"  # nibabel: KeyError on the dtype table
    cases["signtype.mnc"] = bad
    small = bytearray((NIBABEL_DATA / "small.mnc").read_bytes())
    bad = bytearray(small)
    bad[:8] = b"\x89HDF\r\n\x1a\x00"
    cases["hdf5-signature.mnc"] = bad
    bad = bytearray(small)
    bad[8:64] = bytes(56)  # the superblock
    cases["superblock.mnc"] = bad
    cases["junk.mnc"] = b"CDF\x01" + os.urandom(200)
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(bytes(blob))
        with pytest.raises(VoxrayError, match=name):
            _vx_load(p).get_fdata()
        # nibabel fails on each of them too
        with pytest.raises(Exception):  # noqa: B017  (nibabel raises anything)
            _quiet_load(p).get_fdata()


def test_streaming_record_count_without_records_opens_as_in_nibabel(tmp_path):
    data = bytearray((NIBABEL_DATA / "tiny.mnc").read_bytes())
    data[4:8] = b"\xff\xff\xff\xff"  # 'streaming': harmless without record variables
    p = tmp_path / "streaming.mnc"
    p.write_bytes(bytes(data))
    np.testing.assert_array_equal(vx.load(p).get_fdata(), nib.load(p).get_fdata())


def test_minc1_nibabel_errors_become_header_errors(tmp_path):
    arr = _values((4, 5, 6), np.int16)
    p = tmp_path / "irregular.mnc"
    f = netcdf_file(str(p), "w")
    for name, n in zip(_DIMS[1:], arr.shape):
        f.createDimension(name, n)
        v = f.createVariable(name, "i", ())
        v.spacing = b"irregular"
    img = f.createVariable("image", "h", _DIMS[1:])
    img.signtype = b"signed__"
    img[:] = arr
    for name in ("image-min", "image-max"):
        f.createVariable(name, "d", ()).data[...] = 1.0
    f.close()
    with pytest.raises(ValueError, match="Irregular"):
        nib.load(p)
    with pytest.raises(InvalidHeaderError, match="Irregular") as info:
        vx.load(p)
    assert isinstance(info.value, nib.minc1.MincError)


def test_scaling_fields_nibabel_refuses_at_read_are_header_errors(tmp_path):
    arr = _values((4, 5, 6), np.int16)
    path = write_minc2(tmp_path / "mismatch.mnc", arr)
    with h5py.File(path, "r+") as f:  # image-max over y, image-min over z
        f["minc-2.0/image/0/image-max"].attrs["dimorder"] = np.bytes_(b"yspace")
    ref = nib.load(path)  # nibabel opens it, and fails reading
    with pytest.raises(nib.minc1.MincError):
        ref.get_fdata()
    img = vx.load(path)
    with pytest.raises(InvalidHeaderError, match="same dimensions") as info:
        img.get_fdata()
    assert isinstance(info.value, nib.minc1.MincError) and "mismatch.mnc" in str(info.value)


def test_non_minc_netcdf_and_hdf5_files_are_refused(tmp_path):
    p = tmp_path / "plain.mnc"
    f = netcdf_file(str(p), "w")
    f.createDimension("x", 3)
    f.createVariable("temperature", "f", ("x",))[:] = [1, 2, 3]
    f.close()
    with pytest.raises(NotAnImageError, match="'image' variable"):
        vx.load(p)
    q = tmp_path / "plain.h5.mnc"
    with h5py.File(q, "w") as h:
        h["x"] = np.arange(3)
    with pytest.raises(NotAnImageError, match=r"minc-2\.0"):
        vx.load(q)


def test_damaged_hdf5_chunk_is_a_read_error(tmp_path):
    arr = _values((4, 16, 16), np.int16)
    path = write_minc2(tmp_path / "d.mnc", arr, chunks=(1, 16, 16))
    with h5py.File(path) as f:
        offset = f["minc-2.0/image/0/image"].id.get_chunk_info(2).byte_offset
    data = bytearray(Path(path).read_bytes())
    data[offset : offset + 32] = bytes(range(32))  # inside a deflate stream
    Path(path).write_bytes(bytes(data))
    img = vx.load(path)
    img.dataobj[0]  # an intact chunk reads
    with pytest.raises(MincReadError, match=r"d\.mnc"):
        img.dataobj[2]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        vx.load(tmp_path / "nope.mnc")
    with pytest.raises(VoxrayError):
        vx.load(tmp_path / "nope.mnc")


def test_mnc_bz2_is_refused_clearly(tmp_path):
    import bz2

    p = tmp_path / "x.mnc.bz2"
    p.write_bytes(bz2.compress((NIBABEL_DATA / "tiny.mnc").read_bytes()))
    with pytest.raises(NotAnImageError, match="bzip2"):
        vx.load(p)


def test_voxray_imports_without_h5py_and_says_what_minc2_needs():
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "import voxray as vx\n"
        "from voxray.testing import NIBABEL_DATA\n"
        "vx.load(NIBABEL_DATA / 'tiny.mnc').get_fdata()\n"
        "try:\n"
        "    vx.load(NIBABEL_DATA / 'small.mnc')\n"
        "except vx.VoxrayError as e:\n"
        "    assert isinstance(e, ImportError)\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install voxray[hdf5]" in out


# -- the netCDF header parser -------------------------------------------------------------


def test_netcdf_parser_agrees_with_nibabels_reader(generated):
    for path in [p for p in _all_files(generated) if Path(p).read_bytes()[:3] == b"CDF"]:
        hdr = parse_header(Path(path).read_bytes())
        nc = netcdf_file(path, "r", mmap=False)
        assert dict(hdr.dimensions) == dict(nc.dimensions)
        assert set(hdr.variables) == set(nc.variables)
        for name, var in hdr.variables.items():
            ref = nc.variables[name]
            assert var.dimensions == ref.dimensions
            assert var.shape == ref.data.shape
            assert var.typecode == ref.typecode()
            assert set(var.attributes) == set(ref._attributes)
            for k, v in var.attributes.items():
                np.testing.assert_array_equal(v, ref._attributes[k])
                assert type(v) is type(ref._attributes[k])
        nc.close()


def test_netcdf_parser_asks_for_more_bytes_and_rejects_garbage():
    data = (NIBABEL_DATA / "tiny.mnc").read_bytes()
    with pytest.raises(NeedMoreBytes) as info:
        parse_header(data[:40])
    assert info.value.needed > 40
    with pytest.raises(NetcdfError):
        parse_header(b"CDF\x03" + data[4:])
    with pytest.raises(NetcdfError):
        parse_header(b"\x89HDF" + data[4:])


# -- nibabel's own MINC tests, on voxray's classes ----------------------------------------


class _VoxrayModule:
    """What nibabel's MINC tests call ``self.module``: ``load`` is voxray's."""

    def __init__(self, klass):
        self.load = klass.from_filename
        self.Minc1Image = Minc1Image


class TestVoxrayMinc1API(nib_image_api.TestMinc1API):
    klass = image_maker = Minc1Image
    loader = Minc1Image.from_filename


class TestVoxrayMinc2API(nib_image_api.TestMinc2API):
    klass = image_maker = Minc2Image
    loader = Minc2Image.from_filename


@pytest.fixture
def voxray_load(monkeypatch):
    """nibabel's MINC file tests call ``nibabel.load`` (a module global): make it voxray's."""
    monkeypatch.setattr(nib_minc1, "load", vx.load)


def _voxray_netcdf(fname, mode="r"):
    from voxray.formats.minc.files import netcdf_of
    from voxray.sources import local_spec

    return netcdf_of(local_spec(str(fname)))


@pytest.mark.usefixtures("voxray_load")
class TestVoxrayMinc1File(nib_minc1.TestMinc1File):
    """nibabel's Minc1File tests over voxray's netCDF header parser and lazy image
    variable, and its load tests over ``vx.load``."""

    opener = staticmethod(_voxray_netcdf)
    module = _VoxrayModule(Minc1Image)

    @pytest.mark.xfail(strict=True, raises=NotAnImageError, reason="voxray refuses .bz2/.zst")
    def test_compressed(self):
        super().test_compressed()

    def test_compressed_gzip(self, tmp_path):
        for tp in self.test_files:
            p = tmp_path / "test.mnc.gz"
            p.write_bytes(gzip.compress(Path(tp["fname"]).read_bytes()))
            nib.testing.assert_data_similar(vx.load(p).get_fdata(), tp)


@pytest.mark.usefixtures("voxray_load")
class TestVoxrayMinc2File(nib_minc2.TestMinc2File):
    """nibabel's Minc2File tests, its load tests over ``vx.load``."""


class TestVoxrayMinc1Image(nib_minc1.TestMinc1Image):
    image_class = Minc1Image
    module = _VoxrayModule(Minc1Image)


class TestVoxrayMinc2Image(nib_minc2.TestMinc2Image):
    image_class = Minc2Image
    module = _VoxrayModule(Minc2Image)
