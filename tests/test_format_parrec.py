"""Philips PAR/REC against nibabel, the oracle.

Every PAR file nibabel ships is opened with every combination of nibabel's options
(``permit_truncated``, ``strict_sort``) and both scalings (``dv``, ``fp``), each beside
its own REC where nibabel ships one (three do) and otherwise beside a REC of the right
size generated here (random values), so voxray and nibabel read the same pair. Where
nibabel raises, voxray raises a :class:`voxray.VoxrayError`; elsewhere class, shape,
dtypes, values, affine and header are nibabel's. Reads are checked on hypothesis-drawn
basic indices, and counted: a volume reads exactly its slices' bytes, whatever the REC
row order. nibabel's own image API and proxy API tests run on voxray's class.
"""

from __future__ import annotations

import io
import pickle
import shutil
import warnings

import nibabel as nib
import nibabel.tests.test_image_api as nib_image_api
import nibabel.tests.test_proxy_api as nib_proxy_api
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel.fileholders import FileHolder
from nibabel.parrec import PARRECError, PARRECHeader

import voxray as vx
from voxray.formats.parrec import PARRECImage
from voxray.formats.parrec.reader import ParrecArrayProxy
from voxray.sources import open_source
from voxray.testing import NIBABEL_DATA
from voxray.testing.strategies import basic_index, spatial_slices

PARS = sorted(p.name for p in NIBABEL_DATA.glob("*.PAR"))
SHIPPED_RECS = {p.stem for p in NIBABEL_DATA.glob("*.REC")}
OPTIONS = [
    dict(permit_truncated=pt, strict_sort=ss) for pt in (False, True) for ss in (False, True)
]


def _rec_rows(par) -> tuple[tuple[int, int], int] | None:
    """(in-plane shape, REC rows) of a PAR, as permissively as nibabel reads it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with open(par) as f:
                hdr = PARRECHeader.from_fileobj(f, permit_truncated=True)
        except PARRECError:
            return None
    shape = hdr.get_rec_shape()
    return (int(shape[0]), int(shape[1])), int(shape[2])


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Every nibabel PAR beside a REC: nibabel's, or random values of the right size."""
    d = tmp_path_factory.mktemp("parrec")
    rng = np.random.default_rng(11)
    for name in PARS:
        stem = name[: -len(".PAR")]
        shutil.copy(NIBABEL_DATA / name, d / name)
        if stem in SHIPPED_RECS:
            shutil.copy(NIBABEL_DATA / f"{stem}.REC", d / f"{stem}.REC")
            continue
        rows = _rec_rows(d / name)
        (nx, ny), n = rows if rows is not None else ((4, 4), 1)
        rng.integers(0, 4096, nx * ny * n, dtype="<u2").tofile(d / f"{stem}.REC")
    return d


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def assert_same_header(a: PARRECHeader, b: PARRECHeader) -> None:
    assert type(a) is type(b) is PARRECHeader
    assert a == b
    assert a.general_info.keys() == b.general_info.keys()
    for key, value in a.general_info.items():
        np.testing.assert_array_equal(value, b.general_info[key], err_msg=key)
    assert a.image_defs.dtype == b.image_defs.dtype
    for field in a.image_defs.dtype.names:
        np.testing.assert_array_equal(a.image_defs[field], b.image_defs[field], err_msg=field)
    assert a.get_zooms() == b.get_zooms()
    np.testing.assert_array_equal(a.get_sorted_slice_indices(), b.get_sorted_slice_indices())
    assert a.get_volume_labels().keys() == b.get_volume_labels().keys()
    assert (a.permit_truncated, a.strict_sort) == (b.permit_truncated, b.strict_sort)


