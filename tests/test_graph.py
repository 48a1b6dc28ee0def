"""The dask graph: plain-value tasks, deterministic names, right meta without reads,
and the same results on a process cluster as on threads."""

from __future__ import annotations

import pickle

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.sources import open_source


def _stats(img):
    return open_source(img.dataobj.reader.source).stats


def test_graph_pickles_small_and_holds_no_handles(corpus):
    img = vx.load(corpus["scaled-int16.nii.gz"].path, chunks={3: 1})
    x = img.to_dask()
    graph = dict(x.__dask_graph__())
    blob = pickle.dumps(graph)
    assert len(blob) < 20_000
    for key, task in graph.items():
        assert len(pickle.dumps(task)) < 10_000, key
    assert b"_io." not in blob and b"GzipSource" not in blob and b"LocalFileSource" not in blob
    roundtrip = pickle.loads(blob)
    assert set(roundtrip) == set(graph)


def test_names_are_deterministic_and_track_the_file(corpus, tmp_path):
    p = corpus["le-int16-4d.nii"].path
    assert vx.load(p).to_dask().name == vx.load(p).to_dask().name
    assert vx.load(p).to_dask().name != vx.load(p, chunks={3: 1}).to_dask().name
    assert vx.load(p).to_dask().name.startswith("voxray-le-int16-4d-")


def test_meta_and_dtype_without_reading_data(corpus):
    for name in ("scaled-int16.nii.gz", "scaled-uint8.nii", "spm99.hdr", "dtype-be-int32.nii.gz"):
        img = vx.load(corpus[name].path)
        s = _stats(img)
        s.reset()
        x = img.to_dask()
        expected = np.asanyarray(nib.load(corpus[name].path).dataobj).dtype
        assert x.dtype == expected
        assert x._meta.dtype == expected and x._meta.size == 0
        assert s.requests == 0 and s.bytes_returned == 0, name


def test_a_slice_of_the_graph_reads_only_its_bytes(corpus):
    img = vx.load(corpus["le-int16-4d.nii"].path)  # one chunk holds every volume
    s = _stats(img)
    s.reset()
    vol = img.to_dask()[..., 4].compute()
    np.testing.assert_array_equal(vol, np.asanyarray(nib.load(img.get_filename()).dataobj)[..., 4])
    assert s.bytes_returned == vol.nbytes  # dask fuses the slice into the read


def test_proxy_and_image_pickle(corpus):
    img = vx.load(corpus["oblique.nii"].path)
    sub = vx.as_closest_canonical(img.slicer[2:, ::-1])
    again = pickle.loads(pickle.dumps(sub))
    np.testing.assert_array_equal(np.asarray(again.dataobj), np.asarray(sub.dataobj))
    np.testing.assert_array_equal(again.affine, sub.affine)
    assert len(pickle.dumps(sub.dataobj)) < 5_000


@pytest.mark.slow
def test_local_cluster_with_worker_processes_matches_threads(corpus):
    from dask.distributed import Client, LocalCluster

    names = (
        "scaled-int16.nii.gz",
        "be-int16-4d.nii",
        "pair.img",
        "multimember.nii.gz",
        "nifti2.nii.gz",
    )
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for name in names:
            img = vx.load(corpus[name].path, chunks={3: 2})
            x = img.to_dask()
            expected = x.mean(axis=-1).compute(scheduler="threads")
            got = client.compute(x.mean(axis=-1)).result()
            np.testing.assert_array_equal(got, expected)
            ref = nib.load(corpus[name].path).get_fdata().mean(-1)
            np.testing.assert_allclose(got, ref, rtol=1e-12)
            # the chunks were read in the workers, not here
            pids = client.run(lambda: __import__("os").getpid())
            assert len(set(pids.values())) == 2


def test_advanced_indexing_through_dask(corpus):
    p = corpus["oblique.nii"].path
    x = vx.load(p).to_dask()
    ref = np.asanyarray(nib.load(p).dataobj)
    for key in (
        [3, 1, 7],
        (slice(None), [0, 5, 2], 4),
        (Ellipsis, np.array([True, False, True, False, True, False])),
    ):
        np.testing.assert_array_equal(x[key].compute(), ref[key])
    reader = vx.load(p).dataobj.reader
    for key in (
        [3, 1, 7],
        (slice(None), [0, -5, 2], 4),
        (2, [1, 3], slice(None), [4, 0]),
        (None, [0, 2], Ellipsis, 1),
    ):
        np.testing.assert_array_equal(reader[key], ref[key])
