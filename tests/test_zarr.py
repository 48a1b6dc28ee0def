"""NIfTI -> OME-Zarr 0.5 / NIfTI-Zarr and back, validated with other people's readers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import zarr
from nibabel.affines import apply_affine

import voxray as vx
from voxray.testing import write_nifti

# Corpus images OME-Zarr can hold (2 to 5 axes) and nibabel's NIfTI-Zarr reader takes.
SKIP = {"dtype-rgb24.nii", "dtype-rgba32.nii"}  # structured dtypes: not OME-Zarr data


def _zarr_entries(corpus):
    return [e for e in corpus.values() if e.name not in SKIP]


def _validate(store: str, ref_path: str, storage_options=None):
    """Check a store with ome_zarr_models, nifti-zarr's zarr2nii and voxray."""
    from ome_zarr_models.v05 import Image as OmeImage

    ref = nib.load(ref_path)
    group = zarr.open_group(store, mode="r", storage_options=storage_options)
    OmeImage.from_zarr(group)  # raises if not valid OME-Zarr 0.5
    n_levels = len(group.attrs["ome"]["multiscales"][0]["datasets"])
    for level in range(n_levels):
        arr = group[str(level)]
        assert arr.metadata.dimension_names == tuple(
            a["name"] for a in group.attrs["ome"]["multiscales"][0]["axes"]
        )
    img = vx.load(store, storage_options=storage_options)
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.asanyarray(ref.dataobj))
    assert np.asarray(img.dataobj).dtype == np.asanyarray(ref.dataobj).dtype.newbyteorder("=")
    np.testing.assert_allclose(img.affine, ref.affine, atol=1e-6)
    assert (img.dataobj.slope, img.dataobj.inter) == (ref.dataobj.slope, ref.dataobj.inter)
    return group


def test_corpus_round_trip_validated(corpus, tmp_path):
    from niizarr import zarr2nii

    for e in _zarr_entries(corpus):
        ref = nib.load(e.path)
        store = str(tmp_path / (e.name.replace(":", "_").replace(".", "_") + ".nii.zarr"))
        vx.to_zarr(e.path, store)
        _validate(store, e.path)
        # nifti-zarr's own reader: the same raw data and the same affine
        if isinstance(ref.header, nib.Nifti1Header):  # (it builds NIfTI images only)
            theirs = zarr2nii(store)
            np.testing.assert_array_equal(
                np.asarray(theirs.dataobj), np.asarray(ref.dataobj.get_unscaled()), err_msg=e.name
            )
            np.testing.assert_allclose(theirs.header.get_best_affine(), ref.affine, atol=1e-6)
        # and back to NIfTI
        back = tmp_path / (e.name.replace(":", "_").replace(".", "_") + ".back.nii")
        vx.save(vx.load(store), back)
        again = nib.load(back)
        np.testing.assert_array_equal(np.asanyarray(again.dataobj), np.asanyarray(ref.dataobj))
        np.testing.assert_allclose(again.affine, ref.affine, atol=1e-6)


def test_zarr_to_nifti_reproduces_the_header(corpus, tmp_path):
    for name in (
        "scaled-int16.nii",
        "extensions.nii",
        "oblique.nii",
        "nifti2.nii",
        "be-int16-4d.nii",
    ):
        src = corpus[name].path
        store = str(tmp_path / f"{name}.zarr")
        vx.to_zarr(src, store)
        back = tmp_path / f"{name}.back.nii"
        vx.save(vx.load(store), back)
        assert back.read_bytes() == Path(src).read_bytes(), name


def test_nifti_array_and_json_header(corpus, tmp_path):
    src = corpus["extensions.nii"].path
    store = str(tmp_path / "x.nii.zarr")
    vx.to_zarr(src, store)
    g = zarr.open_group(store, mode="r")
    raw = bytes(np.asarray(g["nifti"][:]))
    ref = nib.load(src).header
    assert raw[:348] == Path(src).read_bytes()[:348]
    assert len(raw) == 348 + 4 + ref.extensions.get_sizeondisk()
    meta = dict(g["nifti"].attrs)
    assert meta["Dim"] == list(ref.get_data_shape())
    assert meta["SForm"] == "aligned" and meta["QForm"] == "scanner"
    assert meta["NIFTIExtension"][0] == 1
    json.dumps(meta)
    ms = g.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["t", "z", "y", "x"]
    assert ms["axes"][0]["unit"] == "second" and ms["axes"][1]["unit"] == "millimeter"
    zooms = ref.get_zooms()
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [zooms[3], zooms[2], zooms[1], zooms[0]]
    )
    # One NIfTI volume is one (1, nz, ny, nx) chunk of the same bytes, transposed.
    assert g["0"].chunks == (1, *reversed(ref.get_data_shape()[:3]))
    vol = np.asanyarray(nib.load(src).dataobj)[..., 2]
    np.testing.assert_array_equal(g["0"][2], vol.T)