def assert_same_image(img, ref, *, whole=True, keys=((..., -1), (slice(None), 7))) -> None:
    assert isinstance(img, nib.parrec.PARRECImage) and isinstance(img, vx.Image)
    assert type(img) is PARRECImage
    assert img.shape == ref.shape
    assert img.get_data_dtype() == ref.get_data_dtype()
    assert img.dataobj.dtype == ref.dataobj.dtype
    assert isinstance(img.dataobj, ParrecArrayProxy) and not img.in_memory
    np.testing.assert_array_equal(img.affine, ref.affine)
    assert_same_header(img.header, ref.header)
    if whole:
        ours, theirs = np.asanyarray(img.dataobj), np.asanyarray(ref.dataobj)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(img.dataobj.get_unscaled(), ref.dataobj.get_unscaled())
        np.testing.assert_array_equal(img.get_fdata(), ref.get_fdata())
    else:  # a large file: by default the last volume and one plane across every volume
        for key in keys:
            ours, theirs = img.dataobj[key], ref.dataobj[key]
            assert ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs)


# -- every PAR nibabel ships, every option, both scalings ---------------------------------


@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items())
)
@pytest.mark.parametrize("name", PARS)
def test_every_nibabel_par(pairs, name, options):
    par = pairs / name
    for scaling in ("dv", "fp"):
        try:
            ref = _quiet(nib.load, par, scaling=scaling, **options)
        except Exception as e:  # nibabel refuses it: so does voxray, with a VoxrayError
            with pytest.raises(vx.VoxrayError) as info:
                _quiet(vx.load, par, scaling=scaling, **options)
            assert name in str(info.value)
            if isinstance(e, PARRECError):
                assert isinstance(info.value, PARRECError)
            continue
        img = _quiet(vx.load, par, scaling=scaling, **options)
        big = np.prod(img.shape) * 8 > 8 * 2**20  # float64 bytes
        # a large file's values once (default options), its header under every option
        keys = ((..., -1),) if options == OPTIONS[0] else ((..., 0, 0),)
        assert_same_image(img, ref, whole=not big, keys=keys)


def test_nibabel_fileslice_negative_start():
    # why the slice oracle is nibabel's whole array: nibabel's own slice is wrong here
    ref = nib.load(NIBABEL_DATA / "phantom_varscale.PAR")
    key = (..., slice(-4, None))
    assert not np.array_equal(ref.dataobj[key], np.asarray(ref.dataobj)[key])
    img = vx.load(NIBABEL_DATA / "phantom_varscale.PAR")
    np.testing.assert_array_equal(img.dataobj[key], np.asarray(ref.dataobj)[key])


def test_nibabel_raises_where_expected(pairs):
    # the corpus has files nibabel refuses: the parametrized test above covers both sides
    refused = set()
    for name in PARS:
        try:
            _quiet(nib.load, pairs / name)
        except PARRECError:
            refused.add(name)
    assert {"NA.PAR", "phantom_truncated.PAR", "ADC_Map.PAR"} <= refused


@pytest.mark.parametrize("suffix", [".PAR", ".REC", ".par", ".rec"])
def test_either_name_any_case(tmp_path, suffix):
    upper = suffix.isupper()
    for ext in (".PAR", ".REC"):
        src = NIBABEL_DATA / f"phantom_varscale{ext}"
        shutil.copy(src, tmp_path / f"v{ext if upper else ext.lower()}")
    img = vx.load(tmp_path / f"v{suffix}")
    ref = nib.load(tmp_path / f"v{suffix}")
    assert_same_image(img, ref)
    assert img.get_filename() == ref.get_filename()


def test_load_options_reach_nibabel(pairs):
    par = pairs / "T1_3echo_mag_real_imag_phase.PAR"
    lax, strict = vx.load(par), vx.load(par, strict_sort=True)
    assert not lax.header.strict_sort and strict.header.strict_sort
    ref = nib.load(par, strict_sort=True, scaling="fp")
    assert_same_image(vx.load(par, strict_sort=True, scaling="fp"), ref)
    assert not np.array_equal(lax.dataobj[..., 1], strict.dataobj[..., 1])
    with pytest.warns(UserWarning, match="Header inconsistency"):
        img = vx.load(pairs / "phantom_truncated.PAR", permit_truncated=True)
    assert img.header.permit_truncated


