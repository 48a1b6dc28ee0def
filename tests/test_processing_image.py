"""voxray.processing.image against nilearn.image and nibabel.funcs: same values and dtypes,
lazy, DataArray in -> DataArray out, voxray's errors."""

from __future__ import annotations

import os
import pickle
import warnings

import nibabel as nib
import nibabel.funcs as nbf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import voxray as vx
import voxray.processing as vp
from voxray.errors import AffineMismatchError, InputError
from voxray.sources import open_source
from voxray.testing import NIBABEL_DATA, nilearn_data_dir

nli = pytest.importorskip("nilearn.image")

EX4D = os.path.join(NIBABEL_DATA, "example4d.nii.gz")
ANAT = os.path.join(NIBABEL_DATA, "anatomical.nii")


def _mni():
    return os.path.join(nilearn_data_dir(), "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")


def _same(out, ref, rtol=0.0):
    a, b = np.asarray(out.dataobj), np.asarray(ref.dataobj)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if rtol:  # largest abs error / largest abs reference value (float32 summation order)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        a64, b64 = np.nan_to_num(a.astype(np.float64)), np.nan_to_num(b.astype(np.float64))
        scale = float(np.max(np.abs(b64))) if b.size else 1.0
        assert float(np.max(np.abs(a64 - b64), initial=0)) <= rtol * (scale or 1.0)
    else:
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out.affine, ref.affine)
    assert isinstance(out, vx.Image)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(5)
    data = rng.normal(0, 3, (12, 10, 8, 7)).astype(np.float32)
    data[1, 1, 1, 1] = np.nan
    aff = np.array([[2, 0, 0, -10], [0, 2.5, 0, -20], [0, 0, 3, -5], [0, 0, 0, 1]], float)
    p = d / "run.nii.gz"
    nib.save(nib.Nifti1Image(data, aff), p)
    ints = d / "ints.nii"
    nib.save(nib.Nifti1Image(rng.integers(-50, 50, (12, 10, 8, 7)).astype(np.int16), aff), ints)
    mask = d / "mask.nii"
    nib.save(nib.Nifti1Image((rng.random((12, 10, 8)) > 0.4).astype(np.uint8), aff), mask)
    return {"run": p, "ints": ints, "mask": mask, "dir": d}


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        Client(lc) as client,
    ):
        yield client


@pytest.mark.parametrize("key", ["run", "ints"])
def test_mean_img_4d_and_list(run, key):
    p = str(run[key])
    _same(vp.mean_img(vx.load(p, chunks=(6, 5, 4, 3))), nli.mean_img(p), rtol=1e-6)
    vols = [nli.index_img(p, i) for i in range(3)]
    _same(vp.mean_img(vols), nli.mean_img(vols), rtol=1e-6)
    _same(vp.mean_img([p, p]), nli.mean_img([p, p]), rtol=1e-6)


def test_mean_img_nibabel_example_and_target_grid():
    _same(vp.mean_img(EX4D), nli.mean_img(EX4D), rtol=1e-6)
    pytest.importorskip("voxray.processing.resample")
    aff = np.diag([4.0, 4.0, 4.0, 1.0])
    ref = nli.mean_img(EX4D, target_affine=aff, target_shape=(20, 20, 10))
    _same(vp.mean_img(EX4D, target_affine=aff, target_shape=(20, 20, 10)), ref, rtol=1e-5)


@pytest.mark.parametrize(
    "formula",
    ["np.mean(a, axis=-1)", "a * 2 - b", "np.where(a > 0, a, b)", "a > 1", "np.std(a, axis=3)"],
)
def test_math_img(run, formula):
    a, b = str(run["run"]), str(run["ints"])
    out = vp.math_img(formula, a=vx.load(a, chunks=(6, 5, 4, 3)), b=b)
    _same(out, nli.math_img(formula, a=a, b=b), rtol=1e-6)
    if "axis" not in formula:  # same ndim as "a": its header can be copied
        out = vp.math_img(formula, copy_header_from="a", a=a, b=b)
        ref = nli.math_img(formula, copy_header_from="a", a=a, b=b)
        _same(out, ref, rtol=1e-6)
        assert out.header.get_xyzt_units() == ref.header.get_xyzt_units()