def _anatomy(tmp_path, shape=(90, 100, 80), dtype=np.int16, intent=None):
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    arr = (1000 * np.exp(-(x**2 + y**2 + z**2) * 3)).astype(dtype)
    h = nib.Nifti1Header()
    h.set_data_dtype(dtype)
    aff = np.array(
        [[0.9, 0.1, 0, -40], [-0.1, 0.9, 0.05, -50], [0, -0.05, 1.1, -30], [0, 0, 0, 1]]
    )
    h.set_sform(aff, code=4)
    h.set_qform(aff, code=1)
    h.set_xyzt_units("mm")
    if intent:
        h.set_intent(intent)
    return write_nifti(tmp_path / "anat.nii", arr, h), arr, aff


def test_pyramid_levels_means_and_geometry(tmp_path):
    src, arr, aff = _anatomy(tmp_path)
    store = str(tmp_path / "anat.nii.zarr")
    vx.to_zarr(src, store, chunks=32)
    g = _validate(store, src)
    shapes = [g[str(n)].shape for n in range(len(g.attrs["ome"]["multiscales"][0]["datasets"]))]
    assert shapes == [(80, 100, 90), (40, 50, 45), (20, 25, 23)]  # until it fits one 32^3 chunk
    lvl1 = vx.load(store, level=1)
    want = arr.astype(float)
    want = 0.5 * (want[0::2] + want[1::2])
    want = 0.5 * (want[:, 0::2] + want[:, 1::2])
    want = 0.5 * (want[:, :, 0::2] + want[:, :, 1::2])
    np.testing.assert_array_equal(np.asarray(lvl1.dataobj), np.rint(want).astype(np.int16))
    # voxel p of level 1 sits at the centre of level-0 voxels 2p and 2p+1
    p = np.array([[3, 7, 11], [0, 0, 0], [44, 49, 39]])
    np.testing.assert_allclose(
        apply_affine(lvl1.affine, p), apply_affine(aff, 2 * p + 0.5), atol=1e-6
    )
    # an odd axis: the last block is partial (its mean is over the voxels it has)
    lvl2 = np.asarray(vx.load(store, level=2).dataobj)
    assert lvl2.shape == (23, 25, 20)
    # other readers read every level
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(store))()))
    assert [d.shape for d in node.data] == shapes


def test_label_images_get_mode_pyramids(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, (20, 18, 16)).astype(np.int16)
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    h.set_intent("label")
    src = write_nifti(tmp_path / "labels.nii", labels, h)
    store = str(tmp_path / "labels.nii.zarr")
    vx.to_zarr(src, store, chunks=8)
    g = zarr.open_group(store, mode="r")
    assert g.attrs["voxray"]["pyramid"] == "mode"
    lvl1 = np.asarray(vx.load(store, level=1).dataobj)
    assert set(np.unique(lvl1)) <= set(np.unique(labels))  # no invented labels
    vx.to_zarr(src, str(tmp_path / "forced.nii.zarr"), chunks=8, label=False)
    assert (
        zarr.open_group(str(tmp_path / "forced.nii.zarr"), mode="r").attrs["voxray"]["pyramid"]
        == "mean"
    )


def _objects(path):
    return sum(len(files) for _, _, files in os.walk(path))


