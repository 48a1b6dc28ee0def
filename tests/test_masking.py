"""voxray.masking.mask and NiftiMasker against nilearn 0.14.1: masks exact, apply_mask /
unmask exact, counted reads, laziness, DataArray input, errors, a process cluster."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import dask
import dask.array as da
import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxray as vx
from voxray.errors import AffineMismatchError, InputError
from voxray.masking import (
    NiftiMasker,
    apply_mask,
    compute_background_mask,
    compute_epi_mask,
    unmask,
)
from voxray.sources import open_source
from voxray.testing import nilearn_data_dir

nm = pytest.importorskip("nilearn.masking")
from nilearn.maskers import NiftiMasker as NlNiftiMasker  # noqa: E402

EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
AFFINE = np.array([[3.0, 0, 0, -30], [0, 3.0, 0, -36], [0, 0, 3.5, -20], [0, 0, 0, 1]])


def _epi(shape=(20, 24, 18, 40), dtype=np.float32, seed=0) -> np.ndarray:
    """A brain-like 4-D series: a bright ellipsoid with a slow drift, noise outside."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape[:3]).astype(float)
    centre = (np.array(shape[:3]) - 1) / 2
    r = sum(((g - c) / (0.38 * s)) ** 2 for g, c, s in zip(grid, centre, shape[:3], strict=True))
    brain = (r < 1) * 800.0 + 50
    t = np.arange(shape[3])
    data = brain[..., None] * (1 + 0.01 * np.sin(t / 5)) + rng.normal(0, 20, shape)
    return np.abs(data).astype(dtype)


def _write(tmp_path, data, name="epi.nii", affine=AFFINE) -> Path:
    p = tmp_path / name
    nib.save(nib.Nifti1Image(data, affine), p)
    return p


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


# -- masks -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"opening": False},
        {"connected": False, "opening": 1},
        {"exclude_zeros": True},
        {"lower_cutoff": 0.1, "upper_cutoff": 0.9},
    ],
)
def test_compute_epi_mask_equals_nilearn(tmp_path, dtype, kw):
    p = _write(tmp_path, _epi(dtype=dtype))
    ours = compute_epi_mask(vx.load(p, chunks=(10, 12, 9, 7)), **kw)
    ref = nm.compute_epi_mask(str(p), **kw)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asanyarray(ref.dataobj))
    np.testing.assert_array_equal(ours.affine, ref.affine)
    assert np.asarray(ours.dataobj).dtype == np.asanyarray(ref.dataobj).dtype


def test_compute_epi_mask_on_nibabel_and_mni_template():
    ref = nm.compute_epi_mask(str(EXAMPLE4D))
    ours = compute_epi_mask(EXAMPLE4D)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asanyarray(ref.dataobj))
    d = nilearn_data_dir()
    if d is None:
        pytest.skip("nilearn data not found")
    t1 = d / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    ref = nm.compute_epi_mask(str(t1))
    ours = compute_epi_mask(vx.load(t1, chunks=(50, 60, 50)))
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asanyarray(ref.dataobj))
    ref = nm.compute_background_mask(str(t1))
    ours = compute_background_mask(t1)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asanyarray(ref.dataobj))


@pytest.mark.parametrize("kw", [{}, {"border_size": 3, "connected": True, "opening": 2}])
def test_compute_background_mask_equals_nilearn(tmp_path, kw):
    data = _epi()
    data[:3] = 0
    data[-2:] = 0
    data[:, :3] = 0
    data[:, -3:] = 0
    data[:, :, :3] = 0
    data[:, :, -2:] = 0
    p = _write(tmp_path, data)
    ours = compute_background_mask(vx.load(p, chunks=(10, 12, 9, 20)), **kw)
    ref = nm.compute_background_mask(str(p), **kw)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asanyarray(ref.dataobj))


def test_compute_epi_mask_with_target_affine(tmp_path):
    p = _write(tmp_path, _epi())
    target = np.diag([4.0, 4.0, 4.0, 1.0])
    target[:3, 3] = AFFINE[:3, 3]
    ref = nm.compute_epi_mask(str(p), target_affine=target)
    ours = compute_epi_mask(p, target_affine=target)
    np.testing.assert_array_equal(ours.affine, ref.affine)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asanyarray(ref.dataobj))