def test_math_img_mni_and_errors(run):
    ref = nli.math_img("img * 2 + 1", img=_mni())
    _same(vp.math_img("img * 2 + 1", img=_mni()), ref)
    with pytest.raises(AffineMismatchError):
        vp.math_img("a + b", a=str(run["run"]), b=_mni())
    with pytest.raises(InputError, match="formula"):
        vp.math_img("a +* 2", a=str(run["run"]))
    with pytest.raises(InputError, match="copy_header_from"):
        vp.math_img("a", copy_header_from="z", a=str(run["run"]))
    with pytest.raises(InputError, match="copy_header_from"):
        vp.math_img("np.mean(a, axis=-1)", copy_header_from="a", a=str(run["run"]))


@pytest.mark.parametrize("dtype", [np.float32, None, np.int16, np.float64])
def test_concat_imgs(run, dtype):
    p = str(run["run"])
    vols = [nli.index_img(p, i) for i in range(4)]
    _same(vp.concat_imgs(vols, dtype=dtype), nli.concat_imgs(vols, dtype=dtype))
    _same(
        vp.concat_imgs([p, str(run["ints"])], dtype=dtype),
        nli.concat_imgs([p, str(run["ints"])], dtype=dtype),
    )
    with pytest.raises(AffineMismatchError):
        vp.concat_imgs([p, _mni()])
    with pytest.raises(InputError):
        vp.concat_imgs([])


@pytest.mark.parametrize(
    "index", [0, -1, 3, slice(1, 5, 2), [0, 2, 2], [True, False] * 3 + [True]]
)
def test_index_img(run, index):
    for key in ("run", "ints"):
        p = str(run[key])
        _same(vp.index_img(vx.load(p), index), nli.index_img(p, index))
    if index in (0, -1):
        _same(vp.index_img(EX4D, index), nli.index_img(EX4D, index))


def test_index_errors_and_iter_img(run):
    p = str(run["run"])
    with pytest.raises(InputError, match="index"):
        vp.index_img(p, 7)
    with pytest.raises(InputError, match="index"):
        vp.index_img(p, "a")
    outs = list(vp.iter_img(p))
    refs = list(nli.iter_img(p))
    assert len(outs) == len(refs) == 7
    for o, r in zip(outs, refs, strict=True):
        _same(o, r)