def test_sharding_keeps_object_counts_low(tmp_path):
    src, arr, _ = _anatomy(tmp_path, shape=(64, 64, 64))
    plain = str(tmp_path / "plain.nii.zarr")
    sharded = str(tmp_path / "sharded.nii.zarr")
    vx.to_zarr(src, plain, chunks=8, shards=False, levels=1)
    vx.to_zarr(src, sharded, chunks=8, shards=True, levels=1)
    assert _objects(plain) > 500 and _objects(sharded) < 20
    np.testing.assert_array_equal(np.asarray(vx.load(sharded).dataobj), arr)
    big = vx.to_zarr(src, str(tmp_path / "auto.nii.zarr"), chunks=4, levels=1)
    assert zarr.open_group(big, mode="r")["0"].shards is not None  # on by default at 4096 chunks


def test_overwrite_refused_then_allowed(corpus, tmp_path):
    store = str(tmp_path / "x.nii.zarr")
    vx.to_zarr(corpus["le-int16-4d.nii"].path, store)
    np.asarray(vx.load(store).dataobj)  # opened (and cached) before it is replaced
    with pytest.raises(vx.VoxrayError, match="already exists"):
        vx.to_zarr(corpus["oblique.nii"].path, store)
    vx.to_zarr(corpus["oblique.nii"].path, store, overwrite=True)
    np.testing.assert_array_equal(
        np.asarray(vx.load(store).dataobj),
        np.asanyarray(nib.load(corpus["oblique.nii"].path).dataobj),
    )
    # Another shape in the same store, in the same process: not the cached array.
    vx.to_zarr(corpus["qform-only.nii"].path, store, overwrite=True)
    np.testing.assert_array_equal(
        np.asarray(vx.load(store).dataobj),
        np.asanyarray(nib.load(corpus["qform-only.nii"].path).dataobj),
    )


KILL = """
import sys, numpy as np, dask.array as da, voxray as vx
x = da.random.RandomState(0).normal(size=(160, 160, 160, 12), chunks=(160, 160, 160, 1))
vx.to_zarr(vx.Image(x.astype(np.float32), np.eye(4)), sys.argv[1], progress=False)
"""


@pytest.mark.slow
def test_interrupted_conversion_never_looks_complete_and_resumes(tmp_path):
    store = tmp_path / "big.nii.zarr"
    partial = tmp_path / ".big.nii.zarr.voxray-partial"
    proc = subprocess.Popen([sys.executable, "-c", KILL, str(store)])
    deadline = time.time() + 90
    while time.time() < deadline:  # until some chunks of level 0 are written
        if partial.exists() and _objects(partial) >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not store.exists()
    with pytest.raises(vx.VoxrayError):
        vx.load(store)
    with pytest.raises(vx.VoxrayError):
        vx.load(partial)  # the partial store has no OME metadata: it is not an image
    # a rerun finishes it
    subprocess.run([sys.executable, "-c", KILL, str(store)], check=True, timeout=300)
    assert vx.load(store).shape == (160, 160, 160, 12)
    assert not partial.exists()


def test_cli_convert_both_ways(corpus, tmp_path):
    from voxray.cli import main

    src = corpus["scaled-int16.nii.gz"].path
    assert main(["convert", src, str(tmp_path / "x.nii.zarr")]) == 0
    assert main(["convert", str(tmp_path / "x.nii.zarr"), str(tmp_path / "back.nii.gz")]) == 0
    a, b = nib.load(src), nib.load(tmp_path / "back.nii.gz")
    np.testing.assert_array_equal(b.dataobj.get_unscaled(), a.dataobj.get_unscaled())
    assert (b.dataobj.slope, b.dataobj.inter) == (a.dataobj.slope, a.dataobj.inter)
    assert main(["convert", src, str(tmp_path / "x.nii.zarr")]) == 2
    assert main(["convert", src, str(tmp_path / "x.nii.zarr"), "--overwrite"]) == 0


def test_dataarray_and_xarray_views(corpus, tmp_path):
    src = corpus["oblique.nii"].path
    da = vx.open_dataarray(src)
    store = da.vx.to_zarr(str(tmp_path / "da.nii.zarr"))
    back = vx.open_dataarray(store)
    np.testing.assert_array_equal(back.values, da.values)
    np.testing.assert_allclose(back.vx.affine, da.vx.affine, atol=1e-6)
    vx.save(vx.load(src), str(tmp_path / "saved.nii.zarr"))
    assert vx.load(str(tmp_path / "saved.nii.zarr")).shape == da.shape