# -- nibabel's own test_image_creation, with voxray's functions ---------------------------


def test_image_creation_as_nibabel():
    eg_par, eg_rec = (NIBABEL_DATA / f"phantom_EPI_asc_CLEAR_2_1{e}" for e in (".PAR", ".REC"))
    tr_par, tr_rec = (NIBABEL_DATA / f"phantom_truncated{e}" for e in (".PAR", ".REC"))
    hdr = nib.load(eg_par).header
    arr_dv = np.array(nib.parrec.PARRECArrayProxy(str(eg_rec), hdr, scaling="dv"))
    arr_fp = np.array(nib.parrec.PARRECArrayProxy(str(eg_rec), hdr, scaling="fp"))
    good_map = dict(image=FileHolder(str(eg_rec)), header=FileHolder(str(eg_par)))
    trunc_map = dict(image=FileHolder(str(tr_rec)), header=FileHolder(str(tr_par)))
    for func, good, trunc in (
        (PARRECImage.from_filename, eg_par, tr_par),
        (PARRECImage.load, eg_par, tr_par),
        (vx.load, eg_par, tr_par),
        (PARRECImage.from_file_map, good_map, trunc_map),
    ):
        np.testing.assert_array_equal(func(good).dataobj, arr_dv)
        if func is not vx.load:  # nibabel's options are keyword only
            with pytest.raises(TypeError):
                func(good, False)
        np.testing.assert_array_equal(func(good, scaling="fp").dataobj, arr_fp)
        np.testing.assert_array_equal(
            func(good, permit_truncated=False, scaling="dv").dataobj, arr_dv
        )
        with pytest.raises(PARRECError):
            func(trunc)
        with pytest.raises(vx.InvalidHeaderError, match=r"phantom_truncated\.PAR"):
            func(trunc, permit_truncated=False)
        for scaling, arr in (("dv", arr_dv), ("fp", arr_fp)):
            with pytest.warns(UserWarning, match="Header inconsistency"):
                img = func(trunc, permit_truncated=True, scaling=scaling)
            np.testing.assert_array_equal(img.dataobj, arr)


def test_file_objects():
    par = (NIBABEL_DATA / "phantom_varscale.PAR").read_bytes()
    rec = (NIBABEL_DATA / "phantom_varscale.REC").read_bytes()
    fmap = dict(
        image=FileHolder(fileobj=io.BytesIO(rec)), header=FileHolder(fileobj=io.BytesIO(par))
    )
    img = PARRECImage.from_file_map(fmap, scaling="fp")
    ref = nib.parrec.PARRECImage.from_file_map(  # nibabel reads the header as text
        dict(
            image=FileHolder(fileobj=io.BytesIO(rec)),
            header=FileHolder(fileobj=io.StringIO(par.decode())),
        ),
        scaling="fp",
    )
    assert_same_image(img, ref)
    assert img.provenance.files == frozenset()


# -- reads: hypothesis-drawn indices, I/O counted -----------------------------------------


@pytest.fixture(scope="module")
def permuted(pairs):
    """A pair whose sorted slices are not the REC's order (strict sort, 4-D)."""
    par = pairs / "ASL_3D_Multiecho.PAR"
    img, ref = vx.load(par, strict_sort=True), nib.load(par, strict_sort=True)
    rows = ref.header.get_sorted_slice_indices()
    assert np.any(np.diff(rows) != 1)
    return img, ref


@pytest.fixture(scope="module")
def varscale_both():
    par = NIBABEL_DATA / "phantom_varscale.PAR"
    return {s: (vx.load(par, scaling=s), nib.load(par, scaling=s)) for s in ("dv", "fp")}


_WHOLE: dict = {}