# -- apply_mask / unmask ---------------------------------------------------------------


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ci=st.integers(3, 20),
    cj=st.integers(3, 24),
    ck=st.integers(2, 18),
    ct=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8]),
    out=st.sampled_from(["f", None, np.float64]),
)
def test_apply_mask_and_unmask_exact(tmp_path, ci, cj, ck, ct, dtype, out):
    data = _epi(dtype=dtype, seed=ct)
    p = _write(tmp_path, data, f"a{ci}_{ct}.nii")
    mask_img = nm.compute_epi_mask(str(p))
    img = vx.load(p, chunks=(ci, cj, ck, ct))
    X = apply_mask(img, mask_img, dtype=out)
    assert isinstance(X, da.Array)
    assert X.chunks[0] == img.to_dask().chunks[3]
    ref = nm.apply_mask(str(p), mask_img, dtype=out)
    got = X.compute()
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
    back = unmask(X, mask_img)
    np.testing.assert_array_equal(np.asarray(back.dataobj), nm.unmask(ref, mask_img).get_fdata())
    v = unmask(X[3], mask_img)
    assert v.shape == mask_img.shape
    np.testing.assert_array_equal(
        np.asarray(v.dataobj), np.asanyarray(nm.unmask(ref[3], mask_img).dataobj)
    )