@pytest.mark.slow
def test_s3_write_validate_read_and_convert_back(corpus, s3, tmp_path):
    src = corpus["scaled-int16.nii.gz"].path
    url = f"s3://{s3.bucket}/x.nii.zarr"
    vx.to_zarr(src, url, storage_options=s3.options)
    _validate(url, src, storage_options=s3.options)
    nested = {**s3.options, "client_kwargs": {"region_name": "us-east-1"}}  # nested options
    vx.save(vx.load(url, storage_options=nested), tmp_path / "back.nii")
    np.testing.assert_array_equal(
        nib.load(tmp_path / "back.nii").dataobj.get_unscaled(),
        nib.load(src).dataobj.get_unscaled(),
    )
    with pytest.raises(vx.VoxrayError, match="already exists"):
        vx.to_zarr(src, url, storage_options=s3.options)
    vx.to_zarr(src, url, storage_options=s3.options, overwrite=True)
    # object counts, with and without shards
    anat, _, _ = _anatomy(tmp_path, shape=(48, 48, 48))
    for shards, expect in ((False, lambda n: n > 200), (True, lambda n: n < 20)):
        u = f"s3://{s3.bucket}/anat-{shards}.nii.zarr"
        vx.to_zarr(anat, u, chunks=8, shards=shards, levels=1, storage_options=s3.options)
        n = len(s3.fs.find(u))
        assert expect(n), (shards, n)


@pytest.mark.slow
def test_interrupted_remote_store_does_not_open_and_a_rerun_finishes(corpus, s3, monkeypatch):
    from voxray.formats.zarr import ome

    src = corpus["le-int16-4d.nii"].path
    url = f"s3://{s3.bucket}/cut.nii.zarr"

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("simulated interruption before the metadata")

    monkeypatch.setattr(ome, "multiscales", fail)
    with pytest.raises(KeyboardInterrupt):
        vx.to_zarr(src, url, storage_options=s3.options)
    monkeypatch.undo()
    assert s3.fs.exists(f"{s3.bucket}/cut.nii.zarr/0/zarr.json")  # data is there...
    with pytest.raises(vx.VoxrayError, match="OME"):
        vx.load(url, storage_options=s3.options)  # ...but it does not open as an image
    vx.to_zarr(src, url, storage_options=s3.options)  # resumes: level 0 is kept
    np.testing.assert_array_equal(
        np.asarray(vx.load(url, storage_options=s3.options).dataobj),
        np.asanyarray(nib.load(src).dataobj),
    )


def test_convert_to_zarr_shows_progress_on_a_terminal(corpus, tmp_path):
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voxray.cli",
            "convert",
            corpus["le-int16-4d.nii"].path,
            str(tmp_path / "p.nii.zarr"),
        ],
        stderr=follower,
        stdout=subprocess.PIPE,
    )
    err = b""
    while proc.poll() is None or select.select([leader], [], [], 0)[0]:
        if select.select([leader], [], [], 0.1)[0]:
            try:
                err += os.read(leader, 65536)
            except OSError:
                break
    os.close(follower)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    assert b"writing p.nii.zarr" in err


@pytest.mark.slow
def test_to_zarr_on_a_process_cluster_matches_threads(corpus, tmp_path):
    from dask.distributed import Client, LocalCluster

    src, _, _ = _anatomy(tmp_path, shape=(40, 36, 30))
    vx.to_zarr(src, str(tmp_path / "threads.nii.zarr"), chunks=16)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        vx.to_zarr(src, str(tmp_path / "cluster.nii.zarr"), chunks=16)
        vx.to_zarr(corpus["scaled-int16.nii.gz"].path, str(tmp_path / "scaled.nii.zarr"))
    a, b = (
        zarr.open_group(str(tmp_path / f"{n}.nii.zarr"), mode="r") for n in ("threads", "cluster")
    )
    n = len(a.attrs["ome"]["multiscales"][0]["datasets"])
    assert n == len(b.attrs["ome"]["multiscales"][0]["datasets"]) == 3
    for level in map(str, range(n)):
        np.testing.assert_array_equal(a[level][:], b[level][:])
    _validate(str(tmp_path / "cluster.nii.zarr"), str(src))
    _validate(str(tmp_path / "scaled.nii.zarr"), corpus["scaled-int16.nii.gz"].path)