def test_new_img_like_dtypes():
    ref = vx.load(ANAT)
    nref = nib.load(ANAT)
    for data in (
        np.ones(ref.shape, bool),
        np.arange(np.prod(ref.shape), dtype=np.int64).reshape(ref.shape),
        np.full(ref.shape, 2**40, np.int64),
        np.zeros(ref.shape, np.float32),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = nli.new_img_like(nref, data)
        import dask.array as da

        for d in (data, da.from_array(data, chunks=16)):
            o = vp.new_img_like(ref, d)
            _same(o, r)
    o = vp.new_img_like(ref, np.zeros(ref.shape), copy_header=True)
    assert o.header["scl_slope"] == 0 or np.isnan(o.header["scl_slope"])
    with pytest.raises(InputError):
        vp.new_img_like(ref, [1, 2])


@pytest.mark.parametrize(
    ("threshold", "two_sided"),
    [
        (1.0, True),
        (1.0, False),
        (-1.5, False),
        ("80%", True),
        ("35.5%", False),
        ("0%", True),
        ("100%", True),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_threshold_img(run, threshold, two_sided, masked):
    p = str(run["run"])
    mask = str(run["mask"]) if masked else None
    kw = {"two_sided": two_sided, "mask_img": mask}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nli.threshold_img(p, threshold, **kw)
    _same(vp.threshold_img(vx.load(p, chunks=(6, 5, 4, 2)), threshold, **kw), ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nli.threshold_img(p, threshold, cluster_threshold=4, **kw)
    _same(vp.threshold_img(p, threshold, cluster_threshold=4, **kw), ref)


def test_threshold_percentile_exact_beyond_the_gather_bound(monkeypatch):
    import voxray.processing.threshold as vi

    monkeypatch.setattr(vi, "EXACT_BELOW", 50)  # force several histogram passes
    for path in (ANAT, _mni()):
        for thr in ("97.3%", "50%", "12%"):
            ref = nli.threshold_img(path, thr, copy_header=True)
            _same(vp.threshold_img(vx.load(path, chunks=32), thr), ref)


@settings(max_examples=20, deadline=None)
@given(
    data=st.lists(st.integers(-5, 5), min_size=8, max_size=60).map(np.array),
    per=st.floats(0, 100),
    bound=st.integers(1, 10),
    chunk=st.integers(1, 9),
)
def test_percentile_matches_scipy(data, per, bound, chunk):
    import dask.array as da
    from scipy.stats import scoreatpercentile

    import voxray.processing.threshold as vi

    old = vi.EXACT_BELOW
    vi.EXACT_BELOW = bound
    try:
        x = da.from_array(data.astype(np.float32) / 3, chunks=chunk)
        got = vi._percentile(x, x == x, per)
    finally:
        vi.EXACT_BELOW = old
    assert got == float(scoreatpercentile(data.astype(np.float32) / 3, per))


def test_threshold_errors(run):
    p = str(run["run"])
    for bad in ("abc", "12", -1, None, "-5%"):
        with pytest.raises(InputError, match="threshold"):
            vp.threshold_img(p, bad)
    with pytest.raises(InputError, match="threshold"):
        vp.threshold_img(p, "-5%", two_sided=False)


def test_four_to_three_and_squeeze():
    refs = nbf.four_to_three(nib.load(EX4D))
    outs = vp.four_to_three(vx.load(EX4D))
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs, strict=True):
        _same(o, r)
        assert type(o).__name__ == type(r).__name__
    img = nib.Nifti1Image(np.zeros((3, 4, 5, 1, 1), np.int16), np.eye(4))
    _same(vp.squeeze_image(img), nbf.squeeze_image(img))
    img = nib.Nifti1Image(np.zeros((3, 4, 5, 2, 1), np.int16), np.eye(4))
    _same(vp.squeeze_image(img), nbf.squeeze_image(img))
    _same(vp.squeeze_image(ANAT), nbf.squeeze_image(nib.load(ANAT)))
    with pytest.raises(InputError, match="four"):
        vp.four_to_three(ANAT)


def test_nothing_is_read_at_call_time(run, fresh_cache):
    img = vx.load(run["run"], chunks=(6, 5, 4, 3))
    s = open_source(img.dataobj.reader.source).stats
    s.reset()
    outs = [
        vp.mean_img(img),
        vp.math_img("np.mean(a, axis=-1) + a[..., 0]", a=img),
        vp.concat_imgs([img, img]),
        vp.index_img(img, [0, 3]),
        next(vp.iter_img(img)),
        vp.threshold_img(img, 1.0, cluster_threshold=3),
        vp.four_to_three(img)[2],
        vp.squeeze_image(img),
        vp.new_img_like(img, img.to_dask()),
    ]
    assert s.bytes_read == 0
    img.to_dask().compute()
    once = s.bytes_read
    s.reset()
    np.asarray(outs[0].dataobj)
    assert s.bytes_read <= once  # every chunk read once for the mean
    s.reset()
    vp.threshold_img(img, "90%")  # a percentile reads the data a few times, no more
    assert 0 < s.bytes_read <= 4 * once


def test_dataarray_in_dataarray_out(run):
    xa = vx.load(run["run"]).to_xarray()
    for out in (
        vp.mean_img(xa),
        vp.math_img("a * 2", a=xa),
        vp.index_img(xa, 2),
        vp.threshold_img(xa, 1.0),
        vp.squeeze_image(xa),
    ):
        assert type(out).__name__ == "DataArray"
    np.testing.assert_allclose(
        vp.mean_img(xa).values, nli.mean_img(str(run["run"])).get_fdata(), rtol=1e-6
    )


def test_graph_pickles_and_runs_on_a_process_cluster(run, cluster):
    out = vp.threshold_img(
        vp.mean_img(vx.load(run["run"], chunks=(6, 5, 4, 3))), 0.5, cluster_threshold=2
    )
    arr = pickle.loads(pickle.dumps(out.to_dask()))
    got = cluster.compute(arr).result()
    ref = nli.threshold_img(nli.mean_img(str(run["run"])), 0.5, cluster_threshold=2)
    np.testing.assert_allclose(got, np.asarray(ref.dataobj), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("threshold", [10, "60%", -20])
def test_threshold_integer_data_keeps_its_dtype(run, threshold):
    p = str(run["ints"])
    two_sided = threshold != -20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nli.threshold_img(p, threshold, two_sided=two_sided, cluster_threshold=3)
    _same(vp.threshold_img(p, threshold, two_sided=two_sided, cluster_threshold=3), ref)


def test_mean_img_of_images_on_other_grids_resamples_onto_the_first(run):
    pytest.importorskip("voxray.processing.resample")
    p = str(run["run"])
    other = nli.resample_img(
        nli.index_img(p, slice(0, 3)),
        target_affine=np.diag([3.0, 3.0, 3.0, 1.0]),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nli.mean_img([p, other])
    _same(vp.mean_img([p, other]), ref, rtol=1e-5)
