"""The issue's analysis, end to end: a 4-D run from object storage (a real S3 API server
on 127.0.0.1) and over HTTP ranges, resampled, smoothed, masked, cleaned and correlated
with a seed's time course, on a cluster of worker processes; answers against nilearn's
on the same file read locally. Damaged inputs fail with voxray's errors, at compute time.
"""

from __future__ import annotations

import os
import pickle

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.testing import NIBABEL_DATA
from voxray.testing.httpserver import RangeServer

nilearn = pytest.importorskip("nilearn")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A BOLD-like run: nibabel's anatomical.nii (33 x 41 x 25), 36 volumes with a
    drift and noise, int16 with scaling, oblique (rotated 10 degrees about z), .nii.gz."""
    d = tmp_path_factory.mktemp("run")
    anat = nib.load(os.path.join(NIBABEL_DATA, "anatomical.nii"))
    vol = np.asarray(anat.dataobj, np.float64)
    rng = np.random.default_rng(14)
    nt = 36
    t = np.arange(nt)
    seed_signal = np.sin(t / 3.0)
    data = vol[..., None] * (1 + 0.002 * t) + rng.normal(0, 4, (*vol.shape, nt))
    data[10:16, 14:20, 10:14] += 300 * seed_signal  # a "network" correlated with the seed
    data[20:26, 20:26, 10:14] += 300 * seed_signal
    c, s = np.cos(0.17), np.sin(0.17)
    affine = np.array(
        [[2 * c, -2 * s, 0, -40], [2 * s, 2 * c, 0, -50], [0, 0, 2, -30], [0, 0, 0, 1]]
    )
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_data_dtype(np.int16)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 2.0
    path = d / "bold.nii.gz"
    nib.save(img, path)
    return path


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


def _seed_map(X, seed_columns):
    """Pearson correlation of every column of X with the mean of ``seed_columns``."""
    seed = X[:, seed_columns].mean(axis=1)
    seed = (seed - seed.mean()) / seed.std()
    Xc = (X - X.mean(axis=0)) / X.std(axis=0)
    return (Xc * seed[:, None]).mean(axis=0)


@pytest.mark.slow
def test_seed_connectivity_from_s3_on_a_process_cluster_equals_nilearn(run, s3, cluster):
    from nilearn.image import smooth_img as nl_smooth
    from nilearn.maskers import NiftiMasker as NlMasker
    from nilearn.masking import compute_epi_mask as nl_epi

    import voxray.masking as vm
    import voxray.processing as vp

    key = f"{s3.bucket}/bold.nii.gz"
    s3.fs.put(str(run), key)
    img = vx.load(f"s3://{key}", storage_options=s3.options)
    ref = nib.load(run)

    smoothed = vp.smooth_img(img, 6)
    mask = vm.compute_epi_mask(smoothed)
    nl_mask = nl_epi(nl_smooth(ref, 6))
    np.testing.assert_array_equal(np.asarray(mask.dataobj), np.asarray(nl_mask.dataobj))

    masker = vm.NiftiMasker(mask_img=mask, detrend=True, standardize="zscore_sample", t_r=2.0)
    X = masker.fit_transform(smoothed)
    graph = pickle.dumps(X.__dask_graph__())
    assert b"S3FileSystem" not in graph  # tasks hold plain values: the URL, not a handle
    got = X.compute()  # on the process cluster (the client is the default scheduler)
    want = NlMasker(mask_img=nl_mask, detrend=True, standardize="zscore_sample", t_r=2.0)
    want = want.fit_transform(nl_smooth(ref, 6))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()

    # The seed: the voxels of the first network's box; its map is high on both boxes.
    seed_box = np.zeros(img.shape[:3], bool)
    seed_box[11:15, 15:19, 11:13] = True
    cols = np.flatnonzero(seed_box[np.asarray(mask.dataobj, bool)])
    assert cols.size > 8
    corr = masker.inverse_transform(_seed_map(X, cols))
    corr_data = np.asarray(corr.dataobj)
    want_map = _seed_map(want, cols)
    np.testing.assert_allclose(corr_data[np.asarray(mask.dataobj, bool)], want_map, atol=1e-9)
    assert corr_data[23, 23, 12] > 0.5  # the other network
    assert np.median(np.abs(want_map)) < 0.3  # and not everything


def test_resample_over_http_reads_ranges_and_equals_nilearn(run, tmp_path):
    from nilearn.image import resample_img as nl_resample

    import voxray.processing as vp

    ref = nib.load(run)
    target = np.diag([3.0, 3.0, 3.0, 1.0])
    target[:3, 3] = [-40, -40, -30]
    with RangeServer(run.parent) as server:
        img = vx.load(server.url(run.name))
        out = vp.resample_img(
            img, target_affine=target, target_shape=(20, 22, 18), interpolation="linear"
        )
        assert out.shape == (20, 22, 18, ref.shape[3])
        got = out.get_fdata()
    want = nl_resample(
        ref,
        target_affine=target,
        target_shape=(20, 22, 18),
        interpolation="linear",
        force_resample=True,
        copy_header=True,
    ).get_fdata()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_a_truncated_run_fails_with_voxrays_error_when_computed(run, tmp_path):
    import voxray.masking as vm
    import voxray.processing as vp

    raw = tmp_path / "short.nii"
    nib.save(nib.load(run), raw)
    size = os.path.getsize(raw)
    with open(raw, "r+b") as f:
        f.truncate(size - size // 3)  # the last third of the volumes is gone
    try:
        img = vx.load(raw)
    except vx.VoxrayError:
        return  # refused at open: as good
    with pytest.raises(vx.VoxrayError, match=r"short\.nii"):
        vp.smooth_img(img, 6).get_fdata()
    with pytest.raises(vx.VoxrayError, match=r"short\.nii"):
        vm.apply_mask(img, vm.compute_background_mask(img.slicer[..., 0])).compute()