def test_apply_mask_nibabel_example_nan_and_smoothing(tmp_path):
    mask = nm.compute_epi_mask(str(EXAMPLE4D))
    np.testing.assert_array_equal(
        apply_mask(EXAMPLE4D, mask).compute(), nm.apply_mask(str(EXAMPLE4D), mask)
    )
    data = _epi()
    data[3, 4, 5, 6] = np.nan
    data[10, 12, 9, 2] = np.inf
    p = _write(tmp_path, data)
    m = np.ones(data.shape[:3], np.uint8)
    mimg = nib.Nifti1Image(m, AFFINE)
    for fin in (True, False):
        np.testing.assert_array_equal(
            apply_mask(p, mimg, ensure_finite=fin).compute(),
            nm.apply_mask(str(p), mimg, ensure_finite=fin),
        )
    pytest.importorskip("voxray.processing.smooth")
    got = apply_mask(p, mimg, smoothing_fwhm=6.0).compute()
    ref = nm.apply_mask(str(p), mimg, smoothing_fwhm=6.0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("chunks", [(20, 24, 18, 8), (10, 12, 9, 8)])
def test_apply_mask_reads_each_chunk_once_and_is_lazy(tmp_path, fresh_cache, chunks):
    data = _epi()
    p = _write(tmp_path, data)
    mask = nm.compute_epi_mask(str(p))
    img = vx.load(p, chunks=chunks)
    s = open_source(img.dataobj.reader.source).stats
    s.reset()
    img.to_dask().compute()
    once = s.bytes_read  # the reader's bytes for one pass over its chunks
    if chunks[:3] == data.shape[:3]:
        assert once == data.nbytes
    s.reset()
    X = apply_mask(img, mask)
    back = unmask(X, mask)
    assert s.bytes_read == 0  # lazy: nothing read at call time (the mask is in memory)
    X.compute()
    assert s.bytes_read == once
    s.reset()
    np.asarray(back.dataobj)
    assert s.bytes_read == once


def test_dataarray_input_and_output(tmp_path):
    p = _write(tmp_path, _epi())
    img = vx.load(p, chunks=(10, 12, 9, 10))
    arr = img.to_xarray()
    mask = compute_epi_mask(arr)
    assert type(mask).__name__ == "DataArray"
    ref = nm.compute_epi_mask(str(p))
    np.testing.assert_array_equal(np.asarray(mask.values), np.asanyarray(ref.dataobj))
    np.testing.assert_array_equal(apply_mask(arr, mask).compute(), nm.apply_mask(str(p), ref))
    back = unmask(apply_mask(arr, mask), mask)
    assert type(back).__name__ == "DataArray"


def test_errors_are_input_errors(tmp_path):
    p = _write(tmp_path, _epi())
    mask = np.ones((20, 24, 18), np.uint8)
    with pytest.raises(AffineMismatchError, match="mask_img and imgs"):
        apply_mask(p, nib.Nifti1Image(mask, np.eye(4)))
    with pytest.raises(InputError, match="empty"):
        apply_mask(p, nib.Nifti1Image(np.zeros_like(mask), AFFINE))
    with pytest.raises(InputError, match="2 values"):
        apply_mask(
            p, nib.Nifti1Image(np.arange(mask.size, dtype=np.int32).reshape(mask.shape), AFFINE)
        )
    with pytest.raises(InputError, match="shape"):
        unmask(np.zeros((3, 5)), nib.Nifti1Image(mask, AFFINE))
    with pytest.raises(InputError, match="order"):
        unmask(np.zeros(mask.size), nib.Nifti1Image(mask, AFFINE), order="X")
    with pytest.raises(InputError, match="cutoff"):
        compute_epi_mask(p, lower_cutoff=0.9, upper_cutoff=0.1)
    with pytest.raises(InputError):
        compute_epi_mask(42)
    with pytest.raises(InputError, match="high_variance_confounds"):
        NiftiMasker(high_variance_confounds=True).fit(p)
    with pytest.raises(InputError, match="mask_strategy"):
        NiftiMasker(mask_strategy="nope").fit(p)
    with pytest.raises(InputError, match="not fitted"):
        NiftiMasker().transform(p)
    with pytest.raises(InputError, match="imgs=None"):
        NiftiMasker().fit()


# -- NiftiMasker -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"mask_strategy": "epi"},
        {"mask_strategy": "epi", "standardize": "zscore_sample", "detrend": True},
        {
            "mask_strategy": "epi",
            "mask_args": {"opening": 1},
            "detrend": True,
            "high_pass": 0.01,
            "low_pass": 0.1,
            "t_r": 2.0,
            "standardize": "psc",
        },
        {"mask_strategy": "epi", "smoothing_fwhm": 5.0},
        {
            "mask_strategy": "epi",
            "dtype": "float64",
            "runs": np.repeat([0, 1], 20),
            "detrend": True,
        },
    ],
)
def test_nifti_masker_equals_nilearn(tmp_path, kw):
    if "smoothing_fwhm" in kw:
        pytest.importorskip("voxray.processing.smooth")
    data = _epi(dtype=np.int16)
    data[:2] = 0
    p = _write(tmp_path, data)
    conf = np.random.default_rng(1).normal(size=(40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_m = NlNiftiMasker(**kw, reports=False).fit(str(p))
        ref = ref_m.transform(str(p), confounds=conf)
        ours_m = NiftiMasker(**kw).fit(vx.load(p, chunks=(10, 12, 9, 10)))
        X = ours_m.transform(vx.load(p, chunks=(10, 12, 9, 10)), confounds=conf)
    np.testing.assert_array_equal(
        np.asarray(ours_m.mask_img_.dataobj), np.asanyarray(ref_m.mask_img_.dataobj)
    )
    assert isinstance(X, da.Array)
    got = X.compute()
    assert got.dtype == ref.dtype
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= 1e-6, err
    inv = ours_m.inverse_transform(X)
    np.testing.assert_allclose(
        np.asarray(inv.dataobj),
        ref_m.inverse_transform(ref).get_fdata(),
        rtol=0,
        atol=1e-6 * np.abs(ref).max(),
    )


def test_nifti_masker_target_affine_and_example4d(tmp_path):
    target = np.diag([4.0, 4.0, 4.0, 1.0])
    target[:3, 3] = AFFINE[:3, 3]
    p = _write(tmp_path, _epi())
    pytest.importorskip("voxray.processing.resample")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_m = NlNiftiMasker(mask_strategy="epi", target_affine=target, reports=False).fit(str(p))
        ref = ref_m.transform(str(p))
        ours_m = NiftiMasker(mask_strategy="epi", target_affine=target).fit(p)
        got = ours_m.transform(p).compute()
    np.testing.assert_array_equal(
        np.asarray(ours_m.mask_img_.dataobj), np.asanyarray(ref_m.mask_img_.dataobj)
    )
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NlNiftiMasker(reports=False).fit_transform(str(EXAMPLE4D))
        got = NiftiMasker().fit_transform(EXAMPLE4D).compute()
    np.testing.assert_array_equal(got, ref)


def test_graph_pickles_and_runs_on_process_cluster(tmp_path, cluster):
    p = _write(tmp_path, _epi())
    mask = compute_epi_mask(p)
    X = apply_mask(vx.load(p, chunks=(10, 12, 9, 10)), mask)
    from voxray.masking import clean

    Y = clean(X, detrend=True, standardize="zscore_sample", t_r=2.0, high_pass=0.02)
    Y = pickle.loads(pickle.dumps(Y))
    got = cluster.compute(Y).result()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = __import__("nilearn.signal").signal.clean(
            nm.apply_mask(str(p), mask),
            detrend=True,
            standardize="zscore_sample",
            t_r=2.0,
            high_pass=0.02,
        )
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-6
    back = unmask(X, mask)
    with dask.config.set(scheduler="sync"):
        local = np.asarray(back.dataobj)
    np.testing.assert_array_equal(cluster.compute(back.to_dask()).result(), local)
