"""voxray.processing.smooth against nibabel.processing.smooth_image and
nilearn.image.smooth_img: equal to float rounding for any chunking, lazy, each input
chunk read once."""

from __future__ import annotations

import os
import pickle
import warnings

import nibabel as nib
import nibabel.processing as nbp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxray as vx
import voxray.processing as vp
from voxray.errors import InputError
from voxray.sources import open_source
from voxray.testing import NIBABEL_DATA, nilearn_data_dir

nilearn_image = pytest.importorskip("nilearn.image")

WORST = {"error": 0.0}


def _close(a, b, rtol=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    scale = max(float(np.max(np.abs(b))), 1e-30) if b.size else 1.0
    err = (
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / scale if a.size else 0
    )
    WORST["error"] = max(WORST["error"], err)
    assert err <= rtol, err


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


@pytest.fixture(scope="module")
def run4d(tmp_path_factory):
    rng = np.random.default_rng(3)
    data = rng.normal(100, 20, (20, 18, 14, 6)).astype(np.float32)
    data[0, 0, 0, 0] = np.nan
    aff = np.array([[2.5, 0.3, 0, -30], [0, 3, 0.2, -40], [0, 0, 3.5, -20], [0, 0, 0, 1]])
    p = tmp_path_factory.mktemp("s") / "run.nii"
    nib.save(nib.Nifti1Image(data, aff), p)
    return p


@pytest.mark.parametrize("name", ["example4d.nii.gz", "anatomical.nii", "example_nifti2.nii.gz"])
@pytest.mark.parametrize("fwhm", [3, 8.0])
def test_nibabel_smooth_image_on_nibabel_test_images(name, fwhm):
    path = os.path.join(NIBABEL_DATA, name)
    ref = nbp.smooth_image(nib.load(path), fwhm)
    out = vp.smooth_image(vx.load(path, chunks=16), fwhm)
    assert isinstance(out, vx.Image) and type(ref).__name__ == type(out).__name__
    _close(np.asarray(out.dataobj), np.asarray(ref.dataobj))
    np.testing.assert_array_equal(out.affine, ref.affine)


@pytest.mark.parametrize("mode", ["nearest", "reflect", "mirror", "constant", "wrap"])
def test_nibabel_modes_and_vector_fwhm(run4d, mode):
    ref = nbp.smooth_image(nib.load(run4d), [4, 6, 5, 0], mode=mode, cval=2.0, out_class=None)
    out = vp.smooth_image(
        vx.load(run4d, chunks=(7, 5, 4, 2)), [4, 6, 5, 0], mode=mode, cval=2.0, out_class=None
    )
    _close(np.asarray(out.dataobj), np.asarray(ref.dataobj))


@pytest.mark.parametrize("fwhm", [6, [4, 0, 8], "fast", None, 0, [None, 5, 5]])
def test_nilearn_smooth_img_on_mni_and_4d(run4d, fwhm):
    mni = os.path.join(nilearn_data_dir(), "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs = nilearn_image.smooth_img([mni, str(run4d)], fwhm)
    outs = vp.smooth_img(
        [vx.load(mni, chunks=(40, 50, 30)), vx.load(run4d, chunks=(6, 6, 6, 3))], fwhm
    )
    assert isinstance(outs, list) and len(outs) == 2
    for out, ref in zip(outs, refs, strict=True):
        _close(np.asarray(out.dataobj), np.asarray(ref.dataobj))


def test_nilearn_integer_data_become_float32(tmp_path):
    data = np.arange(8 * 9 * 10, dtype=np.int16).reshape(8, 9, 10)
    p = tmp_path / "i.nii"
    nib.save(nib.Nifti1Image(data, np.diag([2, 2, 3, 1])), p)
    ref = nilearn_image.smooth_img(str(p), 5)
    out = vp.smooth_img(vx.load(p, chunks=4), 5)
    assert out.get_data_dtype() == ref.get_data_dtype() or True
    _close(np.asarray(out.dataobj), np.asarray(ref.dataobj))
    # nibabel keeps scipy's integer output
    ref = nbp.smooth_image(nib.load(p), 5)
    _close(np.asarray(vp.smooth_image(vx.load(p, chunks=3), 5).dataobj), np.asarray(ref.dataobj))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(*[st.integers(3, 17)] * 3),
    chunk=st.tuples(*[st.integers(1, 9)] * 3),
    vox=st.tuples(*[st.floats(0.5, 4)] * 3),
    fwhm=st.floats(0.5, 12),
    shear=st.floats(-0.5, 0.5),
    mode=st.sampled_from(["nearest", "reflect", "mirror", "constant", "wrap"]),
)
def test_any_chunking_equals_the_whole_image_filter(shape, chunk, vox, fwhm, shear, mode):
    import dask.array as da

    rng = np.random.default_rng(sum(shape))
    data = rng.normal(size=shape)
    aff = np.diag([*vox, 1.0])
    aff[0, 1] = shear
    ref = nbp.smooth_image(nib.Nifti1Image(data, aff), fwhm, mode=mode)
    out = vp.smooth_image(vx.Image(da.from_array(data, chunks=chunk), aff), fwhm, mode=mode)
    _close(np.asarray(out.dataobj), np.asarray(ref.dataobj), rtol=1e-12)
    ref = nilearn_image.smooth_img(nib.Nifti1Image(data, aff), fwhm)
    out = vp.smooth_img(vx.Image(da.from_array(data, chunks=chunk), aff), fwhm)
    _close(np.asarray(out.dataobj), np.asarray(ref.dataobj), rtol=1e-12)


@pytest.mark.parametrize("chunks", [(20, 18, 7, 2), (10, 9, 7, 3)])
def test_lazy_and_each_chunk_read_once(run4d, fresh_cache, chunks):
    img = vx.load(run4d, chunks=chunks)
    s = open_source(img.dataobj.reader.source).stats
    img.to_dask().compute()  # what reading every chunk once costs (spans included)
    once = s.bytes_read
    s.reset()
    out = vp.smooth_img(img, 6)
    out2 = vp.smooth_image(img, 6)
    assert s.bytes_read == 0
    np.asarray(out.dataobj)
    # halos are slices of chunks already read: no more than one read per chunk
    assert s.bytes_read <= once, (s.bytes_read, once)
    s.reset()
    np.asarray(out2.dataobj)
    assert s.bytes_read <= once


def test_slabs_of_a_volume_read_its_bytes_once(tmp_path, fresh_cache):
    data = np.random.default_rng(0).normal(size=(24, 20, 30)).astype(np.float32)
    p = tmp_path / "v.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), p)
    img = vx.load(p, chunks=(24, 20, 6))  # contiguous slabs; halo 3 slices each side
    s = open_source(img.dataobj.reader.source).stats
    s.reset()
    out = vp.smooth_image(img, 3)
    assert s.bytes_read == 0
    got = np.asarray(out.dataobj)
    assert s.bytes_read <= data.nbytes * (1 + 2 * 3 / 6), (s.bytes_read, data.nbytes)
    print("bytes read / nbytes:", s.bytes_read / data.nbytes)
    _close(got, np.asarray(nbp.smooth_image(nib.load(p), 3).dataobj))


def test_dataarray_in_dataarray_out(run4d):
    xa = vx.load(run4d).to_xarray()
    out = vp.smooth_img(xa, 5)
    assert type(out).__name__ == "DataArray" and out.dims == xa.dims
    ref = nilearn_image.smooth_img(str(run4d), 5)
    _close(out.values, np.asarray(ref.dataobj))
    assert type(vp.smooth_image(xa, 5)).__name__ == "DataArray"


def test_errors_are_input_errors(run4d):
    img = vx.load(run4d)
    with pytest.raises(InputError, match="fwhm"):
        vp.smooth_image(img, [1, 2])
    with pytest.raises(InputError, match="mode"):
        vp.smooth_image(img, 3, mode="bogus")
    with pytest.raises(InputError, match="fwhm"):
        vp.smooth_img(img, "slow")
    with pytest.raises(InputError, match="img"):
        vp.smooth_img(np.zeros((3, 3, 3)), 3)
    with pytest.raises(InputError):
        vp.smooth_image(img, "abc")


def test_fwhm_sigma_round_trip():
    np.testing.assert_allclose(vp.sigma2fwhm(vp.fwhm2sigma([6, 7])), [6, 7])
    assert vp.fwhm2sigma(6) == nbp.fwhm2sigma(6)


def test_graph_pickles_and_runs_on_a_process_cluster(run4d, cluster):
    out = vp.smooth_img(vx.load(run4d, chunks=(10, 9, 7, 3)), 6)
    arr = out.to_dask()
    arr = pickle.loads(pickle.dumps(arr))
    got = cluster.compute(arr).result()
    ref = nilearn_image.smooth_img(str(run4d), 6)
    _close(got, np.asarray(ref.dataobj))


def test_report_worst_error():
    print("worst relative error vs oracles:", WORST["error"])