def _check_key(img, ref, key):
    """voxray's ``dataobj[key]`` is nibabel's whole array indexed by numpy, with the dtype
    of nibabel's own ``dataobj[key]``. (nibabel's slices are not always its array's:
    ``fileslice`` reads only the last element for a negative start before the axis
    start, e.g. ``[..., -4:]`` of 3 volumes, and some empty selections raise.)"""
    whole = _WHOLE.get(id(ref))
    if whole is None:
        whole = _WHOLE[id(ref)] = np.asarray(ref.dataobj)
    ours = img.dataobj[key]
    np.testing.assert_array_equal(ours, whole[key])
    try:
        theirs = ref.dataobj[key]
    except (ValueError, OSError):
        theirs = whole[key]
    assert np.asarray(ours).dtype == np.asarray(theirs).dtype


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), scaling=st.sampled_from(["dv", "fp"]))
def test_hypothesis_slices_varying_scale(varscale_both, data, scaling):
    img, ref = varscale_both[scaling]
    _check_key(img, ref, data.draw(basic_index(img.shape)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slices_permuted_rows(permuted, data):
    img, ref = permuted
    key = data.draw(basic_index(img.shape))
    _check_key(img, ref, key)
    np.testing.assert_array_equal(img.dataobj.sliced(key), np.asarray(ref.dataobj)[key])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hypothesis_slicer(permuted, data):
    img, ref = permuted
    key = data.draw(spatial_slices(img.shape))
    try:
        expected = ref.slicer[key]
    except (IndexError, ValueError) as e:
        with pytest.raises(type(e)):
            img.slicer[key]
        return
    sliced = img.slicer[key]
    assert isinstance(sliced, PARRECImage) and isinstance(sliced.dataobj, vx.ArrayProxy)
    np.testing.assert_array_equal(np.asarray(sliced.dataobj), expected.get_fdata())
    # voxray keeps every voxel's world position (nibabel #1533 for reversed slices)
    sel = [s.indices(n) for s, n in zip(key[:3], img.shape)]
    ijk = np.array([start for start, _, _ in sel] + [1.0])
    np.testing.assert_allclose(sliced.affine @ [0, 0, 0, 1], img.affine @ ijk)


def _rec_stats(img):
    return open_source(img.dataobj.reader.source).stats


def test_open_reads_no_data(permuted, pairs):
    from voxray.sources import clear_cache

    clear_cache()
    img = vx.load(pairs / "ASL_3D_Multiecho.PAR", strict_sort=True)
    assert _rec_stats(img).bytes_read <= 4  # the gzip magic check only


def test_one_volume_reads_its_slices(permuted):
    img, ref = permuted
    nx, ny, nz, nt = img.shape
    s = _rec_stats(img)
    for t in (0, 5, nt - 1):
        s.reset()
        np.testing.assert_array_equal(img.dataobj[..., t], ref.dataobj[..., t])
        assert s.bytes_read == nx * ny * nz * 2
        assert s.requests <= nz
    s.reset()
    np.testing.assert_array_equal(img.dataobj[:, :, 3, 7], ref.dataobj[:, :, 3, 7])
    assert (s.bytes_read, s.requests) == (nx * ny * 2, 1)
    s.reset()
    img.dataobj[10, 20, 3, 7]
    assert s.bytes_read == 2


def test_consecutive_rows_are_one_read(pairs):
    img = vx.load(pairs / "T2_.PAR")  # lax sort: rows in file order
    s = _rec_stats(img)
    s.reset()
    img.dataobj[..., 1]
    assert (s.requests, s.bytes_read) == (1, np.prod(img.shape[:3]) * 2)


# -- dask, xarray, reorientation, pickling, a process cluster -----------------------------


def test_to_dask_and_canonical(permuted):
    img, ref = permuted
    x = img.to_dask(chunks={3: 1})
    assert x.chunks[3] == (1,) * img.shape[3]
    np.testing.assert_array_equal(x[..., 4].compute(), ref.dataobj[..., 4])
    # the reader's own values are the scaled ones: what writers copy
    np.testing.assert_array_equal(img.dataobj.to_dask(raw=True).compute(), ref.get_fdata())
    can, can_ref = vx.as_closest_canonical(img), nib.as_closest_canonical(ref)
    assert isinstance(can, PARRECImage) and isinstance(can.dataobj, vx.ArrayProxy)
    np.testing.assert_array_equal(can.affine, can_ref.affine)
    s = _rec_stats(img)
    s.reset()
    vol = can.dataobj[..., 2]
    assert s.bytes_read == np.prod(img.shape[:3]) * 2  # still one volume's slices
    np.testing.assert_array_equal(vol, can_ref.dataobj[..., 2])


def test_to_xarray(pairs):
    par = pairs / "phantom_EPI_asc_CLEAR_2_1.PAR"
    img, ref = vx.load(par), nib.load(par)
    da = img.to_xarray()
    assert da.dims == ("i", "j", "k", "t") and da.name == "phantom_EPI_asc_CLEAR_2_1"
    np.testing.assert_array_equal(da[..., 1].values, ref.dataobj[..., 1])
    i, j, k = 5, 17, 3
    xyz = ref.affine @ [i, j, k, 1]
    point = da.isel(i=i, j=j, k=k)
    np.testing.assert_allclose([float(point[c]) for c in "xyz"], xyz[:3])
    np.testing.assert_allclose(da["t"].values, np.arange(3) * ref.header.get_zooms()[3])


def test_pickles_small(permuted):
    img, _ = permuted
    for obj in (img, img.dataobj, img.to_dask()):
        blob = pickle.dumps(obj)
        assert len(blob) < 200_000
    back = pickle.loads(pickle.dumps(img))
    assert isinstance(back.dataobj, ParrecArrayProxy)
    np.testing.assert_array_equal(back.dataobj[..., 3], img.dataobj[..., 3])


@pytest.mark.slow
def test_process_cluster(permuted):
    distributed = pytest.importorskip("distributed")
    img, ref = permuted
    x = img.to_dask(chunks={3: 2})
    with (
        distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        mean = client.compute(x.mean(axis=3)).result()
    np.testing.assert_allclose(mean, ref.get_fdata().mean(axis=3))


# -- conversion: NIfTI and NIfTI-Zarr ----------------------------------------------------


@pytest.fixture(scope="module")
def varscale():
    par = NIBABEL_DATA / "phantom_varscale.PAR"
    return vx.load(par), nib.load(par)


def test_save_nifti_as_nibabel(varscale, tmp_path):
    img, ref = varscale
    vx.save(img, tmp_path / "vx.nii.gz")
    nib.save(ref, tmp_path / "nib.nii.gz")  # nibabel's conversion (uint16, rounded)
    ours, theirs = nib.load(tmp_path / "vx.nii.gz"), nib.load(tmp_path / "nib.nii.gz")
    assert ours.get_data_dtype() == theirs.get_data_dtype()
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-5)


def test_save_nifti_float_keeps_values(varscale, tmp_path):
    img, ref = varscale
    expected = nib.Nifti1Image(ref.get_fdata(), ref.affine)
    vx.save(img, tmp_path / "f.nii.gz", dtype=np.float64)
    out = nib.load(tmp_path / "f.nii.gz")
    np.testing.assert_array_equal(out.get_fdata(), expected.get_fdata())
    np.testing.assert_allclose(out.affine, expected.affine, atol=1e-5)
    vx.save(img.to_xarray(), tmp_path / "x.nii")  # the DataArray's header: float64
    np.testing.assert_array_equal(nib.load(tmp_path / "x.nii").get_fdata(), expected.get_fdata())


def test_to_zarr(varscale, tmp_path):
    img, ref = varscale
    expected = nib.Nifti1Image(ref.get_fdata(), ref.affine)
    vx.to_zarr(img.to_xarray(), tmp_path / "a.nii.zarr")
    z = vx.load(tmp_path / "a.nii.zarr")
    np.testing.assert_array_equal(z.get_fdata(), expected.get_fdata())
    np.testing.assert_allclose(z.affine, expected.affine, atol=1e-5)
    vx.to_zarr(img, tmp_path / "b.nii.zarr")  # the image itself: as nibabel's NIfTI conversion
    nib.save(ref, tmp_path / "nib.nii")
    np.testing.assert_array_equal(
        vx.load(tmp_path / "b.nii.zarr").get_fdata(), nib.load(tmp_path / "nib.nii").get_fdata()
    )


def test_cli_info_and_convert(tmp_path, capsys):
    import json

    from voxray.cli import main

    par = NIBABEL_DATA / "phantom_varscale.PAR"
    assert main(["info", "--json", str(par)]) == 0
    d = json.loads(capsys.readouterr().out)
    ref = nib.load(par)
    assert d["nibabel_class"] == "PARRECImage" and d["shape"] == list(ref.shape)
    np.testing.assert_allclose(d["affine"], ref.affine, atol=1e-5)
    assert main(["info", str(par)]) == 0
    assert "PAR" in capsys.readouterr().out
    for dst in ("c.nii.gz", "c.nii.zarr"):
        assert main(["convert", str(par), str(tmp_path / dst)]) == 0
        np.testing.assert_allclose(vx.load(tmp_path / dst).affine, ref.affine, atol=1e-5)


# -- errors ------------------------------------------------------------------------------


def _pair(tmp_path, stem="phantom_varscale"):
    for ext in (".PAR", ".REC"):
        shutil.copy(NIBABEL_DATA / f"{stem}{ext}", tmp_path / f"x{ext}")
    return tmp_path / "x.PAR", tmp_path / "x.REC"


def test_truncated_rec(tmp_path):
    par, rec = _pair(tmp_path)
    rec.write_bytes(rec.read_bytes()[:-100])
    with pytest.raises(vx.TruncatedFileError, match=r"x\.REC' holds \d+ bytes"):
        vx.load(par)
    with pytest.raises(vx.TruncatedFileError):
        PARRECImage.from_filename(rec)


def test_missing_rec(tmp_path):
    par, rec = _pair(tmp_path)
    rec.unlink()
    with pytest.raises(vx.ImageNotFoundError, match=r"x\.REC"):
        vx.load(par)
    with pytest.raises(FileNotFoundError):
        vx.load(par)


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated-header", "bad-number", "bad-general-line", "pixel-size", "empty"],
)
def test_bad_par(tmp_path, damage):
    par, _ = _pair(tmp_path)
    text = par.read_text()
    lines = text.splitlines(keepends=True)
    if damage == "garbage":
        par.write_bytes(b"\x00\xffnot a PAR file" * 10)
    elif damage == "truncated-header":
        par.write_text(text[: len(text) // 3])
    elif damage == "bad-number":
        i = next(n for n, line in enumerate(lines) if line.strip() and line.strip()[0].isdigit())
        lines[i] = lines[i].replace(" 1 ", " x ", 1)
        par.write_text("".join(lines))
    elif damage == "bad-general-line":
        i = next(
            n for n, line in enumerate(lines) if line.startswith(".    Max. number of slices")
        )
        lines[i] = ".    Max. number of slices/locations  :   nine\n"
        par.write_text("".join(lines))
    elif damage == "pixel-size":  # 16-bit pixels become 32-bit: nibabel refuses
        i = next(n for n, line in enumerate(lines) if line.strip() and line.strip()[0].isdigit())
        fields = lines[i].split()
        fields[7] = "32"
        lines[i] = "  ".join(fields) + "\n"
        par.write_text("".join(lines))
    else:
        par.write_bytes(b"")
    with pytest.raises(Exception) as nib_info:
        _quiet(nib.load, par)
    with pytest.raises(vx.InvalidHeaderError, match=r"x\.PAR") as info:
        _quiet(vx.load, par)
    assert isinstance(info.value, PARRECError)
    assert not isinstance(nib_info.value, vx.VoxrayError)


def test_bad_scaling_and_mmap(tmp_path):
    par, _ = _pair(tmp_path)
    with pytest.raises(vx.VoxrayError, match=r"scaling must be 'dv'.*'xx'"):
        vx.load(par, scaling="xx")
    with pytest.raises(ValueError):
        PARRECImage.from_filename(par, mmap="r+")


def test_writing_par_rec_is_refused(varscale, tmp_path):
    img, _ = varscale
    for name in ("y.PAR", "y.rec"):
        with pytest.raises(vx.UnsupportedFormatError, match=name):
            vx.save(img, tmp_path / name)
        with pytest.raises(vx.UnsupportedFormatError):
            img.to_filename(tmp_path / name)
    with pytest.raises(vx.UnsupportedFormatError):
        img.to_file_map()
    img.to_filename(tmp_path / "y.nii")  # another format's name converts
    np.testing.assert_array_equal(nib.load(tmp_path / "y.nii").shape, img.shape)


def test_par_without_its_suffix(tmp_path):
    par, _ = _pair(tmp_path)
    odd = tmp_path / "header.txt"
    shutil.copy(par, odd)
    with pytest.raises(vx.NotAnImageError, match=r"PAR header.*\.PAR"):
        vx.load(odd)


# -- remote: byte ranges over HTTP --------------------------------------------------------


def test_remote_http(permuted, pairs, tmp_path):
    from voxray.testing.httpserver import RangeServer

    _, ref = permuted
    for ext in (".PAR", ".REC"):
        shutil.copy(pairs / f"ASL_3D_Multiecho{ext}", tmp_path / f"asl{ext}")
    with RangeServer(tmp_path) as server:
        img = vx.load(server.url("asl.PAR"), strict_sort=True)
        assert_same_image(img, ref, whole=False)
        nx, ny, nz, _ = img.shape
        server.reset_counts()
        np.testing.assert_array_equal(img.dataobj[..., 6], ref.dataobj[..., 6])
        assert server.bytes_sent <= nx * ny * nz * 2 + 64 * 1024  # its slices (and gaps)


# -- nibabel's own API tests --------------------------------------------------------------


class TestVoxrayPARRECAPI(nib_image_api.TestPARRECAPI):
    """nibabel's PAR/REC image API validators (data interface, affine, header shape,
    get/set dtype, file names), with ``vx.load`` as the loader and voxray's class."""

    klass = PARRECImage

    def loader(self, fname):
        return vx.load(fname)


class TestVoxrayPARRECProxyAPI(nib_proxy_api.TestPARRECAPI):
    """nibabel's proxy API validators on voxray's PAR/REC proxy."""

    def _func_dict(self, rec_name):
        ref = nib.parrec.load(rec_name)

        def eg_func():
            img = vx.load(rec_name)
            return img.dataobj, open(rec_name, "rb"), img.header

        return eg_func, dict(shape=ref.shape, dtype_out=np.float64, arr_out=ref.get_fdata())


def test_to_xarray_of_a_par_nibabel_cannot_convert_to_nifti():
    """A PAR whose general information lacks a field nibabel's NIfTI conversion wants
    (fuzz --seed 0 --case 39685 damaged the 'Examination name' line): nibabel's
    as_analyze_map raises KeyError('exam_name'); the DataArray is still built, from a
    plain NIfTI header with the PAR's shape and zooms."""
    par = NIBABEL_DATA / "phantom_EPI_asc_CLEAR_2_1.PAR"
    img, ref = vx.load(par), nib.load(par)
    del img.header.general_info["exam_name"]
    with pytest.raises(KeyError):
        nib.Nifti1Header.from_header(img.header)
    da = img.to_xarray()
    np.testing.assert_array_equal(da.values, ref.get_fdata())
    assert da.dims == ("i", "j", "k", "t")
